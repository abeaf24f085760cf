"""A flood of refused requests does not fill the audit trail, and the trail still shows it: per caller and kind
of probe (address, user, endpoint pattern, action) the first PROBE_AUDIT_LIMIT probes of a window are written
row by row, the next one writes a "probes_limited" row, the rest are counted, and the count is written as a
"probes_suppressed" row by the caller's next probe of that kind in a later window, whose own row follows."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from clinic import audit
from clinic.models import AuditEvent
from tests.record_factories import api_client_for, patient_of

LIMIT = 3
WINDOW = 60
ENDPOINT = "GET /api/v1/patients/<int:pk>/"


@pytest.fixture(autouse=True)
def bound():
    with override_settings(PROBE_AUDIT_LIMIT=LIMIT, PROBE_AUDIT_WINDOW=WINDOW):
        yield


@pytest.fixture
def clock(monkeypatch):
    """The probe audit's clock, driven by the test: `clock.now` in seconds."""

    class Clock:
        now = 1_000_000 * WINDOW + 5.0

    monkeypatch.setattr(audit, "_clock", lambda: Clock.now)
    return Clock


@pytest.fixture
def theirs(other_gp):
    return patient_of(other_gp)


def probes():
    return [
        (row.action, row.actor_username, row.ip_address, row.endpoint, row.object_id)
        for row in AuditEvent.objects.filter(endpoint__startswith="GET /api/v1/patients/").order_by("id")
    ]


def scanner(ip="203.0.113.7"):
    return APIClient(REMOTE_ADDR=ip)


def probe(client, patient_id, times=1):
    for _ in range(times):
        assert client.get(f"/api/v1/patients/{patient_id}/").status_code in (401, 404)


def test_an_anonymous_flood_is_written_up_to_the_bound_then_marked_and_counted(db, clock, theirs):
    probe(scanner(), theirs.pk, times=LIMIT + 10)

    unauthenticated = ("unauthenticated", "anonymous", "203.0.113.7", ENDPOINT)
    assert probes() == [(*unauthenticated, str(theirs.pk))] * LIMIT + [
        ("probes_limited", "anonymous", "203.0.113.7", ENDPOINT, "")
    ]


def test_after_the_window_the_count_is_written_and_recording_resumes(db, clock, theirs):
    probe(scanner(), theirs.pk, times=LIMIT + 10)
    written = len(probes())

    clock.now += WINDOW
    probe(scanner(), theirs.pk, times=2)

    unauthenticated = ("unauthenticated", "anonymous", "203.0.113.7", ENDPOINT)
    # Ten probes past the bound (the one the "probes_limited" row stands for included).
    assert probes()[written:] == [
        ("probes_suppressed", "anonymous", "203.0.113.7", ENDPOINT, "10"),
        (*unauthenticated, str(theirs.pk)),
        (*unauthenticated, str(theirs.pk)),
    ]


def test_a_window_within_the_bound_reports_no_count(db, clock, theirs):
    probe(scanner(), theirs.pk, times=LIMIT)
    clock.now += WINDOW
    probe(scanner(), theirs.pk)

    assert [row[0] for row in probes()] == ["unauthenticated"] * (LIMIT + 1)


def test_other_callers_and_other_probes_are_still_written_while_one_is_cut(db, clock, gp, theirs):
    probe(scanner(), theirs.pk, times=LIMIT + 5)
    before = len(probes())

    probe(scanner(ip="198.51.100.9"), theirs.pk)  # another address
    probe(api_client_for(gp), theirs.pk)  # a signed-in GP: another clinic's patient, a 404
    assert scanner().post("/api/v1/patients/", {}, format="json").status_code == 401  # another endpoint

    assert [(row[0], row[1], row[2]) for row in probes()[before:]] == [
        ("unauthenticated", "anonymous", "198.51.100.9"),
        ("not_found", "gp_anna", "127.0.0.1"),
    ]
    assert AuditEvent.objects.filter(endpoint="POST /api/v1/patients/", action="unauthenticated").count() == 1


def test_without_the_cache_every_probe_is_written(db, clock, theirs, monkeypatch):
    from django.core.cache import cache

    def unavailable(*args, **kwargs):
        raise ConnectionError("the cache is down")

    monkeypatch.setattr(cache, "add", unavailable)
    probe(scanner(), theirs.pk, times=LIMIT + 2)

    assert [row[0] for row in probes()] == ["unauthenticated"] * (LIMIT + 2)
