"""Factories and helpers for the clinical record: patients, encounters, workups.

Rows are made directly (no audit events), with `name_search` kept the way clinic.services keeps it,
so tests of the audit trail only see what the request under test recorded.
"""

import contextlib
import datetime
import zoneinfo

import factory
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from clinic.audit import Actor
from clinic.models import Encounter, Patient
from clinic.text import search_key
from tests.cases import red_flags_absent
from tests.factories import ClinicFactory, MembershipFactory

LOCATION_ONLY = {"loc_lumbar": True}
# Lumbar numbness with urinary symptoms: a routine workup with items and referrals.
URINARY = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}


def screened(findings=None) -> dict:
    """`findings` with every red flag not given answered as absent."""
    result = dict(findings or LOCATION_ONLY)
    for code, value in red_flags_absent().items():
        result.setdefault(code, value)
    return result


def clinic_local(moment=None, clinic=None) -> datetime.datetime:
    """A moment (now by default) on the clinic's clock, as the app dates a visit or a document: the test server's
    zone differs from the clinic's for hours a day (21:00-24:00 UTC is already tomorrow in Moscow)."""
    zone = zoneinfo.ZoneInfo(clinic.time_zone if clinic is not None else "Europe/Moscow")
    return timezone.localtime(moment or timezone.now(), zone)


def clinic_today(clinic=None) -> datetime.date:
    """Today where the clinic is (the factories' clinics are in Moscow unless told otherwise)."""
    return clinic_local(clinic=clinic).date()


def clinic_of(user):
    return user.membership.clinic


def actor_for(user, *, channel="api", ip="127.0.0.1") -> Actor:
    return Actor(user=user, clinic=clinic_of(user), channel=channel, ip=ip)


def api_token_for(user) -> str:
    """A new API token (knox) for the user: the key to send as `Authorization: Token <key>`."""
    return AuthToken.objects.create(user=user)[1]


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    given_name = factory.Sequence(lambda n: f"Given{n}")
    family_name = factory.Sequence(lambda n: f"Family{n}")
    birth_date = datetime.date(1980, 5, 17)
    sex = "female"
    identifier = ""
    phone = ""
    name_search = factory.LazyAttribute(lambda o: search_key(f"{o.family_name} {o.given_name}"))


class EncounterFactory(factory.django.DjangoModelFactory):
    """A draft encounter of the patient's clinic, by `clinician` (a GP of that clinic by default)."""

    class Meta:
        model = Encounter

    patient = factory.SubFactory(PatientFactory)
    clinic = factory.SelfAttribute("patient.clinic")
    clinician = factory.LazyAttribute(lambda o: MembershipFactory(clinic=o.clinic).user)
    visit_date = datetime.date(2024, 3, 1)
    chief_complaint = "Numbness in the lower back"
    duration_days = 10
    findings = factory.LazyFunction(lambda: screened(URINARY))
    notes = factory.LazyFunction(dict)


def patient_of(user, **kwargs) -> Patient:
    return PatientFactory(clinic=clinic_of(user), **kwargs)


def encounter_of(user, **kwargs) -> Encounter:
    """An encounter by `user` for a new patient of their clinic (or `patient=`)."""
    if "patient" not in kwargs:
        kwargs["patient"] = patient_of(user)
    return EncounterFactory(clinician=user, **kwargs)


def workup_for(user, encounter):
    """Generate a stored workup the way the API does (this records a "generate" audit event)."""
    from workups.services import workup_generate

    return workup_generate(actor=actor_for(user, channel="web"), encounter=encounter)


def accept_tests(user, workup, *, at=None):
    """The GP accepts every test of `workup` through the service (which keeps what awaits a result), as of `at`
    when given: the decision's time is what the worklist's due dates count from. Referrals stay as they are."""
    from unittest import mock

    from django.utils import timezone

    from workups.services import recommendation_decide

    with mock.patch.object(timezone, "now", return_value=at) if at is not None else contextlib.nullcontext():
        for item in workup.items.all():
            recommendation_decide(actor=actor_for(user, channel="web"), recommendation=item, decision="accepted")
    return workup


def encounter_body(patient, /, **changes) -> dict:
    """A valid POST /api/v1/encounters/ body for `patient`."""
    data = {
        "patient": patient.pk,
        "visit_date": "2024-03-01",
        "chief_complaint": "Numbness in the lower back",
        "duration_days": 10,
        "temperature_c": 36.8,
        "findings": screened(URINARY),
        "notes": {"location": "Lumbar, both sides", "plan": "Urinalysis first"},
    }
    data.update(changes)
    return data
