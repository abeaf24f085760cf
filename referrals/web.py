"""Letters and the requisition in the browser: create, edit, issue, watch the render, download."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _, gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from clinic import selectors as record_selectors
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from referrals import selectors, services
from referrals.models import PdfStatus
from workups import selectors as workup_selectors
from workups.localized import current_kb
from workups.models import WorkupReferral


def _actor(request):
    return actor_from_request(request, channel="web")


class ReferralEditForm(forms.Form):
    urgency = forms.ChoiceField(choices=[("routine", pgettext_lazy("urgency", "Routine")),
                                         ("urgent", pgettext_lazy("urgency", "Urgent")),
                                         ("emergency", pgettext_lazy("urgency", "Emergency"))],
                                label=gettext_lazy("Urgency"))
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             label=gettext_lazy("Reason for referral"))
    question = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
                               label=gettext_lazy("Clinical question for the specialist"))


class ReferralByHandForm(ReferralEditForm):
    specialty = forms.ChoiceField(label=gettext_lazy("Specialty"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = list(current_kb().vocabulary.specialties.items())
        self.order_fields(["specialty", "urgency", "reason", "question"])


def _messages_from(request, error):
    for message in (error.messages if isinstance(error, ValidationError) else [error.message]):
        messages.error(request, message)


@login_required
@require_POST
def letter_from_recommendation(request, pk):
    actor = _actor(request)
    row = workup_selectors.recommendation_get(actor=actor, model=WorkupReferral, pk=pk)
    try:
        referral = services.referral_create(actor=actor, encounter=row.workup.encounter, recommendation=row)
    except ValidationError as error:
        _messages_from(request, error)
        return redirect("encounter-workup", pk=row.workup.encounter_id)
    return redirect("referral-detail", pk=referral.pk)


@login_required
@require_http_methods(["GET", "POST"])
def referral_by_hand(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk,
                                               action="view" if request.method == "GET" else "open_for_update")
    form = ReferralByHandForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            referral = services.referral_create(actor=actor, encounter=encounter, **form.cleaned_data)
        except ValidationError as error:
            _messages_from(request, error)
        else:
            return redirect("referral-detail", pk=referral.pk)
    return render(request, "referrals/by_hand.html", {"form": form, "encounter": encounter,
                                                      "patient": encounter.patient})


@login_required
@require_http_methods(["GET", "POST"])
def referral_detail(request, pk):
    actor = _actor(request)
    referral = selectors.referral_get(actor=actor, referral_id=pk,
                                      action="view" if request.method == "GET" else "open_for_update")
    form = ReferralEditForm(request.POST or None, initial={"urgency": referral.urgency, "reason": referral.reason,
                                                           "question": referral.question})
    if request.method == "POST" and form.is_valid():
        try:
            services.referral_update(actor=actor, referral=referral, **form.cleaned_data)
        except (ValidationError, RecordLocked) as error:
            _messages_from(request, error)
        else:
            messages.success(request, _("Saved; the letter is being rendered again."))
        return redirect("referral-detail", pk=referral.pk)
    return render(request, "referrals/detail.html", {
        "referral": referral, "encounter": referral.encounter, "patient": referral.encounter.patient, "form": form,
        "specialty_name": current_kb().vocabulary.specialties.get(referral.specialty, referral.specialty)})


@login_required
@require_POST
def referral_issue(request, pk):
    actor = _actor(request)
    referral = selectors.referral_get(actor=actor, referral_id=pk, action="open_for_update")
    services.referral_issue(actor=actor, referral=referral)
    messages.success(request, _("Referral issued."))
    return redirect("referral-detail", pk=referral.pk)


@login_required
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


def _download(document, filename):
    if document.pdf_status != PdfStatus.READY or not document.pdf_file:
        raise Http404(_("The PDF is not ready."))
    response = FileResponse(document.pdf_file.open("rb"), content_type="application/pdf", filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def referral_pdf(request, pk):
    referral = selectors.referral_get(actor=_actor(request), referral_id=pk, action="download")
    return _download(referral, f"referral-{referral.pk}.pdf")


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
def requisition_status(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="status")
    requisition = selectors.requisition_latest(actor=actor, encounter=encounter, action="status")
    return render(request, "referrals/_pdf_status.html", {"document": requisition, "kind": "requisition",
                                                          "encounter": encounter})


@login_required
def requisition_pdf(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="download")
    requisition = selectors.requisition_latest(actor=actor, encounter=encounter, action="download")
    if requisition is None:
        raise Http404(_("No requisition yet."))
    return _download(requisition, f"requisition-{encounter.pk}.pdf")
