"""Letters and the requisition in the browser: create, edit, issue, watch the render, download; and the
confirmation before finalizing an encounter, which lists the letters still to write or issue."""

from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clinic import selectors as record_selectors
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from clinic.forms import form_error_links
from clinic.templatetags.labels import status_label
from referrals import documents, selectors, services, worklist
from referrals.documents import FORM_OF_CARE
from referrals.models import PdfStatus
from workups import selectors as workup_selectors
from workups import services as workup_services
from workups.localized import current_kb
from workups.models import WorkupReferral


def _actor(request):
    return actor_from_request(request, channel="web")


LANGUAGE_CHOICES = [("ru", "Русский"), ("en", "English")]  # each in its own language, as in the header


class ReferralEditForm(forms.Form):
    urgency = forms.ChoiceField(
        choices=[
            ("routine", pgettext_lazy("urgency", "Routine")),
            ("urgent", pgettext_lazy("urgency", "Urgent")),
            ("emergency", pgettext_lazy("urgency", "Emergency")),
        ],
        label=gettext_lazy("Urgency"),
    )
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label=gettext_lazy("Reason for referral")
    )
    question = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("Clinical question for the specialist"),
    )
    icd10 = forms.CharField(
        required=False,
        max_length=8,
        label=gettext_lazy("ICD-10 code"),
        help_text=gettext_lazy("A category like M54 or a subcategory with its dot, like M54.1."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    diagnosis = forms.CharField(required=False, max_length=300, label=gettext_lazy("Provisional diagnosis"))
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, label=gettext_lazy("Language of the letter"))

    def clean_icd10(self):
        return self.cleaned_data["icd10"].strip().upper()

    def changes(self, referral) -> dict:
        """What the GP changed, for referral_update: an ICD-10 code changed without new words takes the
        knowledge base's words; a code cannot be removed (the letter needs one once it has one)."""
        changed = {
            name: value
            for name, value in self.cleaned_data.items()
            if name in ("urgency", "reason", "question", "icd10", "diagnosis", "language")
            and (value or "").strip() != (getattr(referral, name) or "").strip()
        }
        if "icd10" in changed and not changed["icd10"]:
            raise ValidationError({"icd10": [_("Give the ICD-10 code of the provisional diagnosis.")]})
        return changed


class ReferralByHandForm(ReferralEditForm):
    specialty = forms.ChoiceField(label=gettext_lazy("Specialty"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = list(current_kb().vocabulary.specialties.items())
        self.fields["diagnosis"].help_text = _("Left empty: the words for the ICD-10 code, or paraesthesia (R20.2).")
        self.order_fields(["specialty", "urgency", "reason", "question", "icd10", "diagnosis", "language"])


def _messages_from(request, error):
    for message in error.messages if isinstance(error, ValidationError) else [error.message]:
        messages.error(request, message)


def _apply_errors(form, error):
    if isinstance(error, RecordLocked):
        form.add_error(None, error.message)
        return
    for field, problems in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
        for message in problems:
            form.add_error(field if field in form.fields else None, message)


def _error_links(form):
    return form_error_links(form) if form.is_bound else []


FINALIZED = gettext_lazy("This encounter is finalized: its referrals can no longer be created, changed or issued.")


def _refused_when_finalized(request, encounter):
    """A write to a referral of a finalized encounter: refused with a message, back to the workup."""
    if encounter.is_finalized:
        messages.error(request, FINALIZED)
        return redirect("encounter-workup", pk=encounter.pk)
    return None


@login_required
@require_POST
def letter_from_recommendation(request, pk):
    actor = _actor(request)
    row = workup_selectors.recommendation_get(actor=actor, model=WorkupReferral, pk=pk)
    refused = _refused_when_finalized(request, row.workup.encounter)
    if refused:
        return refused
    try:
        referral = services.referral_create(actor=actor, encounter=row.workup.encounter, recommendation=row)
    except ValidationError as error:
        _messages_from(request, error)
        return redirect("encounter-workup", pk=row.workup.encounter_id)
    return redirect("referral-detail", pk=referral.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def emergency_documents(request, pk):
    """The emergency banner's one step: the emergency workup accepted, its letters drafted and the leaflet asked
    for; the GP then reads the first letter on its confirmation page and issues it. A GET (the address reloaded
    or bookmarked) leads back to the workup, where the button is."""
    actor = _actor(request)
    if request.method != "POST":
        encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk)
        return redirect("encounter-workup", pk=encounter.pk)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    refused = _refused_when_finalized(request, encounter)
    if refused:
        return refused
    try:
        drafts, _leaflet = services.emergency_documents_prepare(actor=actor, encounter=encounter)
    except (ValidationError, RecordLocked) as error:
        _messages_from(request, error)
        return redirect("encounter-workup", pk=encounter.pk)
    if not drafts:
        messages.success(
            request, _("Emergency workup accepted; its letters were written already. The leaflet is being prepared.")
        )
        return redirect(f"{reverse('encounter-workup', args=[encounter.pk])}#documents")
    if len(drafts) == 1:
        messages.success(
            request, _("Emergency workup accepted and the leaflet is being prepared. Check the letter and issue it.")
        )
    else:
        messages.success(
            request,
            _(
                "Emergency workup accepted and the leaflet is being prepared. Letters drafted: %(count)d; check and "
                "issue each, this one first."
            )
            % {"count": len(drafts)},
        )
    return redirect("referral-issue", pk=drafts[0].pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def referral_by_hand(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(
        actor=actor, encounter_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if request.method == "POST":
        refused = _refused_when_finalized(request, encounter)
        if refused:
            return refused
    form = ReferralByHandForm(request.POST or None, initial={"language": encounter.clinic.language})
    if request.method == "POST" and form.is_valid():
        values = {name: value for name, value in form.cleaned_data.items() if value not in ("", None)}
        try:
            referral = services.referral_create(actor=actor, encounter=encounter, **values)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            return redirect("referral-detail", pk=referral.pk)
    return render(
        request,
        "referrals/by_hand.html",
        {"form": form, "encounter": encounter, "patient": encounter.patient, "error_links": _error_links(form)},
    )


def _letter_context(referral, **extra):
    specialty_name = current_kb().vocabulary.specialties.get(referral.specialty, referral.specialty)
    encounter = referral.encounter
    return {
        "referral": referral,
        "encounter": encounter,
        "patient": encounter.patient,
        "specialty_name": specialty_name,
        "finalized": encounter.is_finalized,
        "addressee": documents.addressee_ru(referral, specialty_name) if referral.language == "ru" else "",
        "form_of_care": FORM_OF_CARE.get(referral.urgency, "") if referral.language == "ru" else "",
        "letter_language": dict(LANGUAGE_CHOICES).get(referral.language, referral.language),
        # The referring GP as the letter prints them: name and position.
        "referring_gp": documents.gp_of(encounter, referral.language),
        **extra,
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def referral_detail(request, pk):
    """The letter: edit it (Save) or go on to issue it (Issue: what was typed is saved first, then the
    confirmation shows the letter as it will be issued)."""
    actor = _actor(request)
    referral = selectors.referral_get(
        actor=actor, referral_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if request.method == "POST":
        refused = _refused_when_finalized(request, referral.encounter)
        if refused:
            return refused
    form = ReferralEditForm(
        request.POST or None,
        initial={
            name: getattr(referral, name)
            for name in ("urgency", "reason", "question", "icd10", "diagnosis", "language")
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            changes = form.changes(referral)
            if changes:
                referral = services.referral_update(actor=actor, referral=referral, **changes)
        except (ValidationError, RecordLocked) as error:
            _apply_errors(form, error)
        else:
            if "issue" in request.POST:
                return redirect("referral-issue", pk=referral.pk)
            messages.success(request, _("Saved; the letter is being rendered again.") if changes else _("No changes."))
            return redirect("referral-detail", pk=referral.pk)
    return render(
        request,
        "referrals/detail.html",
        _letter_context(referral, form=form, error_links=_error_links(form), **_tracking_context(referral)),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def referral_issue(request, pk):
    """GET: the confirmation, with the letter as it will be issued; POST (Confirm): issue it. A letter
    changed since its preview is shown again rather than issued unseen."""
    actor = _actor(request)
    referral = selectors.referral_get(
        actor=actor, referral_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if referral.status != "draft":
        return redirect("referral-detail", pk=referral.pk)
    refused = _refused_when_finalized(request, referral.encounter)
    if refused:
        return refused
    if request.method == "POST":
        if request.POST.get("generation") != str(referral.pdf_generation):
            messages.error(request, _("The letter changed since you saw it: check it again before issuing."))
            return redirect("referral-issue", pk=referral.pk)
        services.referral_issue(actor=actor, referral=referral)
        messages.success(request, _("Referral issued."))
        if referral.urgency == "emergency":
            # The patient is leaving for hospital: back to the emergency checklist (letters, leaflet, finalize).
            return redirect(reverse("encounter-workup", args=[referral.encounter_id]) + "#emergency-status")
        return redirect("referral-detail", pk=referral.pk)
    return render(request, "referrals/issue.html", _letter_context(referral))


@login_required
@require_safe
def referral_status(request, pk):
    """htmx: the letter's render state; polls itself until the PDF is ready or failed."""
    referral = selectors.referral_get(actor=_actor(request), referral_id=pk, action="status")
    return render(request, "referrals/_pdf_status.html", {"document": referral, "kind": "referral"})


@login_required
@require_POST
def referral_rerender(request, pk):
    actor = _actor(request)
    referral = selectors.referral_get(actor=actor, referral_id=pk, action="open_for_update")
    services.document_rerender(actor=actor, document=referral)
    return redirect("referral-detail", pk=referral.pk)


def _download(document):
    if document.pdf_status != PdfStatus.READY or not document.pdf_file:
        raise Http404(_("The PDF is not ready."))
    # Named by kind, number, date and specialty: never by the patient's name.
    response = FileResponse(
        document.pdf_file.open("rb"), content_type="application/pdf", filename=documents.download_name(document)
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_safe
def referral_pdf(request, pk):
    referral = selectors.referral_get(actor=_actor(request), referral_id=pk, action="download")
    return _download(referral)


@login_required
@require_POST
def requisition_request(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    try:
        services.requisition_request(actor=actor, encounter=encounter)
    except ValidationError as error:
        _messages_from(request, error)
    return redirect("encounter-workup", pk=encounter.pk)


@login_required
@require_safe
def requisition_status(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="status")
    requisition = selectors.requisition_latest(actor=actor, encounter=encounter, action="status")
    return render(
        request, "referrals/_pdf_status.html", {"document": requisition, "kind": "requisition", "encounter": encounter}
    )


@login_required
@require_POST
def leaflet_request(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    try:
        services.leaflet_request(actor=actor, encounter=encounter)
    except ValidationError as error:
        _messages_from(request, error)
    return redirect("encounter-workup", pk=encounter.pk)


@login_required
@require_safe
def leaflet_status(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="status")
    leaflet = selectors.leaflet_latest(actor=actor, encounter=encounter, action="status")
    return render(request, "referrals/_pdf_status.html", {"document": leaflet, "kind": "leaflet"})


@login_required
@require_safe
def leaflet_pdf(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="download")
    leaflet = selectors.leaflet_latest(actor=actor, encounter=encounter, action="download")
    if leaflet is None:
        raise Http404(_("No leaflet yet."))
    return _download(leaflet)


@login_required
@require_safe
def requisition_pdf(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="download")
    requisition = selectors.requisition_latest(actor=actor, encounter=encounter, action="download")
    if requisition is None:
        raise Http404(_("No requisition yet."))
    return _download(requisition)


# -- the loop after issue (GUIDANCE 7): booked, completed, cancelled, declined by the patient ---------

TRACKING_STATUSES = ("booked", "completed", "cancelled", "declined_by_patient")
TRACKING_WORDS = {
    "This field is required for this status.": gettext_lazy("This field is required for this status."),
    "The file is larger than 10 MB.": gettext_lazy("The file is larger than 10 MB."),
    "The file is empty.": gettext_lazy("The file is empty."),
    "The file is not a PDF.": gettext_lazy("The file is not a PDF."),
    "Control characters are not allowed.": gettext_lazy("Control characters are not allowed."),
}


def _tracking_context(referral, *, errors=None, posted=None):
    events = list(referral.events.select_related("by"))
    return {
        "events": events,
        "issued_without_event": not any(event.status == "issued" for event in events),
        "trackable": referral.status in ("issued", "booked"),
        # As the worklist flags it: booked, and the appointment's day (the clinic's) is over.
        "appointment_passed": worklist.appointment_passed(referral),
        "tracking_errors": errors or {},
        "tracking_posted": posted or {},
    }


def _refused_words(referral, status):
    return _("A referral that is %(current)s cannot become %(status)s.") % {
        "current": status_label(referral.status),
        "status": status_label(status),
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def referral_track(request, pk):
    """Record what became of an issued referral: booked (the appointment), completed (the specialist's
    conclusion, a PDF of it optional), cancelled or declined by the patient (the reason). An impossible
    transition is refused with a message; each change is kept in the history. Also after finalizing. A GET
    (the refusal page reloaded, or the language switched on it) leads back to the referral."""
    actor = _actor(request)
    if request.method != "POST":
        referral = selectors.referral_get(actor=actor, referral_id=pk)
        return redirect("referral-detail", pk=referral.pk)
    referral = selectors.referral_get(actor=actor, referral_id=pk, action="open_for_update")
    status = request.POST.get("status", "")
    posted = {
        "status": status,
        **{name: request.POST.get(name, "") for name in ("appointment_at", "conclusion", "reason")},
    }
    errors: dict = {}
    if status not in TRACKING_STATUSES:
        errors["status"] = [_("Choose what became of the referral.")]
    values = {"status": status}
    raw_when = posted["appointment_at"].strip()
    if raw_when and status in ("booked", "completed"):
        try:
            when = datetime.fromisoformat(raw_when)
        except ValueError:
            errors["appointment_at"] = [_("Use the date and time picker.")]
        else:
            values["appointment_at"] = timezone.make_aware(when) if timezone.is_naive(when) else when
    elif status == "booked":
        errors["appointment_at"] = [_("Give the date and time of the appointment.")]
    if status == "completed":
        values["conclusion"] = posted["conclusion"]
        if request.FILES.get("conclusion_pdf"):
            values["conclusion_pdf"] = request.FILES["conclusion_pdf"]
    elif status in ("cancelled", "declined_by_patient"):
        values["reason"] = posted["reason"]
    if not errors:
        try:
            services.referral_status_change(actor=actor, referral=referral, **values)
        except services.TransitionRefused:
            messages.error(request, _refused_words(referral, status))
            return redirect("referral-detail", pk=referral.pk)
        except ValidationError as error:
            pairs = error.message_dict.items() if hasattr(error, "error_dict") else [("status", error.messages)]
            errors = {field: [str(TRACKING_WORDS.get(m, m)) for m in problems] for field, problems in pairs}
        else:
            messages.success(request, _("Referral marked %(status)s.") % {"status": status_label(status)})
            return redirect("referral-detail", pk=referral.pk)
    form = ReferralEditForm(
        initial={
            name: getattr(referral, name)
            for name in ("urgency", "reason", "question", "icd10", "diagnosis", "language")
        }
    )
    return render(
        request,
        "referrals/detail.html",
        _letter_context(
            referral, form=form, error_links=[], **_tracking_context(referral, errors=errors, posted=posted)
        ),
    )


@login_required
@require_safe
def referral_conclusion_pdf(request, pk):
    referral = selectors.referral_get(actor=_actor(request), referral_id=pk, action="download")
    if not referral.conclusion_pdf:
        raise Http404(_("No conclusion PDF."))
    response = FileResponse(
        referral.conclusion_pdf.open("rb"), content_type="application/pdf", filename=f"conclusion-{referral.pk}.pdf"
    )
    response["Cache-Control"] = "private, no-store"
    return response


# -- the clinic's worklist -----------------------------------------------------------------------

# An id no row has, reversed once per route and replaced by each row's id (75 rows' {% url %} tags took 2 ms).
_SLOT = 987654321


def _shown(rows: list[dict]) -> list[dict]:
    """Each row with its links and its due date as the page writes them, each route reversed once and each due
    date formatted once (a page's rows share a few dates): a third of the page's rendering went on these."""
    routes = {name: reverse(name, args=[_SLOT]) for name in ("patient-detail", "encounter-workup", "referral-detail")}
    dates: dict = {}
    for row in rows:
        if row["due"] not in dates:
            dates[row["due"]] = (row["due"].isoformat(), date_format(row["due"], "SHORT_DATE_FORMAT"))
        row["due_iso"], row["due_text"] = dates[row["due"]]
        row["patient_url"] = routes["patient-detail"].replace(str(_SLOT), str(row["patient"]["id"]))
        if row["kind"] == "referral":
            row["open_url"] = routes["referral-detail"].replace(str(_SLOT), str(row["id"]))
        else:
            # A result to acknowledge opens at its own row (its sign-off form); a test awaited, at the entry forms.
            anchor = f"#result-{row['id']}" if row["kind"] == "result" else "#results"
            row["open_url"] = routes["encounter-workup"].replace(str(_SLOT), str(row["encounter"])) + anchor
    return rows


def _left_open_rows(encounters) -> list[dict]:
    """The encounters left open as the page writes them, each route reversed and each date formatted once, as
    _shown does for the other sections."""
    routes = {
        name: reverse(name, args=[_SLOT])
        for name in ("patient-detail", "encounter-finalize", "encounter-workup", "encounter-detail")
    }
    dates: dict = {}
    rows = []
    for encounter in encounters:
        day = encounter.visit_date
        if day not in dates:
            dates[day] = (day.isoformat(), date_format(day, "SHORT_DATE_FORMAT"))
        rows.append(
            {
                "id": encounter.pk,
                "patient": encounter.patient.full_name,
                "patient_url": routes["patient-detail"].replace(str(_SLOT), str(encounter.patient_id)),
                "finalize_url": routes["encounter-finalize"].replace(str(_SLOT), str(encounter.pk)),
                # What is left to do: the workup's decisions when there is one, else the findings to complete.
                "open_url": routes["encounter-workup" if encounter.disposition else "encounter-detail"].replace(
                    str(_SLOT), str(encounter.pk)
                ),
                "visit_iso": dates[day][0],
                "visit_text": dates[day][1],
                "disposition": encounter.disposition,
            }
        )
    return rows


@login_required
@require_safe
def worklist_page(request):
    """Unacknowledged abnormal results, awaited tests and open referrals of the GP's clinic, each section
    overdue first and paged on its own (`?unacknowledged=2&awaited=1&referrals=3`), so a clinic with
    thousands of open items gets the most pressing of each kind first (a constant number of queries)."""
    actor = _actor(request)
    entries = worklist.worklist_get(actor=actor)
    sections = [
        ("unacknowledged", "unacknowledged_results", _("Abnormal results not acknowledged"),
         _("No abnormal result awaits acknowledgement.")),
        ("awaited", "awaited_results", _("Awaited results"), _("No accepted test awaits its result.")),
        ("referrals", "open_referrals", _("Open referrals"), _("No open referral.")),
    ]  # fmt: skip
    pages = {
        key: Paginator(entries[name], worklist.PAGE_SIZE).get_page(request.GET.get(key)) for key, name, *__ in sections
    }
    rows = _shown(worklist.worklist_show(actor=actor, entries=[entry for page in pages.values() for entry in page]))

    def link(key, number):
        query = request.GET.copy()
        query[key] = number
        return "?" + query.urlencode()

    left_open = Paginator(worklist.encounters_left_open(actor=actor), worklist.PAGE_SIZE).get_page(
        request.GET.get("drafts")
    )
    worklist.encounters_left_open_shown(actor=actor, encounters=left_open)
    context_sections = []
    for key, name, title, empty in sections:
        page = pages[key]
        context_sections.append(
            {
                "key": key,
                "title": title,
                "page": page,
                "rows": [row for row in rows if row["kind"] == worklist.KINDS[name]],
                "empty": empty,
                "previous": link(key, page.previous_page_number()) if page.has_previous() else "",
                "next": link(key, page.next_page_number()) if page.has_next() else "",
            }
        )
    return render(
        request,
        "referrals/worklist.html",
        {
            "sections": context_sections,
            "total": sum(len(group) for group in entries.values()),
            "overdue": sum(worklist.overdue_count(group) for group in entries.values()),
            # Said beside the overdue count, as the menu's badge counts both: a result to sign off is due now.
            "unacknowledged": len(entries["unacknowledged_results"]),
            "left_open": left_open,
            "left_open_rows": _left_open_rows(left_open),
            "left_open_previous": link("drafts", left_open.previous_page_number()) if left_open.has_previous() else "",
            "left_open_next": link("drafts", left_open.next_page_number()) if left_open.has_next() else "",
        },
    )


@login_required
@require_safe
def worklist_badge(request):
    """The navigation's count of overdue and unacknowledged items (worklist_counts: one small, fixed
    set of queries), loaded by htmx after the page so no page's own cost depends on the clinic's
    worklist; nothing shown when zero."""
    counts = worklist.worklist_counts(actor=_actor(request))
    response = render(request, "_worklist_badge.html", {"count": counts["attention"]})
    response["Cache-Control"] = "private, no-store"
    return response


# -- finalizing: the confirmation lists what is still open, the letters among it, so it lives with the letters --


class FinalizeForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("Reason for finalizing now"),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def encounter_finalize(request, pk):
    """GET: the confirmation, with what is still unfinished; POST: finalize (a reason is needed when an
    emergency's emergency work is all still pending: the service says so, and the form shows it)."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(
        actor=actor, encounter_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if encounter.is_finalized:
        messages.error(request, _("This encounter is finalized and can no longer be changed."))
        return redirect("encounter-workup", pk=encounter.pk)
    form = FinalizeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            workup_services.encounter_finalize(actor=actor, encounter=encounter, reason=form.cleaned_data["reason"])
        except RecordLocked as error:
            messages.error(request, error.message)
            return redirect("encounter-workup", pk=encounter.pk)
        except ValidationError as error:
            for field, problems in (
                error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]
            ):
                for message in problems:
                    form.add_error("reason" if field == "reason" else None, message)
        else:
            messages.success(request, _("Encounter finalized."))
            return redirect("encounter-workup", pk=encounter.pk)
    unfinished = selectors.encounter_unfinished(encounter=encounter)
    workup = workup_selectors.workup_latest(actor=actor, encounter=encounter)
    links = form_error_links(form) if form.is_bound else []
    return render(
        request,
        "encounters/finalize.html",
        {
            "encounter": encounter,
            "patient": encounter.patient,
            "form": form,
            "unfinished": unfinished,
            "disposition": workup.disposition if workup else "",
            "error_links": links,
            "no_workup": workup is None,
            "stale": workup is not None and workup_services.workup_is_stale(workup, encounter),
            "reason_required": unfinished["emergency_untouched"],
        },
    )
