"""Writes to clinics and the clinical record. Each write is audit-logged."""

from __future__ import annotations

import secrets
from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from knox.models import AuthToken

from clinic.audit import Actor, audit_record
from clinic.calendar import local_date
from clinic.errors import RecordLocked
from clinic.identifiers import digits_only, validate_oms_policy, validate_snils
from clinic.models import Clinic, Encounter, EncounterStatus, Membership, Patient
from clinic.spellings import foreign_letters
from clinic.text import search_key
from clinic.vocabulary import current_kb

PATIENT_FIELDS = (
    "given_name",
    "family_name",
    "middle_name",
    "birth_date",
    "sex",
    "identifier",
    "phone",
    "identifier_system",
    "address",
    "snils",
    "oms_policy",
    "insurer",
)
_TEXT_FIELDS = ("given_name", "family_name", "middle_name", "identifier", "phone", "address", "insurer")
ENCOUNTER_FIELDS = (
    "visit_date",
    "chief_complaint",
    "duration_days",
    "pregnant",
    "temperature_c",
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "resp_rate",
    "spo2",
    "findings",
    "notes",
)


# What a Russian clinic prints on form 057/у; an example organisation (the OGRN passes its checksum).
# The demo clinic is Russian: its name prints on Russian letters and leaflets. Earlier versions called it
# "Demo clinic"; a database seeded then has its clinic renamed rather than a second one made beside it.
DEMO_CLINIC_NAME = "Поликлиника № 1 (демо)"
DEMO_CLINIC_OLD_NAME = "Demo clinic"
DEMO_CLINIC = {
    "legal_name": "ГБУЗ «Городская поликлиника № 1» (демонстрационная)",
    "ogrn": "1027700000019",
    "address": "г. Москва, ул. Примерная, д. 1",
    "phone": "+7 495 000-00-00",
    "time_zone": "Europe/Moscow",
    "language": "ru",
}


@transaction.atomic
def demo_clinician_ensure(*, clinic_name: str, username: str, password: str | None) -> tuple[Clinic, object, str, str]:
    """Create (or refresh) a clinic with one GP account; safe to run any number of times.

    Returns the clinic, the user, the password now in force and the user's API token.
    With no password given a random one is set, since a stored hash cannot be shown again.
    """
    if clinic_name == DEMO_CLINIC_NAME and not Clinic.objects.filter(name=clinic_name).exists():
        Clinic.objects.filter(name=DEMO_CLINIC_OLD_NAME).update(name=clinic_name)
    clinic, created = Clinic.objects.get_or_create(name=clinic_name, defaults=DEMO_CLINIC)
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(
        username=username, defaults={"first_name": "Анна", "last_name": "Петрова"}
    )
    password = password or secrets.token_urlsafe(12)
    # The demo login is a real login: the same password rules as any other (ValidationError otherwise).
    validate_password(password, user)
    # The same password again is left alone: setting it would revoke the user's API tokens (clinic.credentials).
    if not user.check_password(password):
        user.set_password(password)
    user.is_active = True
    user.save()
    Membership.objects.update_or_create(
        user=user,
        defaults={"clinic": clinic},
        create_defaults={
            "clinic": clinic,
            "full_name": "Петрова Анна Сергеевна",
            "position": "врач-терапевт участковый",
        },
    )
    # A new API token (knox keeps only its digest, so an old one cannot be shown again); it expires after
    # API_TOKEN_HOURS. A new password above has revoked the user's earlier tokens.
    _instance, token = AuthToken.objects.create(user=user)
    return clinic, user, password, token


def _patient_check(patient: Patient, *, today: date) -> None:
    errors = {}
    if not patient.given_name.strip():
        errors["given_name"] = [_("Enter the given name.")]
    if not patient.family_name.strip():
        errors["family_name"] = [_("Enter the family name.")]
    mixed = {
        "latin": _("Russian and Latin letters are mixed in one word (Latin: %(letters)s): type it in one alphabet."),
        "cyrillic": _(
            "Russian and Latin letters are mixed in one word (Russian: %(letters)s): type it in one alphabet."
        ),
    }
    for name in ("family_name", "given_name", "middle_name"):
        script, letters = foreign_letters(getattr(patient, name) or "")
        if script and name not in errors:
            errors[name] = [mixed[script] % {"letters": letters}]
    if patient.birth_date and patient.birth_date > today:
        errors["birth_date"] = [_("The birth date is in the future.")]
    elif patient.birth_date and patient.age_on(today) > 120:
        errors["birth_date"] = [_("The birth date makes the patient older than 120.")]
    for name, validate in (("snils", validate_snils), ("oms_policy", validate_oms_policy)):
        try:
            validate(getattr(patient, name))
        except ValidationError as error:
            errors[name] = error.messages
    if (
        patient.identifier
        and Patient.objects.filter(
            clinic=patient.clinic, identifier_system=patient.identifier_system, identifier=patient.identifier
        )
        .exclude(pk=patient.pk)
        .exists()
    ):
        errors["identifier"] = [_("Another patient of this clinic has this identifier.")]
    others = Patient.objects.filter(clinic=patient.clinic).exclude(pk=patient.pk)
    for name, label in (("snils", _("SNILS")), ("oms_policy", _("OMS policy"))):
        if getattr(patient, name) and name not in errors and others.filter(**{name: getattr(patient, name)}).exists():
            errors[name] = [_("Another patient of this clinic has this %(what)s.") % {"what": label}]
    if errors:
        raise ValidationError(errors)


def _patient_normalize(patient: Patient) -> None:
    for name in _TEXT_FIELDS:
        setattr(patient, name, (getattr(patient, name) or "").strip())
    # Stored as digits: "112-233-445 95" and "11223344595" are one SNILS.
    patient.snils = digits_only(patient.snils or "")
    patient.oms_policy = digits_only(patient.oms_policy or "")
    patient.name_search = search_key(f"{patient.family_name} {patient.given_name} {patient.middle_name}")


def clinic_today(clinic: Clinic | None) -> date:
    """Today on the clinic's clock, whatever zone the caller runs in (a request activates the clinic's zone; a
    worker, a command or an EHR's call may not): Moscow's 00:30 is still yesterday in UTC."""
    return local_date(timezone.now(), clinic) if clinic is not None else timezone.localdate()


def patient_validate(*, patient: Patient) -> None:
    """The checks patient_create and patient_update make before they save, for a form that edits a Patient
    instance itself (the admin's), so that it shows the errors at their fields instead of failing on save.
    Raises ValidationError by field; normalizes the instance as saving would."""
    _patient_normalize(patient)
    if patient.pk is not None:
        _patient_against_encounters(patient)
    _patient_check(patient, today=clinic_today(patient.clinic if patient.clinic_id else None))


def _patient_save(patient: Patient) -> None:
    _patient_normalize(patient)
    _patient_check(patient, today=clinic_today(patient.clinic if patient.clinic_id else None))
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        raise ValidationError({"identifier": [_("Another patient of this clinic has this identifier.")]}) from None


def patient_duplicates(
    *,
    clinic: Clinic,
    family_name: str,
    given_name: str,
    birth_date: date | None,
    snils: str = "",
    oms_policy: str = "",
    exclude_id=None,
) -> list[Patient]:
    """Patients of the clinic who are likely the same person: the same name and birth date, or the
    same SNILS or OMS policy. Shown to the GP before registering, so no one is registered twice."""
    from django.db.models import Q

    match = Q(pk__in=[])
    if family_name and given_name and birth_date:
        match |= Q(name_search__startswith=search_key(f"{family_name} {given_name}"), birth_date=birth_date)
    if digits_only(snils):
        match |= Q(snils=digits_only(snils))
    if digits_only(oms_policy):
        match |= Q(oms_policy=digits_only(oms_policy))
    found = Patient.objects.filter(match, clinic=clinic)
    if exclude_id is not None:
        found = found.exclude(pk=exclude_id)
    return list(found[:10])


def duplicate_matches(
    other: Patient, *, family_name: str, given_name: str, birth_date: date | None, snils: str = "", oms_policy: str = ""
) -> list[str]:
    """What a likely duplicate (from patient_duplicates) shares with the patient being registered: "name" (the
    name and the birth date), "snils", "oms_policy". A SNILS or a policy belongs to one person."""
    matches = []
    if (
        birth_date
        and other.birth_date == birth_date
        and other.name_search.startswith(search_key(f"{family_name} {given_name}"))
    ):
        matches.append("name")
    for field, value in (("snils", snils), ("oms_policy", oms_policy)):
        if digits_only(value) and getattr(other, field) == digits_only(value):
            matches.append(field)
    return matches


@transaction.atomic
def patient_create(
    *,
    actor: Actor,
    given_name: str,
    family_name: str,
    birth_date: date,
    sex: str,
    identifier: str = "",
    phone: str = "",
    identifier_system: str = "",
    middle_name: str = "",
    address: str = "",
    snils: str = "",
    oms_policy: str = "",
    insurer: str = "",
) -> Patient:
    if actor.clinic is None:
        raise ValidationError(_("You are not a member of a clinic."))
    patient = Patient(
        clinic=actor.clinic,
        given_name=given_name,
        family_name=family_name,
        birth_date=birth_date,
        sex=sex,
        identifier=identifier or "",
        phone=phone or "",
        identifier_system=identifier_system or "",
        middle_name=middle_name or "",
        address=address or "",
        snils=snils or "",
        oms_policy=oms_policy or "",
        insurer=insurer or "",
    )
    _patient_save(patient)
    audit_record(actor=actor, action="create", object_type="patient", object_id=patient.pk, patient_id=patient.pk)
    return patient


@transaction.atomic
def patient_update(*, actor: Actor, patient: Patient, **changes) -> Patient:
    for name, value in changes.items():
        if name not in PATIENT_FIELDS:
            raise TypeError(f"patient_update() got an unexpected field {name!r}")
        setattr(patient, name, value if value is not None or name in ("birth_date", "sex") else "")
    _patient_against_encounters(patient)
    patient.version = (patient.version or 1) + 1  # the FHIR versionId (ETag) of the new state
    _patient_save(patient)
    audit_record(actor=actor, action="update", object_type="patient", object_id=patient.pk, patient_id=patient.pk)
    return patient


def _patient_against_encounters(patient: Patient) -> None:
    """A change to birth date or sex must leave every recorded encounter a possible one."""
    vocabulary = current_kb().vocabulary
    errors: dict[str, list[str]] = {}
    for visit_date, pregnant, findings in patient.encounters.values_list("visit_date", "pregnant", "findings"):
        if patient.birth_date and visit_date < patient.birth_date and "birth_date" not in errors:
            errors["birth_date"] = [
                _("The patient has an encounter on %(date)s, before this birth date.")
                % {"date": date_format(visit_date, "SHORT_DATE_FORMAT")}
            ]
        if "sex" in errors:
            continue
        if pregnant and patient.sex == "male":
            errors["sex"] = [_("This patient has encounters recorded as pregnant.")]
        for code, present in (findings or {}).items():
            only = vocabulary.findings.get(code, {}).get("sex")
            if present and only and only != patient.sex:
                errors["sex"] = [
                    _("This patient has encounters recording %(finding)s.")
                    % {"finding": vocabulary.findings[code]["name"].lower()}
                ]
                break
    if errors:
        raise ValidationError(errors)


def _locked_check(encounter: Encounter) -> None:
    if encounter.status == EncounterStatus.FINALIZED:
        raise RecordLocked()


@transaction.atomic
def encounter_create(*, actor: Actor, patient: Patient, data: dict) -> Encounter:
    """`data` is validated already (clinic.serializers.EncounterWriteSerializer or the browser form)."""
    encounter = Encounter(
        clinic=patient.clinic,
        patient=patient,
        clinician=actor.user,
        visit_date=data.get("visit_date") or clinic_today(patient.clinic),
        duration_days=data["duration_days"],
    )
    for name in ENCOUNTER_FIELDS:
        if name in data:
            setattr(encounter, name, data[name] if data[name] is not None or name not in ("chief_complaint",) else "")
    encounter.notes = encounter.notes or {}
    encounter.save()
    audit_record(actor=actor, action="create", object_type="encounter", object_id=encounter.pk, patient_id=patient.pk)
    return encounter


@transaction.atomic
def encounter_update(*, actor: Actor, encounter: Encounter, data: dict) -> Encounter:
    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    _locked_check(encounter)
    for name in ENCOUNTER_FIELDS:
        if name in data:
            value = data[name]
            if name == "chief_complaint" and value is None:
                value = ""
            setattr(encounter, name, value)
    encounter.save()
    audit_record(
        actor=actor, action="update", object_type="encounter", object_id=encounter.pk, patient_id=encounter.patient_id
    )
    return encounter


@transaction.atomic
def encounter_lock(*, actor: Actor, encounter: Encounter, reason: str = "") -> Encounter:
    """Lock the encounter as finalized: the patient's sex and age as they were on the visit, who and when,
    and the GP's reason. Only the record: the workup it is finalized with, and whether it needs a reason,
    are the workups' (workups.services.encounter_finalize, which calls this)."""
    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    _locked_check(encounter)
    encounter.patient_sex = encounter.patient.sex
    encounter.patient_age = encounter.patient.age_on(encounter.visit_date)
    encounter.status = EncounterStatus.FINALIZED
    encounter.finalized_at = timezone.now()
    encounter.finalized_by = actor.user
    encounter.finalize_reason = (reason or "").strip()
    encounter.save(
        update_fields=[
            "status",
            "finalized_at",
            "finalized_by",
            "finalize_reason",
            "patient_sex",
            "patient_age",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor, action="finalize", object_type="encounter", object_id=encounter.pk, patient_id=encounter.patient_id
    )
    return encounter


def membership_language_set(*, actor: Actor, language: str) -> None:
    """The GP's own interface and document language (ru/en)."""
    membership = getattr(actor.user, "membership", None)
    if membership is None or language not in ("ru", "en"):
        return
    membership.language = language
    membership.save(update_fields=["language"])
