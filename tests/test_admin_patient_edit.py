"""A patient edited or added in the admin is saved as the app and the API save one (clinic.services): the
search key follows the new name, the version (the FHIR ETag) moves, the record's checks apply with their
errors at the fields, and the audit row is written once, on the admin channel."""

import datetime

import pytest
from django.test import Client

from clinic.models import AuditEvent, Patient
from tests.factories import MembershipFactory
from tests.record_factories import api_client_for, clinic_of, encounter_of, patient_of
from tests.test_admin_scoping import staff_of

SEARCH = "/api/v1/patients/search/"


@pytest.fixture
def clinic_admin(gp):
    browser = Client()
    browser.force_login(staff_of(clinic_of(gp)))
    return browser


@pytest.fixture
def patient(gp):
    return patient_of(gp, family_name="Иванова", given_name="Мария", birth_date=datetime.date(1961, 2, 3))


def new_patient_form(gp):
    return {
        "clinic": clinic_of(gp).pk,
        "given_name": "Пётр",
        "family_name": "Сидоров",
        "birth_date": "1970-01-01",
        "sex": "male",
        "snils": "11223344595",
    }


def form_of(patient, **changes):
    fields = {
        "clinic": patient.clinic_id,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "middle_name": patient.middle_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "identifier": patient.identifier,
        "snils": patient.snils,
        "oms_policy": patient.oms_policy,
    }
    return {**fields, **changes}


def found_by(gp, term):
    response = api_client_for(gp).post(SEARCH, {"search": term}, format="json")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_patient_renamed_in_the_admin_is_found_by_the_new_name(gp, clinic_admin, patient):
    response = clinic_admin.post(
        f"/admin/clinic/patient/{patient.pk}/change/", form_of(patient, family_name="  Смирнова ")
    )

    assert response.status_code == 302
    saved = Patient.objects.get(pk=patient.pk)
    assert saved.family_name == "Смирнова"
    assert saved.version == patient.version + 1
    assert found_by(gp, "смирнова") == [patient.pk]
    assert found_by(gp, "иванова") == []


def test_an_admin_edit_is_audited_once_on_the_admin_channel(clinic_admin, patient):
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    clinic_admin.post(f"/admin/clinic/patient/{patient.pk}/change/", form_of(patient, given_name="Мариям"))

    writes = AuditEvent.objects.filter(id__gt=start, action__in=["create", "update"])
    assert [(e.action, e.patient_id, e.channel, e.actor_username) for e in writes] == [
        ("update", patient.pk, "admin", "admin_olga")
    ]


def test_a_patient_added_in_the_admin_is_found_and_audited(gp, clinic_admin):
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = clinic_admin.post("/admin/clinic/patient/add/", new_patient_form(gp))

    assert response.status_code == 302, response.context["adminform"].form.errors
    added = Patient.objects.get(family_name="Сидоров")
    assert (added.clinic, added.snils, added.version) == (clinic_of(gp), "11223344595", 1)
    assert found_by(gp, "сидор") == [added.pk]
    writes = AuditEvent.objects.filter(id__gt=start, action__in=["create", "update"])
    assert [(e.action, e.patient_id, e.channel, e.clinic_id) for e in writes] == [
        ("create", added.pk, "admin", clinic_of(gp).pk)
    ]


def test_the_admin_shows_the_records_checks_at_their_fields(clinic_admin, patient):
    response = clinic_admin.post(
        f"/admin/clinic/patient/{patient.pk}/change/",
        form_of(patient, birth_date=(datetime.date.today() + datetime.timedelta(days=2)).isoformat()),
    )

    assert response.status_code == 200
    assert "birth_date" in response.context["adminform"].form.errors
    assert Patient.objects.get(pk=patient.pk).version == patient.version


def test_an_edit_that_contradicts_a_recorded_encounter_is_refused(gp, clinic_admin, patient):
    encounter_of(gp, patient=patient, pregnant=True)

    response = clinic_admin.post(f"/admin/clinic/patient/{patient.pk}/change/", form_of(patient, sex="male"))

    assert response.status_code == 200
    assert "sex" in response.context["adminform"].form.errors
    assert Patient.objects.get(pk=patient.pk).sex == "female"


@pytest.mark.parametrize(
    ("snils", "policy"), [("112-233-445 95", "1234 5678 9012 3456"), ("11223344595", "1234567890123456")]
)
def test_the_admin_takes_the_snils_and_policy_as_typed_and_keeps_their_digits(gp, clinic_admin, snils, policy):
    response = clinic_admin.post(
        "/admin/clinic/patient/add/", {**new_patient_form(gp), "snils": snils, "oms_policy": policy}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    added = Patient.objects.get(family_name="Сидоров")
    assert (added.snils, added.oms_policy) == ("11223344595", "1234567890123456")


def test_the_admin_refuses_a_snils_that_fails_its_checksum_at_the_field(gp, clinic_admin):
    response = clinic_admin.post("/admin/clinic/patient/add/", {**new_patient_form(gp), "snils": "112-233-445 96"})

    assert response.status_code == 200
    assert "snils" in response.context["adminform"].form.errors
    assert not Patient.objects.filter(family_name="Сидоров").exists()


def test_a_patient_added_with_a_taken_snils_is_refused_at_the_field(gp, clinic_admin):
    patient_of(gp, snils="11223344595")

    response = clinic_admin.post("/admin/clinic/patient/add/", new_patient_form(gp))

    assert response.status_code == 200
    assert "snils" in response.context["adminform"].form.errors
    assert not Patient.objects.filter(family_name="Сидоров").exists()


def test_the_clinic_of_a_patient_cannot_be_changed_in_the_admin(gp, other_gp, patient):
    superuser = MembershipFactory(user__username="root_ivan", user__is_staff=True, user__is_superuser=True).user
    browser = Client()
    browser.force_login(superuser)

    response = browser.post(
        f"/admin/clinic/patient/{patient.pk}/change/", form_of(patient, clinic=clinic_of(other_gp).pk)
    )

    assert response.status_code == 302
    assert Patient.objects.get(pk=patient.pk).clinic == clinic_of(gp)
