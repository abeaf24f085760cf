"""The clinic's worklist (GUIDANCE 7): unacknowledged abnormal results, awaited tests, open referrals, with
due dates and overdue status under a controlled clock; the overdue task; scoping and query counts."""

import datetime
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AuditEvent, ClinicHoliday
from referrals import services as referral_services
from referrals.models import Referral
from tests.record_factories import (
    URINARY,
    accept_tests,
    actor_for,
    api_client_for,
    encounter_of,
    screened,
    workup_for,
)
from workups.models import Result, WorkupItem
from workups.services import recommendation_decide, result_enter

UTC = datetime.UTC
MONDAY = datetime.datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() under the test's control: clock.set(datetime)."""

    class Clock:
        now = MONDAY

        def set(self, moment):
            self.now = moment

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def accepted_encounter(gp, *, at=MONDAY, urgencies=None):
    """An encounter whose tests were all accepted at `at` (urgencies: code -> urgency to set)."""
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    accept_tests(gp, workup, at=at)
    for code, urgency in (urgencies or {}).items():
        workup.items.filter(code=code).update(urgency=urgency)
    return encounter, workup


def issued_referral(gp, encounter, *, urgency="urgent"):
    actor = actor_for(gp)
    referral = referral_services.referral_create(
        actor=actor, encounter=encounter, specialty="neurology", urgency=urgency, reason="Numbness"
    )
    return referral_services.referral_issue(actor=actor, referral=referral)


SECTIONS = {"unacknowledged_results": "result", "awaited_results": "test", "open_referrals": "referral"}


def worklist(api):
    """Every row, in one page of 100, grouped by kind as the page's sections are."""
    response = api.get("/api/v1/worklist/", {"page_size": 100})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None
    return {section: [row for row in body["results"] if row["kind"] == kind] for section, kind in SECTIONS.items()}


def worklist_page(api, **params):
    response = api.get("/api/v1/worklist/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_worklist_lists_what_is_awaited_open_and_unacknowledged(gp, clock):
    encounter, workup = accepted_encounter(gp)
    actor = actor_for(gp)
    result_enter(actor=actor, encounter=encounter, code="res_nech_leukocytes", value=5000)  # answers Nechiporenko
    result_enter(actor=actor, encounter=encounter, code="res_crp", value=2)  # normal: nothing to acknowledge
    referral = issued_referral(gp, encounter)

    body = worklist(api_client_for(gp))

    assert [row["code"] for row in body["unacknowledged_results"]] == ["res_nech_leukocytes"]
    row = body["unacknowledged_results"][0]
    assert row["patient"] == {"id": encounter.patient_id, "name": encounter.patient.full_name}
    assert row["due"] == "2024-03-05" and row["overdue"] is False and row["flag"] == "high"
    awaited = {row["code"] for row in body["awaited_results"]}
    assert awaited == {"lab_cbc", "lab_biochemistry", "lab_urinalysis", "us_kidneys"}  # crp answers no test here
    assert all(row["due"] == "2024-03-22" and row["urgency"] == "routine" for row in body["awaited_results"])
    assert [(row["id"], row["specialty"], row["due"]) for row in body["open_referrals"]] == [
        (referral.pk, "neurology", "2024-03-07")
    ]
    event = AuditEvent.objects.get(action="list", object_type="worklist")
    assert event.patient_ids == [encounter.patient_id]


def test_done_things_leave_the_worklist(gp, clock):
    encounter, _ = accepted_encounter(gp)
    actor = actor_for(gp)
    abnormal = result_enter(actor=actor, encounter=encounter, code="res_hemoglobin", value=90)
    referral = issued_referral(gp, encounter)
    api = api_client_for(gp)
    assert (
        api.post(f"/api/v1/results/{abnormal.pk}/acknowledge/", {"note": "Iron started"}, format="json").status_code
        == 200
    )
    assert (
        api.post(
            f"/api/v1/referrals/{referral.pk}/status/", {"status": "completed", "conclusion": "ok"}, format="json"
        ).status_code
        == 200
    )

    body = worklist(api)

    assert body["unacknowledged_results"] == [] and body["open_referrals"] == []
    assert "lab_cbc" not in {row["code"] for row in body["awaited_results"]}


def test_a_booked_referral_stays_open(gp, clock):
    encounter, _ = accepted_encounter(gp)
    referral = issued_referral(gp, encounter)
    referral_services.referral_status_change(
        actor=actor_for(gp), referral=referral, status="booked", appointment_at=MONDAY + datetime.timedelta(days=2)
    )

    body = worklist(api_client_for(gp))

    assert [(row["id"], row["status"]) for row in body["open_referrals"]] == [(referral.pk, "booked")]


def test_overdue_first_then_by_urgency_then_due(gp, clock):
    accepted_encounter(gp, at=datetime.datetime(2024, 2, 1, 9, 0, tzinfo=UTC), urgencies={"lab_cbc": "routine"})
    accepted_encounter(gp, urgencies={"lab_urinalysis": "emergency", "lab_cbc": "urgent"})
    clock.set(datetime.datetime(2024, 3, 8, 9, 0, tzinfo=UTC))

    rows = worklist(api_client_for(gp))["awaited_results"]

    keys = [(row["overdue"], row["urgency"], row["due"]) for row in rows]
    assert keys[0] == (True, "emergency", "2024-03-04")
    assert keys[1] == (True, "urgent", "2024-03-07")
    assert all(key[0] and key[1] == "routine" and key[2] == "2024-02-21" for key in keys[2:7])
    assert all(not key[0] and key[2] == "2024-03-22" for key in keys[7:])
    assert len(keys) == 2 + 5 + 3


def test_a_holiday_moves_the_due_date(gp, clock):
    encounter, _ = accepted_encounter(gp)
    issued_referral(gp, encounter)  # urgent, issued Monday: due Thursday
    ClinicHoliday.objects.create(clinic=encounter.clinic, date=datetime.date(2024, 3, 6), name="Closed")

    body = worklist(api_client_for(gp))

    assert body["open_referrals"][0]["due"] == "2024-03-08"


def test_the_overdue_task_marks_once_and_agrees_with_the_worklist(gp, clock):
    encounter, _ = accepted_encounter(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    issued_referral(gp, encounter)
    later = datetime.datetime(2024, 3, 25, 9, 0, tzinfo=UTC)
    clock.set(later)

    first = referral_services.overdue_mark()
    second = referral_services.overdue_mark()
    body = worklist(api_client_for(gp))

    rows = [row for group in body.values() for row in group]
    assert first == len(rows) == 1 + 4 + 1  # the result, the tests left awaited (CBC answered), the referral
    assert second == 0
    assert all(row["overdue"] and row["overdue_at"] for row in rows)
    assert AuditEvent.objects.filter(action="overdue", channel="system").count() == first
    assert WorkupItem.objects.filter(overdue_at=later).count() == 4
    assert Referral.objects.filter(overdue_at=later).count() == 1
    assert Result.objects.filter(overdue_at=later).count() == 1


def test_the_task_marks_nothing_before_it_is_due(gp, clock):
    accepted_encounter(gp)
    clock.set(datetime.datetime(2024, 3, 22, 20, 0, tzinfo=UTC))  # the due day itself, in Moscow too

    assert referral_services.overdue_mark() == 0


def test_the_task_is_scheduled_and_runs_in_process_on_the_embedded_default(gp, clock, monkeypatch):
    from django.core.cache import cache

    from referrals.tasks import mark_overdue

    assert settings.CELERY_BEAT_SCHEDULE["mark-overdue"]["task"] == mark_overdue.name
    accepted_encounter(gp)
    clock.set(datetime.datetime(2024, 3, 25, 9, 0, tzinfo=UTC))
    monkeypatch.setattr(settings, "CELERY_TASK_ALWAYS_EAGER", True)
    cache.delete("overdue-mark")

    worklist(api_client_for(gp))

    assert WorkupItem.objects.filter(overdue_at__isnull=False).count() == 5
    cache.delete("overdue-mark")


def test_counts_for_the_badge(gp, clock):
    encounter, _ = accepted_encounter(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    clock.set(datetime.datetime(2024, 3, 6, 9, 0, tzinfo=UTC))

    response = api_client_for(gp).get("/api/v1/worklist/counts/")

    assert response.status_code == 200
    # The one overdue item is that unacknowledged result: one thing needs doing, not two.
    assert response.json() == {"overdue": 1, "unacknowledged": 1, "attention": 1}


def test_another_clinics_items_never_appear(gp, other_gp, clock):
    encounter, _ = accepted_encounter(other_gp)
    result_enter(actor=actor_for(other_gp), encounter=encounter, code="res_hemoglobin", value=90)
    issued_referral(other_gp, encounter)
    accepted_encounter(gp)

    body = worklist(api_client_for(gp))
    counts = api_client_for(gp).get("/api/v1/worklist/counts/").json()

    assert body["unacknowledged_results"] == [] and body["open_referrals"] == []
    assert {row["patient"]["id"] for row in body["awaited_results"]} != {encounter.patient_id}
    assert encounter.patient_id not in {row["patient"]["id"] for row in body["awaited_results"]}
    assert counts == {"overdue": 0, "unacknowledged": 0, "attention": 0}


def test_an_anonymous_caller_gets_401_and_parameters_are_refused(gp, anonymous):
    assert anonymous.get("/api/v1/worklist/").status_code == 401
    assert anonymous.get("/api/v1/worklist/counts/").status_code == 401
    api = api_client_for(gp)
    assert api.get("/api/v1/worklist/?clinic=2").json() == {"clinic": ["Unknown parameter."]}
    assert api.get("/api/v1/worklist/counts/?all=1").status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "letter"}, "kind"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
    ],
)
def test_a_bad_worklist_parameter_is_a_400_naming_it(gp, params, field):
    response = api_client_for(gp).get("/api/v1/worklist/", params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_page_past_the_last_is_a_404(gp, clock):
    accepted_encounter(gp)

    assert api_client_for(gp).get("/api/v1/worklist/", {"page": 2}).status_code == 404


def populate(gp, count, *, at=MONDAY):
    """`count` encounters, each with an abnormal result, its tests left awaited and an urgent referral."""
    for _ in range(count):
        encounter, _ = accepted_encounter(gp, at=at)
        result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
        issued_referral(gp, encounter)


def test_the_query_count_is_the_same_for_6_items_and_for_60(gp, clock):
    api = api_client_for(gp)
    populate(gp, 1)
    with CaptureQueriesContext(connection) as few:
        small = worklist_page(api, page_size=100)
    populate(gp, 9)
    with CaptureQueriesContext(connection) as many:
        large = worklist_page(api, page_size=100)

    # Each encounter: the abnormal haemoglobin, the 4 tests it does not answer, the referral.
    assert small["count"] == 6 and large["count"] == 60 and len(large["results"]) == 60
    assert len(many) == len(few)


def test_the_api_pages_overdue_first_then_by_urgency_then_due_date_across_kinds(gp, clock):
    populate(gp, 2, at=datetime.datetime(2024, 2, 1, 9, 0, tzinfo=UTC))  # all overdue by the 8th of March
    populate(gp, 2)
    accepted_encounter(gp, urgencies={"lab_urinalysis": "emergency", "lab_cbc": "urgent"})
    clock.set(datetime.datetime(2024, 3, 8, 9, 0, tzinfo=UTC))
    api = api_client_for(gp)

    pages, params = [], {"page_size": 7}
    while True:
        body = worklist_page(api, **params, page=len(pages) + 1)
        pages.append(body["results"])
        if body["next"] is None:
            break
        assert "page=" in body["next"] and "page_size=7" in body["next"]

    rows = [row for page in pages for row in page]
    order = {"emergency": 0, "urgent": 1, "routine": 2}
    keys = [(not row["overdue"], order[row["urgency"]], row["due"]) for row in rows]
    assert len(rows) == body["count"] == 4 * 6 + 5 and len(pages) == 5
    assert keys == sorted(keys)
    assert len({(row["kind"], row["id"]) for row in rows}) == len(rows)  # no row twice, none skipped
    assert keys[0] == (False, 0, "2024-03-04")  # the overdue emergency test leads, whatever its kind
    assert rows[-1]["overdue"] is False
    assert {row["kind"] for row in rows if row["overdue"]} == {"result", "test", "referral"}


def test_kind_keeps_one_kind_of_row(gp, clock):
    populate(gp, 2)

    body = worklist_page(api_client_for(gp), kind="referral")

    assert body["count"] == 2 and {row["kind"] for row in body["results"]} == {"referral"}
    assert set(body["results"][0]) >= {"status", "issued_at", "appointment_at", "specialty", "patient", "due"}


def test_only_the_patients_shown_are_audited(gp, clock):
    populate(gp, 3)

    body = worklist_page(api_client_for(gp), page_size=1)

    event = AuditEvent.objects.get(action="list", object_type="worklist")
    assert event.patient_ids == [body["results"][0]["patient"]["id"]]


@pytest.mark.parametrize(
    "today",
    [
        datetime.datetime(2024, 3, 4, 9, 0, tzinfo=UTC),
        datetime.datetime(2024, 3, 5, 23, 30, tzinfo=UTC),  # already the 6th in Moscow
        datetime.datetime(2024, 3, 8, 9, 0, tzinfo=UTC),
        datetime.datetime(2024, 3, 11, 9, 0, tzinfo=UTC),
        datetime.datetime(2024, 3, 25, 9, 0, tzinfo=UTC),
    ],
)
def test_the_badge_counted_in_the_database_agrees_with_the_rows(gp, clock, today):
    populate(gp, 1, at=datetime.datetime(2024, 3, 1, 15, 0, tzinfo=UTC))  # a Friday
    populate(gp, 1)
    accepted_encounter(gp, urgencies={"lab_urinalysis": "emergency", "lab_cbc": "urgent"})
    ClinicHoliday.objects.create(clinic=actor_for(gp).clinic, date=datetime.date(2024, 3, 6), name="Closed")
    clock.set(today)

    rows = worklist(api_client_for(gp))
    counts = api_client_for(gp).get("/api/v1/worklist/counts/").json()

    overdue = {section: sum(row["overdue"] for row in group) for section, group in rows.items()}
    assert counts == {
        "overdue": sum(overdue.values()),
        "unacknowledged": len(rows["unacknowledged_results"]),
        "attention": len(rows["unacknowledged_results"]) + overdue["awaited_results"] + overdue["open_referrals"],
    }


def test_the_worklist_page_is_paged_by_section(gp, clock):
    from django.test import Client

    populate(gp, 30)
    web = Client()
    web.force_login(gp)

    first = web.get("/worklist/").content.decode()
    second = web.get("/worklist/", {"referrals": 2}).content.decode()

    def ids(page, kind):
        return re.findall(rf'data-kind="{kind}" data-id="(\d+)"', page)

    assert len(ids(first, "referral")) == 25 and len(ids(second, "referral")) == 5
    assert not set(ids(first, "referral")) & set(ids(second, "referral"))
    assert ids(second, "result") == ids(first, "result")  # the other sections stay on their page
    assert "Page 2 of 2." in second and "(30)" in second
    assert 'href="?referrals=1#worklist-referrals" rel="prev"' in second


def test_the_worklist_page_takes_the_same_queries_for_6_items_and_for_60(gp, clock):
    from django.test import Client

    web = Client()
    web.force_login(gp)
    populate(gp, 1)
    with CaptureQueriesContext(connection) as few:
        assert web.get("/worklist/").status_code == 200
    populate(gp, 9)
    with CaptureQueriesContext(connection) as many:
        assert web.get("/worklist/", {"awaited": 2}).status_code == 200

    assert len(many) == len(few)


def test_only_the_latest_workups_accepted_tests_are_awaited(gp, clock):
    from workups.services import workup_review

    encounter, first = accepted_encounter(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_crp", value=2)
    clock.set(MONDAY + datetime.timedelta(hours=1))
    followup, _ = workup_review(actor=actor_for(gp), encounter=encounter)  # keeps the decisions taken
    recommendation_decide(
        actor=actor_for(gp), recommendation=followup.items.get(code="lab_cbc"), decision="declined", reason="Done"
    )

    rows = worklist(api_client_for(gp))["awaited_results"]

    assert rows and {row["workup"] for row in rows} == {followup.pk} != {first.pk}
    assert "lab_cbc" not in {row["code"] for row in rows}  # accepted in the first workup, declined in the latest
    counts = api_client_for(gp).get("/api/v1/worklist/counts/").json()
    clock.set(datetime.datetime(2024, 3, 25, 9, 0, tzinfo=UTC))
    assert counts["overdue"] == 0
    assert api_client_for(gp).get("/api/v1/worklist/counts/").json()["overdue"] == len(rows)  # the CRP is normal


# -- a booked referral whose appointment has passed -----------------------------------------------

MOSCOW = datetime.timezone(datetime.timedelta(hours=3))


def booked_referral(gp, *, appointment, urgency="routine"):
    """A referral issued on MONDAY (routine: due 14 working days later, 2024-03-22), booked for `appointment`."""
    encounter, _ = accepted_encounter(gp)
    referral = issued_referral(gp, encounter, urgency=urgency)
    return referral_services.referral_status_change(
        actor=actor_for(gp), referral=referral, status="booked", appointment_at=appointment
    )


def test_a_booked_referral_is_not_overdue_on_its_appointments_day(gp, clock):
    booked_referral(gp, appointment=datetime.datetime(2024, 3, 5, 10, 0, tzinfo=MOSCOW))
    clock.set(datetime.datetime(2024, 3, 5, 20, 59, tzinfo=UTC))  # 23:59 in Moscow, still the appointment's day

    row = worklist(api_client_for(gp))["open_referrals"][0]
    counts = api_client_for(gp).get("/api/v1/worklist/counts/").json()

    assert (row["due"], row["overdue"], row["appointment_passed"]) == ("2024-03-05", False, False)
    assert counts["overdue"] == 0


def test_a_booked_referral_is_overdue_from_the_day_after_its_appointment_with_no_conclusion(gp, clock):
    referral = booked_referral(gp, appointment=datetime.datetime(2024, 3, 5, 10, 0, tzinfo=MOSCOW))
    clock.set(datetime.datetime(2024, 3, 5, 21, 0, tzinfo=UTC))  # midnight in Moscow: the day after

    row = worklist(api_client_for(gp))["open_referrals"][0]
    counts = api_client_for(gp).get("/api/v1/worklist/counts/").json()
    marked = referral_services.overdue_mark()

    # Due on the appointment's day, not 14 working days after the issue.
    assert (row["id"], row["due"], row["overdue"], row["appointment_passed"]) == (referral.pk, "2024-03-05", True, True)
    assert counts == {"overdue": 1, "unacknowledged": 0, "attention": 1}
    assert marked == 1 and Referral.objects.get(pk=referral.pk).overdue_at is not None


def test_the_worklist_page_says_to_record_the_conclusion_or_a_no_show(gp, clock):
    from django.test import Client

    referral = booked_referral(gp, appointment=datetime.datetime(2024, 3, 5, 10, 0, tzinfo=MOSCOW))
    clock.set(datetime.datetime(2024, 3, 6, 9, 0, tzinfo=UTC))
    web = Client()
    web.force_login(gp)

    page = web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    row = re.search(rf'<tr class="overdue" data-kind="referral" data-id="{referral.pk}".*?</tr>', page, re.S)
    assert row, page
    assert "Appointment passed: record the conclusion or a no-show" in row.group(0)
    # Where the row leads, the referral says so beside its appointment.
    tracking = web.get(f"/referrals/{referral.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Appointment passed: record the conclusion or a no-show" in tracking
    clock.set(datetime.datetime(2024, 3, 5, 12, 0, tzinfo=UTC))
    assert "Appointment passed" not in web.get(f"/referrals/{referral.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_a_booking_after_the_referrals_due_date_leaves_that_date_standing(gp, clock):
    booked_referral(gp, appointment=datetime.datetime(2024, 4, 15, 10, 0, tzinfo=MOSCOW))
    clock.set(datetime.datetime(2024, 3, 6, 9, 0, tzinfo=UTC))

    row = worklist(api_client_for(gp))["open_referrals"][0]

    assert (row["due"], row["overdue"], row["appointment_passed"]) == ("2024-03-22", False, False)


def test_a_completed_referral_leaves_the_worklist_after_its_appointment(gp, clock):
    referral = booked_referral(gp, appointment=datetime.datetime(2024, 3, 5, 10, 0, tzinfo=MOSCOW))
    clock.set(datetime.datetime(2024, 3, 6, 9, 0, tzinfo=UTC))
    referral_services.referral_status_change(
        actor=actor_for(gp), referral=referral, status="completed", conclusion="L5 radiculopathy."
    )

    assert worklist(api_client_for(gp))["open_referrals"] == []
    assert api_client_for(gp).get("/api/v1/worklist/counts/").json()["overdue"] == 0
