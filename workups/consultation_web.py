"""The consultation in the browser: the patient's page with each encounter's latest disposition, the
encounter form with its live workup panel, and the encounter page (the form while it is a draft, the
record with its workup once finalized). They show the record and its workups together, so they live with
the workups; the record's own pages (patients, their registration) are clinic.web."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clinic import selectors as record_selectors
from clinic import services as record_services
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from clinic.forms import EncounterForm
from clinic.summary import FEVER, fever_overridden, findings_summary, record_context, vital_signs
from workups import selectors, services
from workups.forms import ENCOUNTER_FORM_RENDERER
from workups.localized import current_kb
from workups.serializers import case_from_values


def _actor(request):
    return actor_from_request(request, channel="web")


@login_required
@require_safe
def patient_detail(request, pk):
    actor = _actor(request)
    patient = record_selectors.patient_get(actor=actor, patient_id=pk)
    encounters = selectors.encounters_with_disposition(
        record_selectors.encounters_of_patient(actor=actor, patient=patient)
    )
    # A page at a time (newest first, ties by id): a patient seen for years has thousands of encounters.
    encounters = Paginator(encounters, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "patients/detail.html",
        {"patient": patient, "encounters": encounters, "age": patient.age_on(timezone.localdate())},
    )


def _panel(request, form, patient):
    """The live workup panel for whatever the form holds now, saved or not."""
    result = None
    overridden = None
    if form.is_valid():
        values = form.validated
        age = patient.age_on(values.get("visit_date") or form.cleaned_data["visit_date"])
        case = case_from_values(values, sex=patient.sex, age=age)
        result = selectors.workup_preview(case=case)
        if fever_overridden(case.temperature_c, case.findings.get(FEVER)):
            overridden = case.temperature_c
    return render(
        request,
        "encounters/_panel.html",
        {
            "result": result,
            "form": form,
            "preview": True,
            "vocabulary": current_kb().vocabulary,
            "subfebrile": form.subfebrile_without_fever(),
            "fever_overridden": overridden,
        },
    )


def _red_flags_no(request, patient, encounter):
    """The "all remaining red flags: No" button without JavaScript: the form shown again, nothing saved,
    with every unanswered red flag set to No for the GP to see, change if need be, and save."""
    initial, count = EncounterForm.with_red_flags_no(request.POST, patient)
    form = EncounterForm(patient=patient, initial=initial, renderer=ENCOUNTER_FORM_RENDERER)
    if count:
        text = _("Unanswered red flags set to No (%(count)s): check them, then save.")
        messages.info(request, text % {"count": count})
    return _form_page(request, form, patient, encounter)


def _form_page(request, form, patient, encounter):
    return render(
        request,
        "encounters/form.html",
        {"form": form, "patient": patient, "encounter": encounter, "subfebrile": form.subfebrile_without_fever()},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def encounter_create(request, pk):
    actor = _actor(request)
    patient = record_selectors.patient_get(
        actor=actor, patient_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if request.method == "POST" and "red_flags_no" in request.POST:
        return _red_flags_no(request, patient, None)
    form = EncounterForm(
        request.POST or None, patient=patient, initial=EncounterForm.blank_initial(), renderer=ENCOUNTER_FORM_RENDERER
    )
    if request.method == "POST" and form.is_valid():
        encounter = record_services.encounter_create(actor=actor, patient=patient, data=form.validated)
        if "show_workup" in request.POST:
            services.workup_generate(actor=actor, encounter=encounter)
            return redirect("encounter-workup", pk=encounter.pk)
        messages.success(request, _("Encounter saved as a draft."))
        return redirect("encounter-detail", pk=encounter.pk)
    return _form_page(request, form, patient, None)


@login_required
@require_POST
def encounter_preview(request, pk):
    """htmx: the panel for the unsaved form of a new or existing encounter of patient `pk`."""
    patient = record_selectors.patient_get(actor=_actor(request), patient_id=pk, action="preview")
    return _panel(request, EncounterForm(request.POST, patient=patient, renderer=ENCOUNTER_FORM_RENDERER), patient)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def encounter_detail(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(
        actor=actor, encounter_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    patient = encounter.patient
    if encounter.is_finalized:
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])
        workup = selectors.workup_latest(actor=actor, encounter=encounter)
        return render(
            request,
            "encounters/finalized.html",
            {
                "encounter": encounter,
                "patient": patient,
                "workup": workup,
                "result": selectors.workup_representation(workup=workup, encounter=encounter) if workup else None,
                "summary": findings_summary(encounter),
                "vitals": vital_signs(encounter),
                **record_context(encounter),
            },
        )
    if request.method == "POST" and "red_flags_no" in request.POST:
        return _red_flags_no(request, patient, encounter)
    form = EncounterForm(
        request.POST or None,
        patient=patient,
        initial=EncounterForm.initial_from(encounter),
        renderer=ENCOUNTER_FORM_RENDERER,
    )
    if request.method == "POST" and form.is_valid():
        try:
            encounter = record_services.encounter_update(actor=actor, encounter=encounter, data=form.validated)
        except RecordLocked as error:
            messages.error(request, error.message)
            return redirect("encounter-detail", pk=encounter.pk)
        if "show_workup" in request.POST:
            services.workup_current(actor=actor, encounter=encounter)
            return redirect("encounter-workup", pk=encounter.pk)
        messages.success(request, _("Saved."))
        return redirect("encounter-detail", pk=encounter.pk)
    return _form_page(request, form, patient, encounter)
