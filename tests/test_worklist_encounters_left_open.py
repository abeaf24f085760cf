"""Encounters left as drafts after their visit day, on the worklist and over the API: a consultation nobody
finalized may hold a workup nobody acted on, so the GP sees it the next day, oldest first, with its disposition.
Today's drafts (the consultation may still be going on), finalized encounters and another clinic's never appear;
the day is the clinic's (Moscow), not the server's; the page's queries stay constant; every listing is audited."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AuditEvent
from tests.record_factories import URINARY, actor_for, api_client_for, encounter_of, patient_of, screened, workup_for
from workups.services import encounter_finalize

UTC = datetime.UTC
# 12:00 in Moscow on Monday 4 March 2024.
MONDAY_NOON = datetime.datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
FRIDAY = datetime.date(2024, 3, 1)
MONDAY = datetime.date(2024, 3, 4)
URL = "/api/v1/worklist/encounters-left-open/"


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = MONDAY_NOON

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def _draft(gp, visit_date, *, workup=True, **kwargs):
    encounter = encounter_of(gp, visit_date=visit_date, findings=screened(URINARY), **kwargs)
    if workup:
        workup_for(gp, encounter)
    return encounter


def test_a_draft_from_an_earlier_day_is_listed_with_its_disposition_and_a_link_to_finalize(gp, gp_web, clock):
    left = _draft(gp, FRIDAY)
    no_workup = _draft(gp, FRIDAY - datetime.timedelta(days=3), workup=False)
    _draft(gp, MONDAY)  # today's: the consultation may still be going on
    finalized = _draft(gp, FRIDAY)
    encounter_finalize(actor=actor_for(gp, channel="web"), encounter=finalized)

    page = gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    section = page[page.index('id="worklist-drafts"') :]

    assert "Encounters not finalized after their visit day" in section and "(2)" in section
    assert section.index(f'data-id="{no_workup.pk}"') < section.index(f'data-id="{left.pk}"')  # oldest first
    assert f'data-id="{finalized.pk}"' not in section
    assert f'href="/encounters/{left.pk}/finalize/"' in section
    row = section[section.index(f'data-id="{left.pk}"') :]
    assert "badge routine" in row[: row.index("</tr>")] or "badge urgent" in row[: row.index("</tr>")]
    assert "no plan yet" in section[section.index(f'data-id="{no_workup.pk}"') :].split("</tr>")[0]
    assert '<th scope="col" role="columnheader">Disposition</th>' in section


def summary(page):
    return re.search(r'<div class="row-between">\s*<h1>.*?<p class="muted">(.*?)</p>', page, re.S).group(1)


def test_the_visit_date_opens_the_workup_or_before_any_workup_the_findings(gp, gp_web, clock):
    # What is left to do: the workup's decisions, or, with no workup yet, the findings to complete.
    with_plan = _draft(gp, FRIDAY)
    without_plan = _draft(gp, FRIDAY, workup=False)

    section = gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode().split('id="worklist-drafts"')[1]

    for encounter, address in ((with_plan, "workup/"), (without_plan, "")):
        row = section[section.index(f'data-id="{encounter.pk}"') :].split("</tr>")[0]
        visit = f'<a href="/encounters/{encounter.pk}/{address}"><time datetime="{FRIDAY.isoformat()}">'
        assert visit in row
        assert f'href="/encounters/{encounter.pk}/finalize/"' in row


def test_the_worklists_summary_counts_the_encounters_left_open_only_when_there_are_some(gp, gp_web, clock):
    assert "not finalized" not in summary(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    _draft(gp, FRIDAY)
    one = summary(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    _draft(gp, FRIDAY, workup=False)
    two = summary(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode())

    assert '<a href="#worklist-drafts">1 not finalized</a>' in one
    assert '<a href="#worklist-drafts">2 not finalized</a>' in two


def test_the_day_is_the_clinics_a_visit_of_monday_is_left_open_at_1_am_moscow_on_tuesday(gp, gp_web, clock):
    monday = _draft(gp, MONDAY)
    clock.now = datetime.datetime(2024, 3, 4, 21, 30, tzinfo=UTC)  # 00:30 on Tuesday in Moscow, Monday in UTC

    body = api_client_for(gp).get(URL).json()

    assert [row["id"] for row in body["results"]] == [monday.pk]


def test_the_section_reads_in_russian_and_says_when_nothing_is_left_open(gp, gp_web, clock):
    page = gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Приёмы, не завершённые в день визита" in page and "Все приёмы до сегодняшнего дня завершены." in page
    _draft(gp, FRIDAY)
    page = gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<th scope="col" role="columnheader">Тактика</th>' in page


def test_the_api_lists_them_oldest_first_in_pages(gp, clock):
    older, newer = _draft(gp, FRIDAY - datetime.timedelta(days=7)), _draft(gp, FRIDAY)
    client = api_client_for(gp)

    body = client.get(URL, {"page_size": 1}).json()
    second = client.get(URL, {"page_size": 1, "page": 2}).json()

    assert body["count"] == 2 and body["next"] and body["previous"] is None
    assert body["results"] == [
        {
            "id": older.pk,
            "patient": {"id": older.patient_id, "name": older.patient.full_name},
            "visit_date": older.visit_date.isoformat(),
            "disposition": older.workups.get().disposition,
        }
    ]
    assert [row["id"] for row in second["results"]] == [newer.pk]


def test_listing_is_audited_with_the_patients_shown(gp, clock):
    left = _draft(gp, FRIDAY)

    api_client_for(gp).get(URL)

    event = AuditEvent.objects.filter(object_type="encounters_left_open").get()
    assert (event.action, event.patient_ids) == ("list", [left.patient_id])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "NaN"}, "page_size"),
        ({"page": "-1"}, "page"),
        ({"page": "1\x00"}, "page"),
        ({"status": "draft"}, "status"),
    ],
)
def test_bad_paging_is_a_400_naming_the_parameter(gp, clock, query, field):
    response = api_client_for(gp).get(URL, query)

    assert response.status_code == 400 and field in response.json()


def test_a_page_past_the_last_is_a_404(gp, clock):
    _draft(gp, FRIDAY)
    assert api_client_for(gp).get(URL, {"page": 2}).status_code == 404


def test_another_clinics_drafts_never_appear(gp, other_gp, gp_web, clock):
    theirs = _draft(other_gp, FRIDAY)

    assert api_client_for(gp).get(URL).json()["count"] == 0
    assert f'data-id="{theirs.pk}"' not in gp_web.get("/worklist/").content.decode()
    assert api_client_for(other_gp).get(URL).json()["results"][0]["id"] == theirs.pk


def test_an_anonymous_caller_is_refused(db, anonymous, clock):
    assert anonymous.get(URL).status_code == 401


def test_the_worklist_page_takes_as_many_queries_for_thirty_drafts_as_for_two(gp, gp_web, clock):
    patient = patient_of(gp)
    for _ in range(2):
        _draft(gp, FRIDAY, workup=False, patient=patient)
    with CaptureQueriesContext(connection) as few:
        gp_web.get("/worklist/")
    for _ in range(28):
        _draft(gp, FRIDAY, workup=False, patient=patient_of(gp))
    with CaptureQueriesContext(connection) as many:
        page = gp_web.get("/worklist/").content.decode()

    assert page.count('data-kind="encounter"') == 25  # a page
    assert len(many) == len(few)
