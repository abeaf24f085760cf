"""Encounters and their stored workups over the API: record, validate, generate, decide, finalize."""

import datetime

import pytest

from clinic.models import Encounter
from tests.record_factories import (
    LOCATION_ONLY,
    URINARY,
    clinic_today,
    encounter_body,
    encounter_of,
    patient_of,
    screened,
)
from workups.models import Workup, WorkupItem, WorkupReferral

URL = "/api/v1/encounters/"


def detail(encounter_id):
    return f"{URL}{encounter_id}/"


def workup_url(encounter_id):
    return f"{URL}{encounter_id}/workup/"


def item_url(item_id):
    return f"/api/v1/workup-items/{item_id}/"


def referral_url(referral_id):
    return f"/api/v1/workup-referrals/{referral_id}/"


@pytest.fixture
def patient(gp):
    return patient_of(
        gp, given_name="Мария", family_name="Иванова", sex="female", birth_date=datetime.date(1980, 5, 17)
    )


@pytest.fixture
def male(gp):
    return patient_of(gp, given_name="Пётр", family_name="Семёнов", sex="male", birth_date=datetime.date(1970, 1, 1))


@pytest.fixture
def encounter(gp_api, patient):
    """A draft encounter recorded over the API (lumbar numbness with urinary symptoms)."""
    response = gp_api.post(URL, encounter_body(patient), format="json")
    assert response.status_code == 201, response.json()
    return Encounter.objects.get(pk=response.json()["id"])


def generate(client, encounter):
    response = client.post(workup_url(encounter.pk))
    assert response.status_code == 201, response.content
    return response.json()


def by_code(workup):
    return {row["code"]: row for row in workup["items"]}


def by_specialty(workup):
    return {row["specialty"]: row for row in workup["referrals"]}


# -- create, read, edit --------------------------------------------------------------------------


def test_a_gp_records_an_encounter_for_a_patient_of_their_clinic(gp, gp_api, patient):
    response = gp_api.post(
        URL,
        encounter_body(patient, pregnant=False, heart_rate=80, systolic_bp=125, diastolic_bp=80, resp_rate=14, spo2=98),
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    assert data["patient"] == patient.pk
    assert data["clinician"] == gp.username
    assert (data["visit_date"], data["age"], data["sex"]) == ("2024-03-01", 43, "female")
    assert data["status"] == "draft" and data["finalized_at"] is None
    assert (data["duration_days"], data["temperature_c"], data["pregnant"]) == (10, 36.8, False)
    assert (data["heart_rate"], data["systolic_bp"], data["diastolic_bp"], data["resp_rate"], data["spo2"]) == (
        80,
        125,
        80,
        14,
        98,
    )
    assert data["findings"] == screened(URINARY)
    assert data["notes"] == {"location": "Lumbar, both sides", "plan": "Urinalysis first"}
    assert data["chief_complaint"] == "Numbness in the lower back"
    assert gp_api.get(detail(data["id"])).json() == data


def test_the_visit_date_defaults_to_today(gp_api, patient):
    body = encounter_body(patient)
    del body["visit_date"]

    response = gp_api.post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json()["visit_date"] == clinic_today(patient.clinic).isoformat()


def test_blank_notes_sections_are_dropped(gp_api, patient):
    response = gp_api.post(URL, encounter_body(patient, notes={"plan": "MRI", "history": "   "}), format="json")

    assert response.status_code == 201
    assert response.json()["notes"] == {"plan": "MRI"}


def _future():
    return (clinic_today() + datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "changes, field, code",
    [
        ({"findings": screened({"loc_lumbar": False, "sx_urinary_frequency": True})}, "findings", "loc"),
        ({"findings": {}}, "findings", "loc"),
        ({"findings": ["loc_lumbar"]}, "findings", None),
        ({"findings": screened({"loc_lumbar": True, "rf_fevr": True})}, "findings", "rf_fevr"),
        ({"findings": screened({"loc_lumbar": "yes"})}, "findings", "loc_lumbar"),
        ({"duration_days": -1}, "duration_days", None),
        ({"duration_days": "ten"}, "duration_days", None),
        ({"duration_days": 1.5}, "duration_days", None),
        ({"duration_days": 100 * 366}, "duration_days", None),
        ({"visit_date": "1980-05-16"}, "visit_date", None),
        ({"visit_date": "01.03.2024"}, "visit_date", None),
        ({"notes": {"gossip": "Neighbours say"}}, "notes", "gossip"),
        ({"notes": {"plan": 5}}, "notes", "plan"),
        ({"notes": "plan: MRI"}, "notes", None),
        ({"temperature_c": "38"}, "temperature_c", None),
        ({"temperature_c": 46}, "temperature_c", None),
        ({"pregnant": "no"}, "pregnant", None),
        ({"systolic_bp": 110, "diastolic_bp": 120}, "diastolic_bp", None),
        ({"chief_complaint": 7}, "chief_complaint", None),
        ({"age": 44}, "age", None),
        ({"sex": "female"}, "sex", None),
        ({"status": "finalized"}, "status", None),
        ({"patient": str(0)}, "patient", None),
        ({"patient": None}, "patient", None),
    ],
)
def test_an_invalid_encounter_is_a_400_naming_the_field_and_nothing_is_stored(gp_api, patient, changes, field, code):
    response = gp_api.post(URL, encounter_body(patient, **changes), format="json")

    assert response.status_code == 400
    errors = response.json()
    assert field in errors
    if code is not None:
        assert code in errors[field]
    assert not Encounter.objects.exists()


def test_a_visit_in_the_future_is_refused(gp_api, patient):
    response = gp_api.post(URL, encounter_body(patient, visit_date=_future()), format="json")

    assert response.status_code == 400
    assert "visit_date" in response.json()
    assert not Encounter.objects.exists()


def test_a_male_patient_cannot_be_pregnant(gp_api, male):
    response = gp_api.post(URL, encounter_body(male, pregnant=True), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["pregnant"]
    assert not Encounter.objects.exists()


def test_a_female_only_finding_is_refused_for_a_male_patient(gp_api, male):
    response = gp_api.post(
        URL, encounter_body(male, findings=screened({"loc_lumbar": True, "sx_missed_period": True})), format="json"
    )

    assert response.status_code == 400
    assert "sx_missed_period" in response.json()["findings"]


def test_the_patient_is_required(gp_api, patient):
    body = encounter_body(patient)
    del body["patient"]

    response = gp_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert "patient" in response.json()


def test_an_unknown_patient_is_a_404(gp_api, patient):
    response = gp_api.post(URL, encounter_body(patient, patient=patient.pk + 1000), format="json")

    assert response.status_code == 404
    assert not Encounter.objects.exists()


def test_patch_changes_the_fields_given(gp_api, encounter):
    response = gp_api.patch(
        detail(encounter.pk),
        {"duration_days": 30, "notes": {"plan": "MRI lumbar"}, "chief_complaint": "Worse at night"},
        format="json",
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["duration_days"], data["notes"], data["chief_complaint"]) == (
        30,
        {"plan": "MRI lumbar"},
        "Worse at night",
    )
    assert data["findings"] == screened(URINARY) and data["temperature_c"] == 36.8
    encounter.refresh_from_db()
    assert encounter.duration_days == 30


def test_patch_may_name_the_same_patient(gp_api, encounter):
    response = gp_api.patch(detail(encounter.pk), {"patient": encounter.patient_id, "duration_days": 11}, format="json")

    assert response.status_code == 200


def test_patch_can_clear_an_optional_measurement(gp_api, encounter):
    response = gp_api.patch(detail(encounter.pk), {"temperature_c": None}, format="json")

    assert response.status_code == 200
    assert response.json()["temperature_c"] is None


def _snapshot(encounter):
    encounter.refresh_from_db()
    return {field.name: getattr(encounter, field.name) for field in Encounter._meta.concrete_fields}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"findings": screened({"sx_urinary_frequency": True})}, "findings"),
        ({"duration_days": -3}, "duration_days"),
        ({"duration_days": None}, "duration_days"),
        ({"visit_date": "1979-01-01"}, "visit_date"),
        ({"notes": {"diagnosis": "none"}}, "notes"),
        ({"findings": screened({"loc_lumbar": True, "rf_unknown": True})}, "findings"),
        ({"age": 50}, "age"),
        ({"diastolic_bp": 130}, "diastolic_bp"),  # the stored systolic is 120: the whole case is checked
        ({"temperature_c": 38.5, "spo2": 101}, "spo2"),
    ],
)
def test_an_invalid_patch_is_a_400_and_leaves_the_encounter_as_it_was(gp_api, patient, changes, field):
    encounter_id = gp_api.post(URL, encounter_body(patient, systolic_bp=120, diastolic_bp=80), format="json").json()[
        "id"
    ]
    encounter = Encounter.objects.get(pk=encounter_id)
    before = _snapshot(encounter)

    response = gp_api.patch(detail(encounter_id), changes, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert _snapshot(encounter) == before


def test_a_patch_in_the_future_is_refused(gp_api, encounter):
    before = _snapshot(encounter)

    response = gp_api.patch(detail(encounter.pk), {"visit_date": _future()}, format="json")

    assert response.status_code == 400 and "visit_date" in response.json()
    assert _snapshot(encounter) == before


def test_a_patch_making_a_male_patient_pregnant_is_refused(gp_api, male):
    encounter_id = gp_api.post(URL, encounter_body(male), format="json").json()["id"]
    encounter = Encounter.objects.get(pk=encounter_id)
    before = _snapshot(encounter)

    response = gp_api.patch(detail(encounter_id), {"pregnant": True}, format="json")

    assert response.status_code == 400
    assert "pregnant" in response.json()
    assert _snapshot(encounter) == before


def test_an_encounter_cannot_be_moved_to_another_patient(gp, gp_api, encounter):
    other = patient_of(gp)

    response = gp_api.patch(detail(encounter.pk), {"patient": other.pk}, format="json")

    assert response.status_code == 400
    assert "patient" in response.json()
    encounter.refresh_from_db()
    assert encounter.patient_id != other.pk


@pytest.mark.parametrize("method", ["put", "delete"])
def test_encounters_cannot_be_replaced_or_deleted(gp_api, encounter, method):
    response = getattr(gp_api, method)(detail(encounter.pk), encounter_body(encounter.patient), format="json")

    assert response.status_code == 405
    assert Encounter.objects.filter(pk=encounter.pk).exists()


def test_the_patients_encounters_are_listed_newest_first(gp, gp_api, patient):
    older = encounter_of(gp, patient=patient, visit_date=datetime.date(2023, 1, 10))
    newer = encounter_of(gp, patient=patient, visit_date=datetime.date(2024, 2, 1))
    encounter_of(gp)  # another patient's

    data = gp_api.get(f"/api/v1/patients/{patient.pk}/encounters/").json()

    assert data["count"] == 2
    assert [row["id"] for row in data["results"]] == [newer.pk, older.pk]
    assert data["results"][0]["age"] == 43


# -- workup: generate, read, latest --------------------------------------------------------------


def test_there_is_no_workup_before_one_is_generated(gp_api, encounter):
    assert gp_api.get(workup_url(encounter.pk)).status_code == 404


def test_a_generated_workup_is_stored_in_the_evaluate_shape_with_ids_and_decisions(gp, gp_api, encounter):
    workup = generate(gp_api, encounter)

    preview = gp_api.post(
        "/api/v1/workup/evaluate/",
        {
            "sex": "female",
            "age": 43,
            "duration_days": 10,
            "temperature_c": 36.8,
            "findings": screened(URINARY),
        },
        format="json",
    ).json()
    for key in preview:
        if key not in ("items", "referrals"):
            assert workup[key] == preview[key], key
    strip = ("id", "added_by_clinician", "decision", "decision_reason", "decided_at")
    assert [{k: v for k, v in row.items() if k not in strip} for row in workup["items"]] == preview["items"]
    assert [{k: v for k, v in row.items() if k not in strip} for row in workup["referrals"]] == preview["referrals"]
    assert workup["items"] and workup["referrals"]
    assert workup["encounter"] == encounter.pk
    assert workup["created_by"] == gp.username
    assert workup["stale"] is False
    for row in workup["items"] + workup["referrals"]:
        assert isinstance(row["id"], int)
        assert (row["decision"], row["decision_reason"], row["decided_at"], row["added_by_clinician"]) == (
            "pending",
            "",
            None,
            False,
        )
    assert gp_api.get(workup_url(encounter.pk)).json() == workup


def test_get_returns_the_latest_workup(gp_api, encounter):
    first = generate(gp_api, encounter)
    second = generate(gp_api, encounter)

    latest = gp_api.get(workup_url(encounter.pk)).json()

    assert second["id"] != first["id"]
    assert latest["id"] == second["id"]
    assert Workup.objects.filter(encounter=encounter).count() == 2


def test_a_stored_item_and_referral_can_be_read_on_their_own(gp_api, encounter):
    workup = generate(gp_api, encounter)
    item, referral = workup["items"][0], workup["referrals"][0]

    assert gp_api.get(item_url(item["id"])).json() == item
    assert gp_api.get(referral_url(referral["id"])).json() == referral


# -- decisions -----------------------------------------------------------------------------------


def test_a_gp_accepts_an_item(gp, gp_api, encounter):
    item = generate(gp_api, encounter)["items"][0]

    response = gp_api.patch(item_url(item["id"]), {"decision": "accepted"}, format="json")

    assert response.status_code == 200
    assert response.json()["decision"] == "accepted" and response.json()["decided_at"]
    row = WorkupItem.objects.get(pk=item["id"])
    assert (row.decision, row.decided_by) == ("accepted", gp)
    assert by_code(gp_api.get(workup_url(encounter.pk)).json())[item["code"]]["decision"] == "accepted"


def test_declining_needs_a_reason(gp_api, encounter):
    workup = generate(gp_api, encounter)
    item, referral = workup["items"][0], workup["referrals"][0]

    for url in (item_url(item["id"]), referral_url(referral["id"])):
        for body in (
            {"decision": "declined"},
            {"decision": "declined", "reason": ""},
            {"decision": "declined", "reason": "   "},
        ):
            response = gp_api.patch(url, body, format="json")
            assert response.status_code == 400, body
            assert "reason" in response.json()

    assert WorkupItem.objects.get(pk=item["id"]).decision == "pending"
    assert WorkupReferral.objects.get(pk=referral["id"]).decision == "pending"


def test_a_declined_item_and_referral_keep_their_reason(gp_api, encounter):
    workup = generate(gp_api, encounter)
    item, referral = workup["items"][0], workup["referrals"][0]

    item_response = gp_api.patch(
        item_url(item["id"]), {"decision": "declined", "reason": "Done last week"}, format="json"
    )
    referral_response = gp_api.patch(
        referral_url(referral["id"]), {"decision": "declined", "reason": "Seen by a neurologist in May"}, format="json"
    )

    assert item_response.status_code == 200 and referral_response.status_code == 200
    assert (item_response.json()["decision"], item_response.json()["decision_reason"]) == ("declined", "Done last week")
    latest = gp_api.get(workup_url(encounter.pk)).json()
    assert by_specialty(latest)[referral["specialty"]]["decision_reason"] == "Seen by a neurologist in May"


def test_setting_a_decision_back_to_pending_clears_it(gp_api, encounter):
    item = generate(gp_api, encounter)["items"][0]
    gp_api.patch(item_url(item["id"]), {"decision": "declined", "reason": "Not now"}, format="json")

    response = gp_api.patch(item_url(item["id"]), {"decision": "pending"}, format="json")

    assert response.status_code == 200
    assert (response.json()["decision"], response.json()["decision_reason"], response.json()["decided_at"]) == (
        "pending",
        "",
        None,
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({"decision": "maybe"}, "decision"),
        ({"decision": True}, "decision"),
        ({}, "decision"),
        ({"decision": "accepted", "urgency": "emergency"}, "urgency"),
    ],
)
def test_an_invalid_decision_is_a_400_and_changes_nothing(gp_api, encounter, body, field):
    item = generate(gp_api, encounter)["items"][0]

    response = gp_api.patch(item_url(item["id"]), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    row = WorkupItem.objects.get(pk=item["id"])
    assert (row.decision, row.urgency) == ("pending", item["urgency"])


def test_a_change_to_a_superseded_workup_is_a_409_and_changes_nothing(gp_api, encounter):
    # The request is well formed (the same one succeeds on the latest workup): what refuses it is the
    # record's state, as with a finalized encounter, so it is a 409 Conflict, not a 400.
    old = generate(gp_api, encounter)
    old_item, old_referral = old["items"][0], old["referrals"][0]
    generate(gp_api, encounter)
    before = (
        sorted(WorkupItem.objects.filter(workup_id=old["id"]).values_list("id", "decision", "decision_reason")),
        sorted(WorkupReferral.objects.filter(workup_id=old["id"]).values_list("id", "decision", "decision_reason")),
    )

    for method, url, body in (
        ("patch", item_url(old_item["id"]), {"decision": "accepted"}),
        ("patch", referral_url(old_referral["id"]), {"decision": "declined", "reason": "Seen last month"}),
        ("post", "/api/v1/workup-items/", {"workup": old["id"], "code": "ecg"}),
        ("post", "/api/v1/workup-referrals/", {"workup": old["id"], "specialty": "cardiology"}),
    ):
        response = getattr(gp_api, method)(url, body, format="json")
        assert response.status_code == 409, (method, url, response.content)
        assert response.json() == {"detail": "Only the latest workup of an encounter can be changed."}

    assert before == (
        sorted(WorkupItem.objects.filter(workup_id=old["id"]).values_list("id", "decision", "decision_reason")),
        sorted(WorkupReferral.objects.filter(workup_id=old["id"]).values_list("id", "decision", "decision_reason")),
    )
    latest_item = gp_api.get(workup_url(encounter.pk)).json()["items"][0]
    assert gp_api.patch(item_url(latest_item["id"]), {"decision": "accepted"}, format="json").status_code == 200


# -- added by hand -------------------------------------------------------------------------------


def test_a_gp_adds_a_test_and_a_referral_by_hand(gp, gp_api, encounter):
    workup = generate(gp_api, encounter)
    assert "mri_lumbar_spine" not in by_code(workup) and "orthopedics" not in by_specialty(workup)

    item = gp_api.post(
        "/api/v1/workup-items/",
        {"workup": workup["id"], "code": "mri_lumbar_spine", "urgency": "urgent", "rationale": "Persistent numbness"},
        format="json",
    )
    referral = gp_api.post(
        "/api/v1/workup-referrals/", {"workup": workup["id"], "specialty": "orthopedics"}, format="json"
    )

    assert item.status_code == 201 and referral.status_code == 201
    assert {k: item.json()[k] for k in ("code", "urgency", "rationale", "added_by_clinician", "decision")} == {
        "code": "mri_lumbar_spine",
        "urgency": "urgent",
        "rationale": "Persistent numbness",
        "added_by_clinician": True,
        "decision": "accepted",
    }
    assert {k: referral.json()[k] for k in ("specialty", "urgency", "added_by_clinician", "decision")} == {
        "specialty": "orthopedics",
        "urgency": "routine",
        "added_by_clinician": True,
        "decision": "accepted",
    }
    assert referral.json()["reason"]
    latest = gp_api.get(workup_url(encounter.pk)).json()
    assert by_code(latest)["mri_lumbar_spine"]["id"] == item.json()["id"]
    assert by_specialty(latest)["orthopedics"]["id"] == referral.json()["id"]
    assert WorkupItem.objects.get(pk=item.json()["id"]).decided_by == gp


@pytest.mark.parametrize(
    "url, body, field",
    [
        ("/api/v1/workup-items/", {"code": "mri_knee"}, "code"),
        ("/api/v1/workup-items/", {"code": "lab_cbc"}, "code"),  # already in the workup
        ("/api/v1/workup-items/", {"code": "ecg", "urgency": "asap"}, "urgency"),
        ("/api/v1/workup-items/", {"code": "ecg", "decision": "declined"}, "decision"),
        ("/api/v1/workup-items/", {"code": "ecg", "workup": "1"}, "workup"),
        ("/api/v1/workup-referrals/", {"specialty": "astrology"}, "specialty"),
        ("/api/v1/workup-referrals/", {"specialty": "neurology"}, "specialty"),  # already in the workup
    ],
)
def test_an_invalid_addition_is_a_400_and_adds_nothing(gp_api, encounter, url, body, field):
    workup = generate(gp_api, encounter)
    before = (WorkupItem.objects.count(), WorkupReferral.objects.count())

    response = gp_api.post(url, {"workup": workup["id"], **body}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert (WorkupItem.objects.count(), WorkupReferral.objects.count()) == before


def test_an_unknown_workup_is_a_404(gp_api, encounter):
    response = gp_api.post("/api/v1/workup-items/", {"workup": 99999, "code": "ecg"}, format="json")

    assert response.status_code == 404


# -- regenerating and staleness ------------------------------------------------------------------


def test_regenerating_after_an_edit_keeps_decisions_and_additions(gp_api, encounter):
    first = generate(gp_api, encounter)
    items, referrals = by_code(first), by_specialty(first)
    gp_api.patch(item_url(items["lab_urinalysis"]["id"]), {"decision": "accepted"}, format="json")
    gp_api.patch(
        item_url(items["lab_nechiporenko"]["id"]), {"decision": "declined", "reason": "Done in March"}, format="json"
    )
    gp_api.patch(
        referral_url(referrals["nephrology"]["id"]),
        {"decision": "declined", "reason": "Under a nephrologist"},
        format="json",
    )
    gp_api.post(
        "/api/v1/workup-items/", {"workup": first["id"], "code": "mri_lumbar_spine", "urgency": "urgent"}, format="json"
    )
    gp_api.post("/api/v1/workup-referrals/", {"workup": first["id"], "specialty": "rheumatology"}, format="json")

    assert (
        gp_api.patch(detail(encounter.pk), {"duration_days": 20, "temperature_c": 37.2}, format="json").status_code
        == 200
    )
    second = generate(gp_api, encounter)

    assert second["id"] != first["id"]
    items, referrals = by_code(second), by_specialty(second)
    assert items["lab_urinalysis"]["decision"] == "accepted"
    assert (items["lab_nechiporenko"]["decision"], items["lab_nechiporenko"]["decision_reason"]) == (
        "declined",
        "Done in March",
    )
    assert (referrals["nephrology"]["decision"], referrals["nephrology"]["decision_reason"]) == (
        "declined",
        "Under a nephrologist",
    )
    assert items["lab_cbc"]["decision"] == "pending"
    assert (
        items["mri_lumbar_spine"]["added_by_clinician"],
        items["mri_lumbar_spine"]["decision"],
        items["mri_lumbar_spine"]["urgency"],
    ) == (True, "accepted", "urgent")
    assert (referrals["rheumatology"]["added_by_clinician"], referrals["rheumatology"]["decision"]) == (
        True,
        "accepted",
    )
    assert gp_api.get(workup_url(encounter.pk)).json()["id"] == second["id"]


def test_additions_by_hand_survive_when_the_engine_stops_recommending_everything(gp_api, patient):
    encounter_id = gp_api.post(URL, encounter_body(patient), format="json").json()["id"]
    first = gp_api.post(workup_url(encounter_id)).json()
    gp_api.post("/api/v1/workup-items/", {"workup": first["id"], "code": "xray_lumbar_spine"}, format="json")

    gp_api.patch(detail(encounter_id), {"findings": screened(LOCATION_ONLY)}, format="json")
    second = gp_api.post(workup_url(encounter_id)).json()

    assert set(by_code(second)) == {"xray_lumbar_spine"}
    assert by_code(second)["xray_lumbar_spine"]["added_by_clinician"] is True


def test_a_test_added_by_hand_survives_being_issued_by_the_engine_in_between(gp_api, patient):
    encounter_id = gp_api.post(URL, encounter_body(patient, findings=screened(LOCATION_ONLY)), format="json").json()[
        "id"
    ]
    first = gp_api.post(workup_url(encounter_id)).json()
    assert "us_kidneys" not in by_code(first)
    gp_api.post("/api/v1/workup-items/", {"workup": first["id"], "code": "us_kidneys"}, format="json")
    gp_api.patch(detail(encounter_id), {"findings": screened(URINARY)}, format="json")
    second = gp_api.post(workup_url(encounter_id)).json()
    assert by_code(second)["us_kidneys"]["decision"] == "accepted"

    gp_api.patch(detail(encounter_id), {"findings": screened(LOCATION_ONLY)}, format="json")
    third = gp_api.post(workup_url(encounter_id)).json()

    assert "us_kidneys" in by_code(third)
    assert by_code(third)["us_kidneys"]["decision"] == "accepted"


def test_the_workup_is_stale_once_the_case_changes_and_fresh_once_regenerated(gp_api, encounter):
    generate(gp_api, encounter)
    assert gp_api.get(workup_url(encounter.pk)).json()["stale"] is False

    gp_api.patch(detail(encounter.pk), {"findings": screened({**URINARY, "rf_night_pain": True})}, format="json")
    assert gp_api.get(workup_url(encounter.pk)).json()["stale"] is True

    generate(gp_api, encounter)
    assert gp_api.get(workup_url(encounter.pk)).json()["stale"] is False


@pytest.mark.parametrize(
    "changes", [{"duration_days": 11}, {"temperature_c": 38.2}, {"heart_rate": 90}, {"visit_date": "2023-03-01"}]
)
def test_any_change_to_the_case_makes_the_workup_stale(gp_api, encounter, changes):
    generate(gp_api, encounter)

    assert gp_api.patch(detail(encounter.pk), changes, format="json").status_code == 200

    assert gp_api.get(workup_url(encounter.pk)).json()["stale"] is True


def test_a_refused_edit_leaves_the_workup_fresh(gp_api, encounter):
    generate(gp_api, encounter)

    assert gp_api.patch(detail(encounter.pk), {"duration_days": -1}, format="json").status_code == 400

    assert gp_api.get(workup_url(encounter.pk)).json()["stale"] is False


# -- finalize ------------------------------------------------------------------------------------


def test_finalizing_locks_the_encounter_with_its_workup(gp, gp_api, encounter):
    workup = generate(gp_api, encounter)

    response = gp_api.post(f"{URL}{encounter.pk}/finalize/")

    assert response.status_code == 200
    assert response.json()["status"] == "finalized" and response.json()["finalized_at"]
    encounter.refresh_from_db()
    assert (encounter.status, encounter.finalized_by) == ("finalized", gp)
    latest = gp_api.get(workup_url(encounter.pk)).json()
    assert latest["id"] == workup["id"] and latest["stale"] is False
    assert gp_api.get(detail(encounter.pk)).status_code == 200


def test_finalizing_without_a_workup_generates_one(gp_api, encounter):
    assert gp_api.post(f"{URL}{encounter.pk}/finalize/").status_code == 200

    workup = gp_api.get(workup_url(encounter.pk))
    assert workup.status_code == 200 and workup.json()["items"]


def test_finalizing_with_a_stale_workup_regenerates_it_keeping_decisions(gp_api, encounter):
    first = generate(gp_api, encounter)
    gp_api.patch(item_url(by_code(first)["lab_urinalysis"]["id"]), {"decision": "accepted"}, format="json")
    gp_api.patch(detail(encounter.pk), {"duration_days": 25}, format="json")

    assert gp_api.post(f"{URL}{encounter.pk}/finalize/").status_code == 200

    latest = gp_api.get(workup_url(encounter.pk)).json()
    assert latest["id"] != first["id"]
    assert Workup.objects.get(pk=latest["id"]).case["duration_days"] == 25
    assert by_code(latest)["lab_urinalysis"]["decision"] == "accepted"


@pytest.fixture
def finalized(gp_api, encounter):
    """A finalized encounter whose workup has one accepted item and a hand-added referral."""
    workup = generate(gp_api, encounter)
    gp_api.patch(item_url(workup["items"][0]["id"]), {"decision": "accepted"}, format="json")
    gp_api.post("/api/v1/workup-referrals/", {"workup": workup["id"], "specialty": "orthopedics"}, format="json")
    assert gp_api.post(f"{URL}{encounter.pk}/finalize/").status_code == 200
    return encounter


def _state(encounter):
    encounter.refresh_from_db()
    rows = lambda model: sorted(  # noqa: E731
        model.objects.filter(workup__encounter=encounter).values_list("id", "decision", "decision_reason", "urgency")
    )
    return (
        _snapshot(encounter),
        Workup.objects.filter(encounter=encounter).count(),
        rows(WorkupItem),
        rows(WorkupReferral),
    )


def _changes_after_finalize(encounter):
    workup = Workup.objects.filter(encounter=encounter).latest()
    item, second_item = workup.items.all()[:2]
    referral = workup.referrals.all()[0]
    return [
        ("patch", detail(encounter.pk), {"duration_days": 12}),
        ("patch", detail(encounter.pk), {"notes": {"plan": "Changed my mind"}}),
        ("patch", item_url(item.pk), {"decision": "declined", "reason": "Too late"}),
        ("patch", item_url(second_item.pk), {"decision": "accepted"}),
        ("patch", referral_url(referral.pk), {"decision": "pending"}),
        ("post", "/api/v1/workup-items/", {"workup": workup.pk, "code": "ecg"}),
        ("post", "/api/v1/workup-referrals/", {"workup": workup.pk, "specialty": "cardiology"}),
        ("post", workup_url(encounter.pk), None),
        ("post", f"{URL}{encounter.pk}/finalize/", None),
    ]


def test_after_finalizing_every_change_is_a_409_and_changes_nothing(gp_api, finalized):
    before = _state(finalized)

    for method, url, body in _changes_after_finalize(finalized):
        response = getattr(gp_api, method)(url, body, format="json")
        assert response.status_code == 409, (method, url, body, response.content)
        assert "detail" in response.json()

    assert _state(finalized) == before


def test_a_finalized_record_can_still_be_read(gp_api, finalized):
    workup = gp_api.get(workup_url(finalized.pk))
    item_id = workup.json()["items"][0]["id"]

    assert workup.status_code == 200 and workup.json()["stale"] is False
    assert gp_api.get(detail(finalized.pk)).json()["status"] == "finalized"
    assert gp_api.get(item_url(item_id)).status_code == 200
    assert (
        gp_api.get(f"/api/v1/patients/{finalized.patient_id}/encounters/").json()["results"][0]["status"] == "finalized"
    )


def test_a_finalized_encounter_keeps_the_sex_and_age_it_was_seen_with(gp, gp_api):
    from tests.record_factories import encounter_of, patient_of

    patient = patient_of(gp, sex="male", birth_date=datetime.date(1980, 5, 17))
    encounter = encounter_of(gp, patient=patient, visit_date=datetime.date(2024, 3, 1))
    gp_api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")
    before = gp_api.get(f"/api/v1/encounters/{encounter.pk}/").json()

    changed = gp_api.patch(
        f"/api/v1/patients/{patient.pk}/", {"birth_date": "1950-01-01", "sex": "female"}, format="json"
    )
    after = gp_api.get(f"/api/v1/encounters/{encounter.pk}/").json()

    assert changed.status_code == 200
    assert (before["sex"], before["age"]) == ("male", 43)
    assert (after["sex"], after["age"]) == ("male", 43)
