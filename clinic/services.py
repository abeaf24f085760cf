"""Writes to clinics and the clinical record. Each write is audit-logged."""
from __future__ import annotations

import secrets
from datetime import date

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clinic.audit import Actor, audit_record
from clinic.errors import RecordLocked
from clinic.models import Clinic, Encounter, EncounterStatus, Membership, Patient
from clinic.text import search_key

PATIENT_FIELDS = ("given_name", "family_name", "birth_date", "sex", "identifier", "phone", "identifier_system")
ENCOUNTER_FIELDS = (
    "visit_date", "chief_complaint", "duration_days", "pregnant", "temperature_c", "heart_rate", "systolic_bp",
    "diastolic_bp", "resp_rate", "spo2", "findings", "notes",
)


@transaction.atomic
def demo_clinician_ensure(*, clinic_name: str, username: str, password: str | None) -> tuple[Clinic, object, str, str]:
    """Create (or refresh) a clinic with one GP account; safe to run any number of times.

    Returns the clinic, the user, the password now in force and the user's API token.
    With no password given a random one is set, since a stored hash cannot be shown again.
    """
    clinic, _ = Clinic.objects.get_or_create(name=clinic_name)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"first_name": "Demo", "last_name": "GP"})
    password = password or secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_active = True
    user.save()
    Membership.objects.update_or_create(user=user, defaults={"clinic": clinic})
    token, _ = Token.objects.get_or_create(user=user)
    return clinic, user, password, token.key


def _patient_check(patient: Patient, *, today: date) -> None:
    errors = {}
    if not patient.given_name.strip():
        errors["given_name"] = ["Enter the given name."]
    if not patient.family_name.strip():
        errors["family_name"] = ["Enter the family name."]
    if patient.birth_date and patient.birth_date > today:
        errors["birth_date"] = ["The birth date is in the future."]
    elif patient.birth_date and patient.age_on(today) > 120:
        errors["birth_date"] = ["The birth date makes the patient older than 120."]
    if patient.identifier and Patient.objects.filter(
        clinic=patient.clinic, identifier_system=patient.identifier_system, identifier=patient.identifier
    ).exclude(pk=patient.pk).exists():
        errors["identifier"] = ["Another patient of this clinic has this identifier."]
    if errors:
        raise ValidationError(errors)


def _patient_save(patient: Patient) -> None:
    patient.given_name = patient.given_name.strip()
    patient.family_name = patient.family_name.strip()
    patient.identifier = patient.identifier.strip()
    patient.phone = patient.phone.strip()
    patient.name_search = search_key(f"{patient.family_name} {patient.given_name}")
    _patient_check(patient, today=timezone.localdate())
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        raise ValidationError({"identifier": ["Another patient of this clinic has this identifier."]}) from None


@transaction.atomic
def patient_create(*, actor: Actor, given_name: str, family_name: str, birth_date: date, sex: str,
                   identifier: str = "", phone: str = "", identifier_system: str = "") -> Patient:
    if actor.clinic is None:
        raise ValidationError("You are not a member of a clinic.")
    patient = Patient(clinic=actor.clinic, given_name=given_name, family_name=family_name, birth_date=birth_date,
                      sex=sex, identifier=identifier or "", phone=phone or "", identifier_system=identifier_system or "")
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
    _patient_save(patient)
    audit_record(actor=actor, action="update", object_type="patient", object_id=patient.pk, patient_id=patient.pk)
    return patient


def _patient_against_encounters(patient: Patient) -> None:
    """A change to birth date or sex must leave every recorded encounter a possible one."""
    from workups.engine import get_knowledge_base

    vocabulary = get_knowledge_base().vocabulary
    errors: dict[str, list[str]] = {}
    for visit_date, pregnant, findings in patient.encounters.values_list("visit_date", "pregnant", "findings"):
        if patient.birth_date and visit_date < patient.birth_date and "birth_date" not in errors:
            errors["birth_date"] = [f"The patient has an encounter on {visit_date:%Y-%m-%d}, before this birth date."]
        if "sex" in errors:
            continue
        if pregnant and patient.sex == "male":
            errors["sex"] = ["This patient has encounters recorded as pregnant."]
        for code, present in (findings or {}).items():
            only = vocabulary.findings.get(code, {}).get("sex")
            if present and only and only != patient.sex:
                errors["sex"] = [f"This patient has encounters recording {vocabulary.findings[code]['name'].lower()}."]
                break
    if errors:
        raise ValidationError(errors)


def _locked_check(encounter: Encounter) -> None:
    if encounter.status == EncounterStatus.FINALIZED:
        raise RecordLocked()


@transaction.atomic
def encounter_create(*, actor: Actor, patient: Patient, data: dict) -> Encounter:
    """`data` is validated already (workups.serializers.EncounterSerializer or the browser form)."""
    encounter = Encounter(clinic=patient.clinic, patient=patient, clinician=actor.user,
                          visit_date=data.get("visit_date") or timezone.localdate(),
                          duration_days=data["duration_days"])
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
    audit_record(actor=actor, action="update", object_type="encounter", object_id=encounter.pk,
                 patient_id=encounter.patient_id)
    return encounter


@transaction.atomic
def encounter_finalize(*, actor: Actor, encounter: Encounter) -> Encounter:
    """Lock the encounter with its latest workup (generated now if missing or out of date)."""
    from workups.services import workup_current

    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    _locked_check(encounter)
    workup_current(actor=actor, encounter=encounter)
    encounter.status = EncounterStatus.FINALIZED
    encounter.finalized_at = timezone.now()
    encounter.finalized_by = actor.user
    encounter.save(update_fields=["status", "finalized_at", "finalized_by", "updated_at"])
    audit_record(actor=actor, action="finalize", object_type="encounter", object_id=encounter.pk,
                 patient_id=encounter.patient_id)
    return encounter
