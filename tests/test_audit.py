"""The audit trail: every API read and write of patient data is recorded with who, which clinic,
which channel, from where and which patient; lists and searches name the patients shown, never the
search text; the trail itself cannot be changed or deleted."""

import datetime
import json

import pytest
from django.db import DatabaseError, transaction

from clinic.models import AuditEvent
from tests.record_factories import (
    api_client_for,
    clinic_of,
    encounter_body,
    encounter_of,
    patient_of,
    workup_for,
)

IP = "203.0.113.9"


@pytest.fixture
def client(gp_api):
    """The GP's API client, calling from a known address."""
    gp_api.defaults["REMOTE_ADDR"] = IP
    return gp_api


@pytest.fixture
def mark(db):
    """Call it to get the audit rows written since the test started (oldest first)."""
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    since = {"id": start}

    def events():
        rows = list(AuditEvent.objects.filter(id__gt=since["id"]).order_by("id"))
        if rows:
            since["id"] = rows[-1].id
        return rows

    events()
    return events


def summary(rows):
    return [(row.action, row.object_type, row.object_id, row.patient_id) for row in rows]


def assert_by_gp(rows, gp):
    assert rows
    for row in rows:
        assert row.actor == gp
        assert row.actor_username == gp.username
        assert row.clinic_id == clinic_of(gp).pk
        assert row.channel == "api"
        assert row.ip_address == IP


@pytest.fixture
def patient(gp):
    return patient_of(gp, given_name="Мария", family_name="Иванова", birth_date=datetime.date(1980, 5, 17))


# -- reads ---------------------------------------------------------------------------------------


def test_reading_a_patient_is_recorded(gp, client, patient, mark):
    assert client.get(f"/api/v1/patients/{patient.pk}/").status_code == 200

    rows = mark()
    assert summary(rows) == [("view", "patient", str(patient.pk), patient.pk)]
    assert rows[0].patient_ids == []
    assert_by_gp(rows, gp)


def test_a_list_records_the_patients_shown_on_the_page(gp, client, mark):
    shown = [patient_of(gp, family_name=name) for name in ("Alekseeva", "Borisova")]
    patient_of(gp, family_name="Vasilieva")  # on the second page
    mark()

    assert client.get("/api/v1/patients/", {"page_size": 2}).status_code == 200

    rows = mark()
    assert summary(rows) == [("list", "patient", "", None)]
    assert rows[0].patient_ids == [patient.pk for patient in shown]
    assert_by_gp(rows, gp)


def test_an_empty_list_is_recorded_too(gp, client, mark):
    client.get("/api/v1/patients/")

    rows = mark()
    assert summary(rows) == [("list", "patient", "", None)] and rows[0].patient_ids == []
    assert_by_gp(rows, gp)


def _row_text(row):
    values = {field.attname: getattr(row, field.attname) for field in AuditEvent._meta.concrete_fields}
    return json.dumps(values, default=str, ensure_ascii=False).casefold()


@pytest.mark.parametrize("search", ["Иван", "ивано мари", "nobody-like-this"])
def test_a_search_records_the_patients_shown_but_never_the_search_text(gp, client, patient, mark, search):
    patient_of(gp, given_name="Olga", family_name="Orlova")
    mark()

    response = client.get("/api/v1/patients/", {"search": search})

    rows = mark()
    assert summary(rows) == [("search", "patient", "name", None)]
    assert rows[0].patient_ids == [row["id"] for row in response.json()["results"]]
    for word in search.casefold().split():
        assert word not in _row_text(rows[0])
    assert_by_gp(rows, gp)


def test_a_search_that_finds_a_patient_names_only_that_patient(gp, client, patient, mark):
    patient_of(gp, given_name="Olga", family_name="Orlova")
    mark()

    client.get("/api/v1/patients/", {"search": "иванова"})

    assert mark()[0].patient_ids == [patient.pk]


def test_a_birth_date_filter_is_a_search_by_birth_date_recording_the_patients_shown(gp, client, patient, mark):
    patient_of(gp, birth_date=datetime.date(1990, 1, 1))
    mark()

    client.get("/api/v1/patients/", {"birth_date": "1980-05-17"})

    rows = mark()
    assert [(row.action, row.object_id, row.patient_ids) for row in rows] == [("search", "birth_date", [patient.pk])]
    assert "1980-05-17" not in _row_text(rows[0])


SNILS = "11223344595"  # passes its checksum
POLICY = "7712345678901234"


@pytest.mark.parametrize(
    ("terms", "kinds"),
    [
        ({"search": "Иванова"}, "name"),
        ({"search": "Иванова", "birth_date": "1980-05-17"}, "birth_date,name"),
        ({"search": "112-233-445 95"}, "snils"),
        ({"search": POLICY}, "policy"),
        ({"birth_date": "1980-05-17"}, "birth_date"),
    ],
)
def test_a_search_in_the_query_string_records_the_kinds_of_term_never_the_terms(client, patient, mark, terms, kinds):
    mark()
    client.get("/api/v1/patients/", terms)

    (row,) = mark()
    assert (row.action, row.object_type, row.object_id) == ("search", "patient", kinds)
    for term in terms.values():
        assert term.casefold() not in _row_text(row)


@pytest.mark.parametrize(
    ("body", "kinds"),
    [
        ({"snils": SNILS}, "snils"),
        ({"oms_policy": POLICY}, "policy"),
        ({"search": "Мария", "birth_date": "1980-05-17", "snils": SNILS}, "birth_date,name,snils"),
        ({}, ""),
    ],
)
def test_a_search_by_post_records_the_kinds_of_term(client, patient, mark, body, kinds):
    mark()
    client.post("/api/v1/patients/search/", body, format="json")

    (row,) = mark()
    assert (row.action, row.object_id) == ("search" if kinds else "list", kinds)
    for term in body.values():
        assert term.casefold() not in _row_text(row)


def test_a_search_on_the_patients_page_records_the_kinds_of_term(gp, patient, mark):
    from django.test import Client

    browser = Client()
    browser.force_login(gp)
    mark()
    browser.post("/", {"q": "Иванова", "birth_date": "1980-05-17"})
    browser.post("/", {"q": SNILS})
    browser.get("/")

    assert [(row.action, row.object_id, row.channel) for row in mark()] == [
        ("search", "birth_date,name", "web"),
        ("search", "snils", "web"),
        ("list", "", "web"),
    ]


def test_a_fhir_search_records_the_kinds_of_parameter(client, patient, mark):
    mark()
    client.get("/fhir/Patient", {"name": "Иванова", "birthdate": "1980-05-17"})
    client.get("/fhir/Patient", {"_id": str(patient.pk)})

    assert [(row.action, row.object_id) for row in mark()] == [("search", "birth_date,name"), ("search", "id")]


def test_reading_an_encounter_and_the_patients_encounters_is_recorded(gp, client, patient, mark):
    encounter = encounter_of(gp, patient=patient)
    mark()

    client.get(f"/api/v1/encounters/{encounter.pk}/")
    client.get(f"/api/v1/patients/{patient.pk}/encounters/")

    rows = mark()
    assert summary(rows) == [
        ("view", "encounter", str(encounter.pk), patient.pk),
        ("view", "patient", str(patient.pk), patient.pk),
        ("list", "encounter", "", patient.pk),
    ]
    assert_by_gp(rows, gp)


def test_reading_a_workup_and_its_rows_is_recorded(gp, client, patient, mark):
    encounter = encounter_of(gp, patient=patient)
    workup = workup_for(gp, encounter)
    item, referral = workup.items.all()[0], workup.referrals.all()[0]
    mark()

    client.get(f"/api/v1/encounters/{encounter.pk}/workup/")
    client.get(f"/api/v1/workup-items/{item.pk}/")
    client.get(f"/api/v1/workup-referrals/{referral.pk}/")

    rows = mark()
    assert [(row.action, row.object_id, row.patient_id) for row in rows] == [
        ("view", str(encounter.pk), patient.pk),
        ("view", str(workup.pk), patient.pk),
        ("view", str(item.pk), patient.pk),
        ("view", str(referral.pk), patient.pk),
    ]
    assert [row.object_type for row in rows[:2]] == ["encounter", "workup"]
    assert_by_gp(rows, gp)


def test_a_workup_row_is_named_the_same_when_read_and_when_decided(gp, client, patient, mark):
    encounter = encounter_of(gp, patient=patient)
    workup = workup_for(gp, encounter)
    item, referral = workup.items.all()[0], workup.referrals.all()[0]
    mark()

    client.get(f"/api/v1/workup-items/{item.pk}/")
    client.patch(f"/api/v1/workup-items/{item.pk}/", {"decision": "accepted"}, format="json")
    client.get(f"/api/v1/workup-referrals/{referral.pk}/")
    client.patch(f"/api/v1/workup-referrals/{referral.pk}/", {"decision": "accepted"}, format="json")

    rows = mark()
    assert [row.object_type for row in rows if row.object_id == str(item.pk) and "referral" not in row.object_type] == [
        "workup_item"
    ] * 3
    assert [row.object_type for row in rows if "referral" in row.object_type] == ["workup_referral"] * 3


# -- writes --------------------------------------------------------------------------------------


def test_creating_and_editing_a_patient_is_recorded(gp, client, mark):
    response = client.post(
        "/api/v1/patients/",
        {"given_name": "Олег", "family_name": "Орлов", "birth_date": "1975-01-03", "sex": "male"},
        format="json",
    )
    patient_id = response.json()["id"]
    client.patch(f"/api/v1/patients/{patient_id}/", {"phone": "+7 900 123-45-67"}, format="json")

    rows = mark()
    assert summary(rows) == [
        ("create", "patient", str(patient_id), patient_id),
        ("open_for_update", "patient", str(patient_id), patient_id),
        ("update", "patient", str(patient_id), patient_id),
    ]
    assert_by_gp(rows, gp)
    for row in rows:
        assert "орлов" not in _row_text(row) and "900 123" not in _row_text(row)


def test_a_refused_create_records_no_patient(client, mark):
    response = client.post(
        "/api/v1/patients/",
        {"given_name": "Олег", "family_name": "Орлов", "birth_date": "1975-13-03", "sex": "male"},
        format="json",
    )

    assert response.status_code == 400
    assert mark() == []


def test_a_refused_edit_records_no_update(gp, client, patient, mark):
    client.patch(f"/api/v1/patients/{patient.pk}/", {"sex": "robot"}, format="json")

    assert [row.action for row in mark()] == ["open_for_update"]


def test_recording_and_editing_an_encounter_is_recorded(gp, client, patient, mark):
    response = client.post("/api/v1/encounters/", encounter_body(patient), format="json")
    encounter_id = response.json()["id"]
    client.patch(f"/api/v1/encounters/{encounter_id}/", {"duration_days": 12}, format="json")

    rows = mark()
    assert summary(rows) == [
        ("open_for_update", "patient", str(patient.pk), patient.pk),
        ("create", "encounter", str(encounter_id), patient.pk),
        ("open_for_update", "encounter", str(encounter_id), patient.pk),
        ("update", "encounter", str(encounter_id), patient.pk),
    ]
    assert_by_gp(rows, gp)


def test_generating_deciding_adding_and_finalizing_are_recorded(gp, client, patient, mark):
    encounter = encounter_of(gp, patient=patient)
    mark()

    workup = client.post(f"/api/v1/encounters/{encounter.pk}/workup/").json()
    item, referral = workup["items"][0], workup["referrals"][0]
    client.patch(
        f"/api/v1/workup-items/{item['id']}/", {"decision": "declined", "reason": "Private reason"}, format="json"
    )
    client.patch(f"/api/v1/workup-referrals/{referral['id']}/", {"decision": "accepted"}, format="json")
    added = client.post("/api/v1/workup-items/", {"workup": workup["id"], "code": "ecg"}, format="json").json()
    added_referral = client.post(
        "/api/v1/workup-referrals/", {"workup": workup["id"], "specialty": "oncology"}, format="json"
    ).json()
    client.post(f"/api/v1/encounters/{encounter.pk}/finalize/")

    rows = mark()
    writes = [
        (row.action, row.object_type, row.object_id, row.patient_id)
        for row in rows
        if row.action not in ("view", "open_for_update")
    ]
    assert writes == [
        ("generate", "workup", str(workup["id"]), patient.pk),
        ("decide_declined", "workup_item", str(item["id"]), patient.pk),
        ("decide_accepted", "workup_referral", str(referral["id"]), patient.pk),
        ("add", "workup_item", str(added["id"]), patient.pk),
        ("add", "workup_referral", str(added_referral["id"]), patient.pk),
        ("finalize", "encounter", str(encounter.pk), patient.pk),
    ]
    assert_by_gp(rows, gp)
    assert all(row.patient_id == patient.pk for row in rows)
    assert not any("private reason" in _row_text(row) for row in rows)


def test_an_anonymous_caller_reads_nothing_and_leaves_only_its_refusals(anonymous, patient, mark):
    anonymous.get(f"/api/v1/patients/{patient.pk}/")
    anonymous.get("/api/v1/patients/")

    rows = mark()
    assert [(row.action, row.actor_username, row.patient_id, row.patient_ids) for row in rows] == [
        ("unauthenticated", "anonymous", None, []),
        ("unauthenticated", "anonymous", None, []),
    ]


def test_each_clinic_records_its_own_clinic(gp, other_gp, client, mark):
    theirs = patient_of(other_gp)
    api_client_for(other_gp).get(f"/api/v1/patients/{theirs.pk}/")

    rows = mark()
    assert [(row.actor, row.clinic_id, row.patient_id) for row in rows] == [
        (other_gp, clinic_of(other_gp).pk, theirs.pk)
    ]


def test_another_clinics_list_does_not_name_this_clinics_patients(gp, other_gp, client, patient, mark):
    api_client_for(other_gp).get("/api/v1/patients/")

    assert [row.patient_ids for row in mark()] == [[]]


# -- append-only ---------------------------------------------------------------------------------


@pytest.fixture
def recorded(client, patient, mark):
    client.get(f"/api/v1/patients/{patient.pk}/")
    return mark()[0]


def test_audit_rows_cannot_be_updated(recorded):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=recorded.pk).update(actor_username="someone-else")

    recorded.refresh_from_db()
    assert recorded.actor_username == "gp_anna"


def test_an_audit_row_cannot_be_saved_over(recorded):
    recorded.action = "nothing"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        recorded.save()

    assert AuditEvent.objects.get(pk=recorded.pk).action == "view"


def test_audit_rows_cannot_be_deleted(recorded):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=recorded.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.filter(pk=recorded.pk).exists()


def test_the_admin_shows_the_audit_trail_read_only(recorded, gp):
    from django.contrib import admin
    from django.test import RequestFactory

    assert admin.site.is_registered(AuditEvent), "clinic/admin.py must register the AuditEvent admin"
    model_admin = admin.site._registry[AuditEvent]
    gp.is_staff = gp.is_superuser = True
    gp.save()
    request = RequestFactory().get("/admin/clinic/auditevent/")
    request.user = gp

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, recorded)
    assert not model_admin.has_delete_permission(request, recorded)
    assert model_admin.has_view_permission(request, recorded)


def test_the_admin_lets_staff_read_the_trail_but_not_change_it(recorded, db):
    from django.contrib import admin
    from django.test import Client

    from tests.factories import UserFactory

    assert admin.site.is_registered(AuditEvent), "clinic/admin.py must register the AuditEvent admin"
    staff = Client()
    staff.force_login(UserFactory(username="admin_olga", is_staff=True, is_superuser=True))
    base = "/admin/clinic/auditevent/"

    listing = staff.get(base)
    change_page = staff.get(f"{base}{recorded.pk}/change/")

    assert listing.status_code == 200 and "gp_anna" in listing.content.decode()
    assert 'value="delete_selected"' not in listing.content.decode()
    assert change_page.status_code == 200 and 'name="_save"' not in change_page.content.decode()
    assert staff.post(f"{base}{recorded.pk}/change/", {"action": "nothing", "actor_username": "x"}).status_code == 403
    assert staff.post(f"{base}{recorded.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff.get(f"{base}add/").status_code == 403
    assert staff.post(base, {"action": "delete_selected", "_selected_action": [recorded.pk]}).status_code in (200, 302)
    recorded.refresh_from_db()
    assert (recorded.action, recorded.actor_username) == ("view", "gp_anna")


# -- refused requests (probes) ---------------------------------------------------------------------


@pytest.fixture
def theirs(other_gp):
    return patient_of(other_gp, family_name="Тайнова", given_name="Зинаида")


FHIR_INSTANCE = "GET /fhir/<str:resource_type>/<str:resource_id>"


def probes(rows):
    return [(row.action, row.actor_username, row.channel, row.endpoint, row.object_id) for row in rows]


def test_another_clinics_patient_is_a_404_recorded_with_who_and_where_but_nothing_of_the_patient(
    gp, client, theirs, mark
):
    mark()
    assert client.get(f"/api/v1/patients/{theirs.pk}/", {"search": "Тайнова"}).status_code == 404
    assert client.get(f"/fhir/Patient/{theirs.pk}").status_code == 404

    rows = mark()
    assert probes(rows) == [
        ("not_found", "gp_anna", "api", "GET /api/v1/patients/<int:pk>/", str(theirs.pk)),
        ("not_found", "gp_anna", "fhir", FHIR_INSTANCE, f"Patient,{theirs.pk}"),
    ]
    for row in rows:
        assert (row.actor, row.clinic_id, row.ip_address, row.patient_id) == (gp, clinic_of(gp).pk, IP, None)
        assert "тайнова" not in _row_text(row) and "search" not in row.endpoint


def test_an_anonymous_caller_is_recorded_as_anonymous(theirs, mark):
    from rest_framework.test import APIClient

    anonymous = APIClient(REMOTE_ADDR=IP)
    mark()
    assert anonymous.get(f"/api/v1/patients/{theirs.pk}/").status_code == 401
    assert anonymous.post("/api/v1/patients/", {}, format="json").status_code == 401
    assert anonymous.get(f"/fhir/Patient/{theirs.pk}").status_code == 401

    rows = mark()
    assert probes(rows) == [
        ("unauthenticated", "anonymous", "api", "GET /api/v1/patients/<int:pk>/", str(theirs.pk)),
        ("unauthenticated", "anonymous", "api", "POST /api/v1/patients/", ""),
        ("unauthenticated", "anonymous", "fhir", FHIR_INSTANCE, f"Patient,{theirs.pk}"),
    ]
    assert all(row.actor is None and row.ip_address == IP for row in rows)


def test_a_forbidden_request_is_recorded(gp, mark):
    from django.test import Client
    from rest_framework.test import APIClient

    api = APIClient(enforce_csrf_checks=True)
    api.force_login(gp)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(gp)
    mark()
    # A session's write without its CSRF token: refused on the API and on the web.
    assert api.post("/api/v1/patients/", {}, format="json").status_code == 403
    assert browser.post("/patients/new/", {}).status_code == 403

    assert probes(mark()) == [
        ("forbidden", "gp_anna", "api", "POST /api/v1/patients/", ""),
        ("forbidden", "gp_anna", "web", "POST /patients/new/", ""),
    ]


def test_another_clinics_page_on_the_web_is_recorded(gp, theirs, mark):
    from django.test import Client

    browser = Client()
    browser.force_login(gp)
    mark()
    assert browser.get(f"/patients/{theirs.pk}/").status_code == 404

    assert probes(mark()) == [("not_found", "gp_anna", "web", "GET /patients/<int:pk>/", str(theirs.pk))]


def test_another_clinics_record_opened_in_the_admin_is_recorded(gp, theirs, mark):
    from django.contrib.auth.models import Permission
    from django.test import Client

    from tests.factories import MembershipFactory

    staff = MembershipFactory(clinic=clinic_of(gp), user__username="admin_olga", user__is_staff=True).user
    staff.user_permissions.set(Permission.objects.all())
    browser = Client()
    browser.force_login(staff)
    mark()
    browser.get(f"/admin/clinic/patient/{theirs.pk}/change/")

    assert probes(mark()) == [
        ("not_found", "admin_olga", "admin", "GET /admin/clinic/patient/<path:object_id>/change/", str(theirs.pk))
    ]


def test_a_url_that_matches_no_route_is_not_recorded(client, mark):
    mark()
    assert client.get("/wp-login.php").status_code == 404

    assert mark() == []
