"""PDF rendering: a letter against WeasyPrint's floor in-process, and letters per second through two workers.

    python bench/pdf.py [--letters 40] [--seconds 5] [--skip-workers] [--database-dir /dev/shm]

Part 1 renders, in this process, the referral letter in both languages (Russian on form 057/у, and
English) as the workers do (html_to_pdf with the app's stylesheets and fonts), against WeasyPrint's
floor: a one-paragraph page with none of the app's stylesheets or fonts, rendered with WeasyPrint's
defaults. Floor and letter samples alternate, so a busy machine slows both alike; the ratio is of the
medians, of wall time and of this process's CPU time. For orientation it also times the one-paragraph
page with the app's stylesheets (what the cached stylesheets and fonts leave of the app's fixed cost), and the
Russian letter's text as a single paragraph with the app's stylesheets (what its words alone cost, without
the boxes that lay them out), and its lines as the letter breaks them, in one paragraph with the app's
stylesheets (what its content costs laid out as plainly as text can be).
Part 2 starts its own Redis on loopback and two `celery worker` processes (concurrency 1 each) on a
throwaway SQLite database; once both answer and have rendered warm-up letters, it creates N referrals
and times until every letter is ready. It prints letters per second against the in-process rate of
part 1 (the speed-up of two workers), and the workers' CPU time per letter (from /proc) with the rate
two workers would reach with a core each to themselves.
"""

import argparse
import atexit
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# --database-dir DIR (read before anything else parses the arguments): where the throwaway SQLite file and the
# PDFs go. Each letter commits a few writes; on a busy disk their fsync can cost more than the render.
_DIR = sys.argv[sys.argv.index("--database-dir") + 1] if "--database-dir" in sys.argv else None
WORK = Path(tempfile.mkdtemp(prefix="bench-pdf-", dir=_DIR))
atexit.register(shutil.rmtree, WORK, True)
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


def alternating(baseline, function, seconds):
    """Median times of the baseline and the function, sampled in turn for about `seconds`: wall time, and this
    process's CPU time (which a busy machine disturbs less)."""
    base, samples, base_cpu, samples_cpu = [], [], [], []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start, start_cpu = time.perf_counter(), time.process_time()
        baseline()
        middle, middle_cpu = time.perf_counter(), time.process_time()
        function()
        base.append(middle - start)
        samples.append(time.perf_counter() - middle)
        base_cpu.append(middle_cpu - start_cpu)
        samples_cpu.append(time.process_time() - middle_cpu)
    median = statistics.median
    return median(base), median(samples), median(base_cpu), median(samples_cpu)


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
    parser.add_argument("--database-dir", help="where the throwaway SQLite file and the PDFs go (e.g. /dev/shm)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from django.db import transaction
    from django.template.loader import render_to_string
    from django.utils import timezone, translation
    from weasyprint import HTML

    from referrals import documents
    from referrals.models import Referral
    from referrals.pdf import html_to_pdf, render_pdf
    from referrals.services import LETTER_TEMPLATES, referral_create

    actor, encounter = sample_case()
    workup = encounter.workups.prefetch_related("items").first()
    letters = {}
    for language in ("ru", "en"):
        # A referral as the service makes it (its number, ICD-10 code and diagnosis filled in from the workup),
        # rendered as the workers render it: in its language and the clinic's time zone. It is made in a
        # transaction that is rolled back, so nothing is handed to Celery before part 2 points it at Redis.
        with transaction.atomic():
            referral = referral_create(
                actor=actor,
                encounter=encounter,
                specialty="nephrology",
                urgency="urgent",
                reason="Exclude pyelonephritis",
                question="Pyelonephritis or a stone?",
                language=language,
            )
            zone = documents.clinic_zone(referral.clinic)
            with translation.override(language), timezone.override(zone):
                context = documents.letter_context(referral, workup=workup)
            transaction.set_rollback(True)

        def letter(template=LETTER_TEMPLATES[language], context=context, language=language, zone=zone):
            with translation.override(language), timezone.override(zone):
                return render_pdf(template, context)

        letters[f"letter ({language})"] = letter
        if language == "ru":
            ru_context = context
    app_page = (
        '<html><head><link rel="stylesheet" href="/static/pdf/document.css"></head>'
        "<body><p>One paragraph.</p></body></html>"
    )
    letters["one paragraph, app's CSS"] = lambda: html_to_pdf(app_page)
    # What WeasyPrint needs for the Russian letter's words alone: its text as one paragraph, with the app's
    # stylesheets (page, fonts, running headers). Everything the letter costs beyond this is its boxes.
    with translation.override("ru"), timezone.override(zone):
        page = render_to_string(LETTER_TEMPLATES["ru"], ru_context)
    head, body = page.split("<body>", 1)
    words = f"{head}<body><p>{' '.join(re.sub(r'<[^>]+>', ' ', body).split())}</p></body></html>"
    letters["its text as one paragraph"] = lambda: html_to_pdf(words)
    # Its lines as the letter breaks them (each block, row and item a line of its own, a row's cells side by side) in
    # one paragraph with the app's stylesheets: what its content costs laid out as plainly as text can be. The lines
    # are kept by `white-space: pre-line`, the cheapest way WeasyPrint has (a <br> per line costs 1.6 times as much,
    # a paragraph per line 1.2 times).
    lines = re.sub(r"<(?:/td|/th)\b[^>]*>", " · ", body)
    lines = re.sub(r"<(?:br|/p|/div|/tr|/li|/h[1-6])\b[^>]*>", "\n", lines)
    lines = [" ".join(line.split()) for line in re.sub(r"<[^>]+>", " ", lines).splitlines()]
    text = "\n".join(line for line in lines if line)
    plain = f'{head}<body><p style="white-space: pre-line">{text}</p></body></html>'
    letters["its lines as one paragraph"] = lambda: html_to_pdf(plain)
    floor = lambda: HTML(string="<html><body><p>One paragraph.</p></body></html>").write_pdf()  # noqa: E731
    for function in (floor, *letters.values()):  # warm up: fonts, templates, parsed stylesheets
        function()
    rates = {}
    for name, function in letters.items():
        floor_time, time_taken, floor_cpu, cpu = alternating(floor, function, args.seconds)
        rates[name] = 1 / time_taken
        print(
            f"{name:26s} {time_taken * 1000:7.1f} ms   WeasyPrint floor: {floor_time * 1000:6.1f} ms   "
            f"ratio to the floor: {time_taken / floor_time:.2f}x   (CPU: {cpu * 1000:.1f} / {floor_cpu * 1000:.1f} ms, "
            f"{cpu / floor_cpu:.2f}x)"
        )
    letter = 1 / rates["letter (ru)"]
    if args.skip_workers:
        return

    from tests.processes import RedisServer

    redis = RedisServer(WORK)
    redis.start()  # returns once Redis answers PING: on a busy machine it can take a while to listen
    env = {**os.environ, "REDIS_URL": redis.url, "DJANGO_DEBUG": "1"}
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
        from celery import current_app

        current_app.conf.update(broker_url=env["REDIS_URL"], task_always_eager=False)
        deadline = time.monotonic() + 120
        while len(current_app.control.ping(timeout=1)) < len(workers):  # both workers up
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start within 120 s")

        def letters(count, label):
            """Ask for `count` letters and wait until every one is ready; how long the asking took."""
            asking = time.perf_counter()
            ids = [
                referral_create(
                    actor=actor, encounter=encounter, specialty="nephrology", urgency="urgent", reason=f"{label} {n}"
                ).pk
                for n in range(count)
            ]
            asking = time.perf_counter() - asking
            deadline = time.monotonic() + 300
            while Referral.objects.filter(pk__in=ids, pdf_status="ready").count() < len(ids):
                if time.monotonic() > deadline:
                    raise SystemExit("letters not ready after 300 s")
                time.sleep(0.05)
            return asking

        letters(4, "Warm-up")  # each worker parses the stylesheets and loads the fonts once
        pids = [pid for worker in workers for pid in _process_tree(worker.pid)]
        cpu_before = {pid: _cpu_seconds(pid) for pid in pids}
        start = time.perf_counter()
        asking = letters(args.letters, "Letter")
        elapsed = time.perf_counter() - start
        used = {pid: _cpu_seconds(pid) - before for pid, before in cpu_before.items()}
        worker_cpu = sum(used.values())
        # The prefork parent takes the message from Redis and hands it to its pool child, which renders.
        parents_cpu = sum(used[worker.pid] for worker in workers)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        redis.stop()
    rate = args.letters / elapsed
    print(
        f"two workers: {args.letters} letters in {elapsed:.1f} s (asked for in {asking:.1f} s) = "
        f"{rate:.1f} letters/s   "
        f"in-process (Russian letter): {1 / letter:.1f} letters/s   ratio two workers/in-process: {rate * letter:.2f}x"
    )
    # What a letter costs the workers in CPU (rendering, the database, the broker), and so how many two
    # workers would make with a core each to themselves: a figure a busy machine disturbs less than the rate.
    per_letter = worker_cpu / args.letters
    print(
        f"workers' CPU per letter: {per_letter * 1000:.1f} ms (the parents {parents_cpu / args.letters * 1000:.1f} ms, "
        f"the rendering children {(worker_cpu - parents_cpu) / args.letters * 1000:.1f} ms)   "
        f"two workers with a free core each: {2 / per_letter:.1f} letters/s"
    )


def _process_tree(pid: int) -> list[int]:
    """The process and its descendants (a prefork worker renders in its pool's child process)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(descendant for child in children for descendant in _process_tree(int(child)))]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc, in clock ticks); 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
