"""The record's pages in the browser: the patient list and search, registering and editing a patient, the
language switch. Thin views over the same selectors and services as the API. The consultation's pages show
the workups too, so they live with them (workups.consultation_web)."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from clinic import selectors, services
from clinic.audit import actor_from_request
from clinic.forms import PatientForm, form_error_links
from clinic.numbers import PAGE_MOST, whole_number


def _actor(request):
    return actor_from_request(request, channel="web")


def _apply_errors(form, error: ValidationError):
    for field, messages_ in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
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
    number = whole_number(request.GET.get("page", ""), most=PAGE_MOST) or 1
    page = selectors.patient_page(patients=patients, number=number, size=25)
    # Typed with the wrong layout, or in Latin letters: nobody is found as typed, so the first other spelling
    # that finds someone is shown instead, named above the list; the box keeps what was typed, and its pages
    # (which post it again) find the same spelling again.
    respelled = None
    if query and not page.count:
        respelled = selectors.patient_page_respelled(
            actor=actor, search=query, birth_date=birth_date, number=number, size=25
        )
        if respelled:
            patients, page = respelled.patients, respelled.page
    if not page.object_list and page.number > 1 and not page.count_is_lower_bound:
        # Past the last page (an old link): the last page, as Django's paginator would.
        page = selectors.patient_page(patients=patients, number=page.num_pages, size=25)
    selectors.patients_listed(
        actor=actor, patients=page.object_list, kinds=selectors.search_kinds(search=query, birth_date=birth_date)
    )
    context = {
        "page": page,
        "query": query,
        "respelled": respelled,
        "birth_date": request.POST.get("birth_date", ""),
        "date_error": date_error,
        "limit": number_format(selectors.PATIENT_COUNT_LIMIT, force_grouping=True),
    }
    if request.htmx:
        return render(request, "patients/_results.html", context)
    return render(request, "patients/list.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
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
                keys = {name: values.get(name, "") for name in ("family_name", "given_name", "birth_date", "snils")}
                duplicates = [
                    {
                        "patient": other,
                        "matches": services.duplicate_matches(other, **keys, oms_policy=values.get("oms_policy", "")),
                    }
                    for other in duplicates
                ]
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
            # A SNILS or an OMS policy is one person's: registering another under it would be refused anyway.
            "same_identifier": any({"snils", "oms_policy"} & set(row["matches"]) for row in duplicates),
            "error_links": form_error_links(form) if form.is_bound else [],
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def patient_edit(request, pk):
    actor = _actor(request)
    patient = selectors.patient_get(
        actor=actor, patient_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
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

        response.set_cookie(
            django_settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=django_settings.LANGUAGE_COOKIE_AGE,
            samesite=django_settings.LANGUAGE_COOKIE_SAMESITE,
            secure=django_settings.LANGUAGE_COOKIE_SECURE or request.is_secure(),
            httponly=django_settings.LANGUAGE_COOKIE_HTTPONLY,
        )
    return response
