"""The workup page in the browser: recommendations, decisions, additions, finalizing, printing."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django import forms
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _, gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from clinic import selectors as record_selectors
from clinic import services as record_services
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from clinic.forms import AddItemForm, AddReferralForm, DecisionForm, form_error_links
from clinic.summary import findings_summary, vital_signs
from workups import selectors, services
from workups.localized import current_kb
from workups.models import WorkupItem, WorkupReferral

GROUPS = [("lab", gettext_lazy("Laboratory")), ("functional", gettext_lazy("Functional diagnostics")),
          ("imaging", gettext_lazy("Imaging"))]


def _actor(request):
    return actor_from_request(request, channel="web")


def _context(actor, encounter, **extra):
    workup = selectors.workup_latest(actor=actor, encounter=encounter)
    result = selectors.workup_representation(workup=workup, encounter=encounter) if workup else None
    grouped = []
    if result:
        for key, title in GROUPS:
            rows = [item for item in result["items"] if item["category"] == key]
            if rows:
                grouped.append({"key": key, "title": title, "items": rows})
    from clinic.web import record_context
    from referrals.models import Leaflet, Referral, Requisition

    letters = list(Referral.objects.filter(encounter=encounter).order_by("-created_at", "-id"))
    requisition = Requisition.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    leaflet = Leaflet.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    lettered = {letter.recommendation_id for letter in letters}
    if result:
        for row in result["referrals"]:
            row["has_letter"] = row["id"] in lettered
    return {"encounter": encounter, "patient": encounter.patient, "workup": workup, "result": result,
            "letters": letters, "requisition": requisition, "leaflet": leaflet,
            "pending": any(row["decision"] == "pending" for row in (result["items"] + result["referrals"]) if result)
            if result else False, **record_context(encounter),
            "groups": grouped, "vocabulary": current_kb().vocabulary,
            "add_item_form": AddItemForm(), "add_referral_form": AddReferralForm(),
            "editable": not encounter.is_finalized, "summary": findings_summary(encounter), "vitals": vital_signs(encounter), **extra}


@login_required
def workup_page(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk)
    return render(request, "workups/detail.html", _context(actor, encounter))


@login_required
def workup_print(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="print")
    return render(request, "workups/print.html", _context(actor, encounter))


def _guarded(request, pk, action):
    """Run a write for encounter `pk`; a finalized record or bad input comes back as a message."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    try:
        action(actor, encounter)
    except RecordLocked as error:
        messages.error(request, error.message)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    return redirect("encounter-workup", pk=encounter.pk)


@login_required
@require_POST
def workup_generate(request, pk):
    return _guarded(request, pk, lambda actor, encounter: services.workup_generate(actor=actor, encounter=encounter))


def _add_by_hand(request, pk, form_class, add, problem):
    """Add a test or a referral the GP chose from the catalogue to the current workup."""
    def action(actor, encounter):
        form = form_class(request.POST)
        if not form.is_valid():
            raise ValidationError(problem)
        add(actor=actor, workup=services.workup_current(actor=actor, encounter=encounter), **form.cleaned_data)
    return _guarded(request, pk, action)


@login_required
@require_POST
def workup_add_item(request, pk):
    return _add_by_hand(request, pk, AddItemForm, services.workup_item_add,
                        gettext_lazy("Choose a test and an urgency."))


@login_required
@require_POST
def workup_add_referral(request, pk):
    return _add_by_hand(request, pk, AddReferralForm, services.workup_referral_add,
                        gettext_lazy("Choose a specialty and an urgency."))


@login_required
@require_POST
def workup_accept_all(request, pk):
    """Accept every recommendation still pending ("accept all recommended"); declined ones stay declined."""
    def accept_all(actor, encounter):
        workup = selectors.workup_latest(actor=actor, encounter=encounter)
        if workup is None:
            raise ValidationError(_("No workup has been generated yet."))
        count = services.workup_accept_all(actor=actor, workup=workup)
        messages.success(request, ngettext("Accepted %(count)s recommendation.", "Accepted %(count)s recommendations.",
                                           count) % {"count": count})
    return _guarded(request, pk, accept_all)


class FinalizeForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             label=gettext_lazy("Reason for finalizing now"))


@login_required
@require_http_methods(["GET", "POST"])
def encounter_finalize(request, pk):
    """GET: the confirmation, with what is still unfinished; POST: finalize (a reason is needed when an
    emergency's emergency work is all still pending: the service says so, and the form shows it)."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk,
                                               action="view" if request.method == "GET" else "open_for_update")
    if encounter.is_finalized:
        messages.error(request, _("This encounter is finalized and can no longer be changed."))
        return redirect("encounter-workup", pk=encounter.pk)
    form = FinalizeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            record_services.encounter_finalize(actor=actor, encounter=encounter, reason=form.cleaned_data["reason"])
        except RecordLocked as error:
            messages.error(request, error.message)
            return redirect("encounter-workup", pk=encounter.pk)
        except ValidationError as error:
            for field, problems in (error.message_dict.items() if hasattr(error, "error_dict")
                                    else [(None, error.messages)]):
                for message in problems:
                    form.add_error("reason" if field == "reason" else None, message)
        else:
            messages.success(request, _("Encounter finalized."))
            return redirect("encounter-workup", pk=encounter.pk)
    unfinished = record_selectors.encounter_unfinished(encounter=encounter)
    workup = selectors.workup_latest(actor=actor, encounter=encounter)
    links = form_error_links(form) if form.is_bound else []
    return render(request, "encounters/finalize.html", {
        "encounter": encounter, "patient": encounter.patient, "form": form, "unfinished": unfinished,
        "disposition": workup.disposition if workup else "", "error_links": links,
        "stale": workup is None or services.workup_is_stale(workup, encounter),
        "reason_required": unfinished["emergency_untouched"]})


def _decide(request, pk, model, template):
    actor = _actor(request)
    row = selectors.recommendation_get(actor=actor, model=model, pk=pk)
    form = DecisionForm(request.POST)
    error = ""
    if not form.is_valid():
        error = _("Choose accept or decline.")
    else:
        try:
            row = services.recommendation_decide(actor=actor, recommendation=row, **form.cleaned_data)
        except (ValidationError, RecordLocked) as problem:
            error = problem.message if isinstance(problem, RecordLocked) else " ".join(problem.messages)
    vocabulary = current_kb().vocabulary
    rendered = selectors.item_row(row, vocabulary) if model is WorkupItem else selectors.referral_row(row, vocabulary)
    if request.htmx:
        return render(request, template, {"row": rendered, "error": error, "editable": True,
                                          "vocabulary": vocabulary})
    if error:
        messages.error(request, error)
    return redirect("encounter-workup", pk=row.workup.encounter_id)


@login_required
@require_POST
def item_decide(request, pk):
    return _decide(request, pk, WorkupItem, "workups/_item.html")


@login_required
@require_POST
def referral_decide(request, pk):
    return _decide(request, pk, WorkupReferral, "workups/_referral.html")
