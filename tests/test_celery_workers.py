"""Letters rendered by real Celery worker processes over a real Redis, and what happens when parts fail.

The web side is gunicorn and the workers are `celery worker` processes, all on this test's own
Redis (which the tests stop and start) and on the test database.
"""

import io
import os
import signal
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.db.models import F
from pypdf import PdfReader

from referrals.models import PdfStatus, Referral
from tests.processes import RedisServer, Stack, process_gone, wait_for
from tests.record_factories import actor_for, api_token_for, encounter_of, patient_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def on_postgresql():
    # The worker processes share the test database, which only a server database allows: on anything else these
    # tests fail rather than pass unseen.
    assert connection.vendor == "postgresql", "run the tests through ./scripts/test (PostgreSQL)"


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
            referral["reason"],
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
        # The client's timeout bounds the wait: a request hanging on the dead broker fails here.
        created = letter_requested(stack, case)
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        warning = f"could not enqueue referral {referral_id} ("
        wait_for(lambda: warning in stack.log("web"), timeout=10, what="the web's warning")
        assert session.get(f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=10).status_code == 409
        saved = Referral.objects.get(pk=referral_id)
        assert saved.pdf_status == PdfStatus.PENDING and saved.pdf_enqueued_at is None

        redis.start()
        assert stack.sweep() == 1  # the sweep (as beat runs it) hands the waiting letter to the workers
        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=120)
        assert "Соколова Вера" in pdf_text(response.content)
        assert stack.sweep() == 0  # nothing is left to enqueue
        wait_for(stack.tasks_settled, timeout=60, what="every delivered task to finish")
        assert Referral.objects.get(pk=referral_id).pdf_renders == 1
        assert len(files_for(stack, referral_id)) == 1
    finally:
        stack.stop()


def claimed_by(referral_id):
    """The claimant ("host:pid:task") of a render in progress, or None."""
    return (
        Referral.objects.filter(pk=referral_id, pdf_status=PdfStatus.RENDERING)
        .values_list("pdf_claimed_by", flat=True)
        .first()
    ) or None


def letter_requested(stack, case):
    """The GP's request for the case's referral letter (its answer)."""
    return case["session"].post(
        f"{stack.url}/api/v1/referrals/", json={"recommendation": case["recommendation"].pk}, timeout=10
    )


def pid_of(claimant: str) -> int:
    return int(claimant.split(":")[1])


def paused_mid_render(stack, referral_id) -> int:
    """Wait until a worker has claimed the letter and is held mid-render (tests.worker_pause): its pid."""
    claimant = wait_for(lambda: claimed_by(referral_id), timeout=60, interval=0.1, what="a worker to claim the render")
    renderer = pid_of(claimant)
    wait_for(lambda: (stack.pause_dir / f"paused-{renderer}").exists(), timeout=30, what="the render to pause")
    return renderer


def test_a_worker_process_killed_mid_render_leaves_the_letter_to_another_which_renders_it_once(tmp_path, redis, case):
    stack = make_stack(tmp_path, redis, render_pause=True)
    try:
        session = case["session"]
        referral_id = letter_requested(stack, case).json()["id"]
        victim = paused_mid_render(stack, referral_id)

        os.kill(victim, signal.SIGKILL)  # the pool process doing the render dies, as under the OOM killer

        # Its worker sees it die and gives the task back (acks_late, reject_on_worker_lost): no sweep needed.
        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=120)
        assert "Соколова Вера" in pdf_text(response.content)
        wait_for(stack.tasks_settled, timeout=60, what="every delivered task to finish")
        referral = Referral.objects.get(pk=referral_id)
        assert referral.pdf_renders == 1
        assert pid_of(referral.pdf_claimed_by) != victim
        assert len(files_for(stack, referral_id)) == 1
    finally:
        stack.stop()


def test_a_whole_worker_killed_mid_render_leaves_the_letter_to_the_sweep_after_the_time_limit(tmp_path, redis, case):
    stack = make_stack(tmp_path, redis, render_pause=True)
    try:
        session = case["session"]
        referral_id = letter_requested(stack, case).json()["id"]
        renderer = paused_mid_render(stack, referral_id)
        victim = os.getpgid(renderer)  # the worker's main process leads the group of its pool
        survivor = next(worker.pid for worker in stack.workers if worker.pid != victim)
        assert victim in [worker.pid for worker in stack.workers]

        # The whole worker dies: nobody gives the task back, and Redis would redeliver it only after its
        # visibility timeout (10 minutes).
        os.killpg(victim, signal.SIGKILL)
        wait_for(lambda: process_gone(renderer) and process_gone(victim), timeout=30, what="the worker to die")

        # Within the task's time limit the claim may still be a live render: the sweep leaves it alone.
        assert stack.sweep() == 0
        assert claimed_by(referral_id)
        # Once the time limit has passed (driven here: the claim is made that much older), one sweep hands the
        # letter to the surviving worker.
        Referral.objects.filter(pk=referral_id).update(
            pdf_claimed_at=F("pdf_claimed_at") - timedelta(seconds=stack.time_limit + 1)
        )
        assert stack.sweep() == 1

        response = fetch_pdf(session, f"{stack.url}/api/v1/referrals/{referral_id}/pdf/", timeout=120)
        assert "Соколова Вера" in pdf_text(response.content)
        referral = Referral.objects.get(pk=referral_id)
        assert referral.pdf_renders == 1
        assert os.getpgid(pid_of(referral.pdf_claimed_by)) == survivor
        assert len(files_for(stack, referral_id)) == 1
    finally:
        stack.stop()


def sent_sweeps(stack, name) -> int:
    return stack.log(name).count("Sending due task documents-sweep")


def test_of_two_beats_only_the_lock_holder_sends_tasks_and_the_other_takes_over_when_it_dies(tmp_path, redis):
    stack = make_stack(tmp_path, redis, workers=0, web=False)
    try:
        first = stack.start_beat("beat1")
        assert pid_of(wait_for(stack.beat_lock_holder, timeout=30, what="the first beat to lock")) == first.pid
        second = stack.start_beat("beat2")
        wait_for(lambda: "standing by" in stack.log("beat2"), timeout=30, what="the second beat to stand by")

        wait_for(lambda: sent_sweeps(stack, "beat1") >= 3, timeout=30, what="the first beat to send sweeps")
        assert sent_sweeps(stack, "beat2") == 0
        assert pid_of(stack.beat_lock_holder()) == first.pid

        os.killpg(first.pid, signal.SIGKILL)  # the lock lapses (BEAT_LOCK_SECONDS) and the standby takes over
        wait_for(lambda: sent_sweeps(stack, "beat2") >= 1, timeout=30, what="the second beat to take over")
        assert pid_of(stack.beat_lock_holder()) == second.pid
    finally:
        stack.stop()


def test_an_embedded_beat_stops_with_its_worker_so_the_next_workers_beat_schedules(tmp_path, redis):
    stack = make_stack(tmp_path, redis, workers=0, web=False)
    try:
        worker = stack.start_worker("worker1", beat=True)
        beat = pid_of(wait_for(stack.beat_lock_holder, timeout=60, what="the embedded beat to lock"))
        assert beat != worker.pid and os.getpgid(beat) == worker.pid

        os.kill(worker.pid, signal.SIGKILL)  # the worker alone dies; its beat would live on as an orphan
        wait_for(lambda: process_gone(beat), timeout=30, what="the orphaned beat to stop")
        assert "the worker that started this beat is gone" in stack.log("worker1")
        wait_for(lambda: stack.beat_lock_holder() is None, timeout=10, what="the lock to be released")

        replacement = stack.start_worker("worker2", beat=True)
        holder = pid_of(wait_for(stack.beat_lock_holder, timeout=60, what="the new embedded beat to lock"))
        assert os.getpgid(holder) == replacement.pid
        wait_for(lambda: sent_sweeps(stack, "worker2") >= 1, timeout=30, what="the new beat to send sweeps")
    finally:
        stack.stop()
