"""PDF rendering: a letter against a trivial page in-process, and letters per second through two workers.

    python bench/pdf.py [--letters 40] [--seconds 5] [--skip-workers]

Part 1 renders, in this process, a full referral letter and, as the baseline, a one-paragraph
page through the same html_to_pdf (same fonts and CSS machinery), and prints the ratio.
Part 2 starts its own Redis on loopback and two `celery worker` processes (concurrency 1 each)
on a throwaway SQLite database, creates N referrals, and times until every letter is ready; it
prints letters per second, against the in-process rate of part 1 (the speed-up of two workers).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{WORK / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(WORK / "media"),
        "DJANGO_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def timed(function, seconds):
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 3:
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def sample_case():
    from clinic.audit import Actor
    from clinic.services import demo_clinician_ensure, encounter_create, patient_create
    from tests.cases import red_flags_absent
    from workups.services import workup_generate

    clinic, user, _, _ = demo_clinician_ensure(clinic_name="Bench clinic", username="bench", password="bench-pass-1")
    actor = Actor(user=user, clinic=clinic, channel="api")
    patient = patient_create(
        actor=actor,
        given_name="Мария",
        family_name="Иванова",
        birth_date=__import__("datetime").date(1980, 5, 17),
        sex="female",
        identifier="MRN-1",
    )
    findings = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True, **red_flags_absent()}
    encounter = encounter_create(
        actor=actor,
        patient=patient,
        data={"duration_days": 10, "pregnant": False, "findings": findings, "temperature_c": 37.2},
    )
    workup_generate(actor=actor, encounter=encounter)
    return actor, encounter


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from referrals import documents
    from referrals.models import Referral
    from referrals.pdf import html_to_pdf, render_pdf
    from referrals.services import referral_create

    actor, encounter = sample_case()
    referral = Referral(
        clinic=encounter.clinic,
        encounter=encounter,
        specialty="nephrology",
        urgency="urgent",
        reason="Exclude pyelonephritis",
        question="Pyelonephritis or a stone?",
        created_by=actor.user,
    )
    workup = encounter.workups.prefetch_related("items").first()
    context = documents.letter_context(referral, workup=workup)
    trivial = (
        '<html><head><link rel="stylesheet" href="/static/pdf/document.css"></head>'
        "<body><p>One paragraph.</p></body></html>"
    )
    html_to_pdf(trivial), render_pdf("referrals/letter.html", context)  # warm up fonts and templates
    baseline = timed(lambda: html_to_pdf(trivial), args.seconds)
    letter = timed(lambda: render_pdf("referrals/letter.html", context), args.seconds)
    print(
        f"trivial page: {baseline * 1000:7.1f} ms   letter: {letter * 1000:7.1f} ms   "
        f"ratio letter/trivial: {letter / baseline:.2f}x"
    )
    if args.skip_workers:
        return

    redis_port = _free_port()
    redis = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "DJANGO_DEBUG": "1"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--hostname",
                f"bench{n}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in (1, 2)
    ]
    try:
        time.sleep(4)  # workers connect
        from celery import current_app

        current_app.conf.update(broker_url=env["REDIS_URL"], task_always_eager=False)
        start = time.perf_counter()
        ids = [
            referral_create(
                actor=actor, encounter=encounter, specialty="nephrology", urgency="urgent", reason=f"Letter {n}"
            ).pk
            for n in range(args.letters)
        ]
        deadline = time.monotonic() + 300
        while Referral.objects.filter(pk__in=ids, pdf_status="ready").count() < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit("letters not ready after 300 s")
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        redis.terminate()
        shutil.rmtree(WORK, ignore_errors=True)
    rate = args.letters / elapsed
    print(
        f"two workers: {args.letters} letters in {elapsed:.1f} s = {rate:.1f} letters/s   "
        f"in-process: {1 / letter:.1f} letters/s   ratio two workers/in-process: {rate * letter:.2f}x"
    )


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
