"""The GP's browser workflow: thin views over the same selectors and services as the API."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clinic import selectors, services
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from clinic.forms import EncounterForm, PatientForm, form_error_links, subfebrile_without_fever
from clinic.summary import findings_summary, vital_signs
from workups import selectors as workup_selectors
from workups import services as workup_services
from workups.localized import current_kb
from workups.serializers import case_from_values


def _actor(request):
    return actor_from_request(request, channel="web")


def _apply_errors(form, error: ValidationError):
    for field, messages_ in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


@login_required
@require_http_methods(["GET", "POST"])
def patient_list(request):
    """Recent patients, and search by name (POST, so no name ends up in a URL or an access log)."""
    actor = _actor(request)
    query = request.POST.get("q", "").strip() if request.method == "POST" else ""
    birth_date = (request.POST.get("birth_date") or None) if request.method == "POST" else None
    date_error = ""
    if birth_date:
        try:
            birth_date = date.fromisoformat(birth_date)
        except ValueError:
            date_error, birth_date = _("Use the date picker (YYYY-MM-DD)."), None
    patients = selectors.patient_queryset(actor=actor, search=query, birth_date=birth_date)
    if not (query or birth_date):
        patients = patients.order_by("-updated_at", "-id")  # most recently seen first
    page = Paginator(patients, 25).get_page(request.GET.get("page"))
    selectors.patients_listed(actor=actor, patients=page.object_list, searched=bool(query or birth_date))
    context = {"page": page, "query": query, "birth_date": request.POST.get("birth_date", ""), "date_error": date_error}
    if request.htmx:
        return render(request, "patients/_results.html", context)
    return render(request, "patients/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request):
    form = PatientForm(request.POST or None)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        actor = _actor(request)
        values = form.cleaned_data
        if not request.POST.get("allow_duplicate") and actor.clinic is not None:
            # Before registering: the same name and birth date, SNILS or OMS policy is likely the same person.
            duplicates = services.patient_duplicates(
                clinic=actor.clinic,
                family_name=values["family_name"],
                given_name=values["given_name"],
                birth_date=values["birth_date"],
                snils=values.get("snils", ""),
                oms_policy=values.get("oms_policy", ""),
            )
            if duplicates:
                selectors.patients_listed(actor=actor, patients=duplicates, searched=True)
        if not duplicates:
            try:
                patient = services.patient_create(actor=actor, **values)
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(request, _("Registered %(name)s.") % {"name": patient.full_name})
                return redirect("patient-detail", pk=patient.pk)
    return render(
        request,
        "patients/form.html",
        {
            "form": form,
            "title": _("Register a patient"),
            "duplicates": duplicates,
            "error_links": form_error_links(form) if form.is_bound else [],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def patient_edit(request, pk):
    actor = _actor(request)
    patient = selectors.patient_get(
        actor=actor, patient_id=pk, action="view" if request.method == "GET" else "open_for_update"
    )
    form = PatientForm(request.POST or None, initial=PatientForm.initial_from(patient))
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(actor=actor, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("patient-detail", pk=patient.pk)
    return render(
        request,
        "patients/form.html",
        {
            "form": form,
            "patient": patient,
            "title": _("Edit %(name)s") % {"name": patient.full_name},
            "error_links": form_error_links(form) if form.is_bound else [],
        },
    )


@login_required
@require_safe
def patient_detail(request, pk):
    actor = _actor(request)
    patient = selectors.patient_get(actor=actor, patient_id=pk)
    encounters = selectors.encounters_of_patient(actor=actor, patient=patient)
    return render(
        request,
        "patients/detail.html",
        {"patient": patient, "encounters": encounters, "age": patient.age_on(timezone.localdate())},
    )


def _panel(request, form, patient):
    """The live workup panel for whatever the form holds now, saved or not."""
    result = None
    if form.is_valid():
        values = form.validated
        age = patient.age_on(values.get("visit_date") or form.cleaned_data["visit_date"])
        result = workup_selectors.workup_preview(case=case_from_values(values, sex=patient.sex, age=age))
    return render(
        request,
        "encounters/_panel.html",
        {
            "result": result,
            "form": form,
            "preview": True,
            "vocabulary": current_kb().vocabulary,
            "subfebrile": form.subfebrile_without_fever(),
        },
    )


def _red_flags_no(request, patient, encounter):
    """The "all remaining red flags: No" button without JavaScript: the form shown again, nothing saved,
    with every unanswered red flag set to No for the GP to see, change if need be, and save."""
    initial, count = EncounterForm.with_red_flags_no(request.POST, patient)
    form = EncounterForm(patient=patient, initial=initial)
    if count:
        messages.info(request, _("%(count)s red flags set to No: check them, then save.") % {"count": count})
    return _form_page(request, form, patient, encounter)


def _form_page(request, form, patient, encounter):
    return render(
        request,
        "encounters/form.html",
        {"form": form, "patient": patient, "encounter": encounter, "subfebrile": form.subfebrile_without_fever()},
    )


def record_context(encounter) -> dict:
    """What the record (finalized page, print view) shows beside the findings: red flags not asked, and a
    subfebrile temperature recorded against a No to fever."""
    kb = current_kb()
    findings = encounter.findings or {}
    applicable = [
        code for code in kb.red_flags if kb.vocabulary.findings[code].get("sex") in (None, encounter.patient.sex)
    ]
    return {
        "not_asked": [kb.vocabulary.findings[code]["name"] for code in applicable if code not in findings],
        "has_red_flags_section": any(code in findings for code in kb.vocabulary.findings_in_group("rf"))
        or bool((encounter.notes or {}).get("red_flags")),
        "subfebrile": subfebrile_without_fever(encounter.temperature_c, findings.get("rf_fever")),
    }


@login_required
@require_http_methods(["GET", "POST"])
def encounter_create(request, pk):
    actor = _actor(request)
    patient = selectors.patient_get(
        actor=actor, patient_id=pk, action="view" if request.method == "GET" else "open_for_update"
    )
    if request.method == "POST" and "red_flags_no" in request.POST:
        return _red_flags_no(request, patient, None)
    form = EncounterForm(request.POST or None, patient=patient, initial=EncounterForm.blank_initial())
    if request.method == "POST" and form.is_valid():
        encounter = services.encounter_create(actor=actor, patient=patient, data=form.validated)
        if "show_workup" in request.POST:
            workup_services.workup_generate(actor=actor, encounter=encounter)
            return redirect("encounter-workup", pk=encounter.pk)
        messages.success(request, _("Encounter saved as a draft."))
        return redirect("encounter-detail", pk=encounter.pk)
    return _form_page(request, form, patient, None)


@login_required
@require_POST
def encounter_preview(request, pk):
    """htmx: the panel for the unsaved form of a new or existing encounter of patient `pk`."""
    patient = selectors.patient_get(actor=_actor(request), patient_id=pk, action="preview")
    return _panel(request, EncounterForm(request.POST, patient=patient), patient)


@login_required
@require_http_methods(["GET", "POST"])
def encounter_detail(request, pk):
    actor = _actor(request)
    encounter = selectors.encounter_get(
        actor=actor, encounter_id=pk, action="view" if request.method == "GET" else "open_for_update"
    )
    patient = encounter.patient
    if encounter.is_finalized:
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])
        workup = workup_selectors.workup_latest(actor=actor, encounter=encounter)
        return render(
            request,
            "encounters/finalized.html",
            {
                "encounter": encounter,
                "patient": patient,
                "workup": workup,
                "result": workup_selectors.workup_representation(workup=workup, encounter=encounter)
                if workup
                else None,
                "summary": findings_summary(encounter),
                "vitals": vital_signs(encounter),
                **record_context(encounter),
            },
        )
    if request.method == "POST" and "red_flags_no" in request.POST:
        return _red_flags_no(request, patient, encounter)
    form = EncounterForm(request.POST or None, patient=patient, initial=EncounterForm.initial_from(encounter))
    if request.method == "POST" and form.is_valid():
        try:
            encounter = services.encounter_update(actor=actor, encounter=encounter, data=form.validated)
        except RecordLocked as error:
            messages.error(request, error.message)
            return redirect("encounter-detail", pk=encounter.pk)
        if "show_workup" in request.POST:
            workup_services.workup_current(actor=actor, encounter=encounter)
            return redirect("encounter-workup", pk=encounter.pk)
        messages.success(request, _("Saved."))
        return redirect("encounter-detail", pk=encounter.pk)
    return _form_page(request, form, patient, encounter)


@require_POST
def language_switch(request):
    """The header's language switch: remembered in the GP's profile, so it follows them to any computer."""
    from django.utils.http import url_has_allowed_host_and_scheme

    from clinic.middleware import supported_language

    language = supported_language(request.POST.get("language"))
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = redirect(target)
    if language is None:
        return response
    if request.user.is_authenticated:
        services.membership_language_set(actor=_actor(request), language=language)
    else:
        # Before login (the login page) there is no profile: a cookie carries the choice.
        from django.conf import settings as django_settings

        response.set_cookie(django_settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax", secure=request.is_secure())
    return response
