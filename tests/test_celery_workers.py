"""Letters rendered by real Celery worker processes over a real Redis, and what happens when parts fail.

The web side is gunicorn and the workers are `celery worker` processes, all on this test's own
Redis (which the tests stop and start) and on the test database.
"""

import io
import os
import signal
import time

import pytest
import requests
from django.db import connection
from pypdf import PdfReader

from referrals.models import PdfStatus, Referral
from tests.processes import RedisServer, Stack, wait_for
from tests.record_factories import actor_for, api_token_for, encounter_of, patient_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes share the PostgreSQL test database"),
]


def database_url():
    settings = connection.settings_dict
    return (
        f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def make_stack(tmp_path, redis, **kwargs):
    return Stack(directory=tmp_path, database_url=database_url(), redis=redis, **kwargs).start()


@pytest.fixture
def case(gp):
    """A consultation with an accepted nephrology referral and accepted tests, and the GP's API session."""
    patient = patient_of(gp, family_name="Соколова", given_name="Вера", sex="female", identifier="MRN-9")
    encounter = encounter_of(gp, patient=patient, pregnant=False)
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    recommendation = workup.referrals.get(specialty="nephrology")
    recommendation_decide(actor=actor, recommendation=recommendation, decision=Decision.ACCEPTED)
    recommendation_decide(actor=actor, recommendation=workup.items.get(code="us_kidneys"), decision=Decision.ACCEPTED)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {api_token_for(gp)}"
    return {"encounter": encounter, "recommendation": recommendation, "session": session}


def fetch_pdf(session, url, *, timeout=90):
    def ready():
        response = session.get(url, timeout=10)
        if response.status_code == 200:
            return response
        assert response.status_code == 409, response.text
        assert response.json()["pdf_status"] != "failed", response.text
        return None

    return wait_for(ready, timeout=timeout, interval=0.5, what=f"the PDF at {url}")


def pdf_text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def files_for(stack, referral_id):
    return [path for path in stack.media.rglob(f"referral-{referral_id}-*.pdf")]


def test_a_letter_requested_over_the_api_is_rendered_by_a_worker_and_downloaded(tmp_path, redis, case):
    stack = make_stack(tmp_path, redis)
    try:
        session = case["session"]
        created = session.post(
            f"{stack.url}/api/v1/referrals/",
            json={"recommendation": case["recommendation"].pk, "question": "Pyelonephritis?"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        referral = created.json()
        assert referral["pdf_status"] in ("pending", "rendering", "ready")
        waiting = session.get(f"{stack.url}/api/v1/referrals/{referral['id']}/pdf/", timeout=10)
        if waiting.status_code == 409:
            assert int(waiting.headers["Retry-After"]) > 0
        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral['id']}/pdf/")
        assert response.headers["Content-Type"] == "application/pdf"
        text = pdf_text(response.content)
        for expected in [
            "Соколова Вера",
            "Nephrology",
            "Routine referral",
            case["recommendation"].reason,
            "Pyelonephritis?",
            "No saddle anaesthesia",
            "No fever",
            "No significant trauma",
            "No constant night pain",
        ]:
            assert " ".join(expected.split()) in text, expected
        assert Referral.objects.get(pk=referral["id"]).pdf_renders == 1

        requested = session.post(f"{stack.url}/api/v1/encounters/{case['encounter'].pk}/requisition/", timeout=10)
        assert requested.status_code == 202, requested.text
        requisition = fetch_pdf(session, f"{stack.url}/api/v1/encounters/{case['encounter'].pk}/requisition/pdf/")
        assert "Ultrasound of the kidneys and bladder" in pdf_text(requisition.content)
    finally:
        stack.stop()


def test_a_letter_requested_while_redis_is_down_is_saved_and_rendered_once_when_it_returns(tmp_path, redis, case):
    stack = make_stack(tmp_path, redis)
    try:
        session = case["session"]
        redis.stop()
        started = time.monotonic()
        created = session.post(
            f"{stack.url}/api/v1/referrals/", json={"recommendation": case["recommendation"].pk}, timeout=30
        )
        elapsed = time.monotonic() - started
        assert created.status_code == 201, created.text
        assert elapsed < 10, f"the request waited {elapsed:.1f}s on a dead Redis"
        referral_id = created.json()["id"]
        assert session.get(f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=10).status_code == 409
        saved = Referral.objects.get(pk=referral_id)
        assert saved.pdf_status == PdfStatus.PENDING and saved.pdf_enqueued_at is None

        redis.start()
        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=120)
        assert "Соколова Вера" in pdf_text(response.content)
        time.sleep(3)  # let any duplicate the sweep might have queued reach a worker
        assert Referral.objects.get(pk=referral_id).pdf_renders == 1
        assert len(files_for(stack, referral_id)) == 1
    finally:
        stack.stop()


def test_a_worker_killed_mid_render_leaves_the_letter_to_another_which_renders_it_once(tmp_path, redis, case):
    stack = make_stack(tmp_path, redis, extra_env={"DOCUMENT_RENDER_PAUSE_SECONDS": "4"})
    try:
        session = case["session"]
        created = session.post(
            f"{stack.url}/api/v1/referrals/", json={"recommendation": case["recommendation"].pk}, timeout=10
        )
        referral_id = created.json()["id"]

        def claimed():
            row = (
                Referral.objects.filter(pk=referral_id, pdf_status=PdfStatus.RENDERING)
                .values_list("pdf_claimed_by", flat=True)
                .first()
            )
            return row or None

        claimant = wait_for(claimed, timeout=60, interval=0.1, what="a worker to claim the render")
        victim = int(claimant.split(":")[1])
        os.kill(victim, signal.SIGKILL)  # the pool process doing the render dies, as under the OOM killer

        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=120)
        assert "Соколова Вера" in pdf_text(response.content)
        referral = Referral.objects.get(pk=referral_id)
        assert referral.pdf_renders == 1
        assert int(referral.pdf_claimed_by.split(":")[1]) != victim
        assert len(files_for(stack, referral_id)) == 1
    finally:
        stack.stop()
