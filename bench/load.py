"""Load: concurrent GPs over a mixed read/write journey, through gunicorn with PostgreSQL, Redis and Celery workers.

    python bench/load.py [--clients 20] [--seconds 60] [--step-seconds 20] [--rates 10,20,30] [--no-step-up]

Starts its own throwaway PostgreSQL and Redis on loopback (or uses DATABASE_URL / REDIS_URL when set: the
database must be empty or this app's), migrates, collects the static files, and seeds 4 clinics of 5 GPs with
500 patients each. Then it starts the app as it is deployed (tests.processes.Stack): gunicorn with 2 workers
of 4 threads (as scripts/serve), two `celery worker` processes (concurrency 1) and `celery beat`.

Each client is one GP. It logs in for an API token (POST /api/v1/auth/token/), then repeats the journey:
search patients (POST /api/v1/patients/search/ with a 3-letter prefix), open one, create an encounter with
findings, generate its workup (the engine's evaluation, stored), accept the specialist referral, read the
worklist, request the referral letter (rendered by the workers) and ask for its PDF once (409 while it is
rendered counts as an answer, not an error).

Phase 1: every client runs the journey back to back for --seconds (closed loop). Reported: requests/s,
errors, and p50/p95/p99 overall and per step. Phase 2 (step-up): the clients pace themselves to a total rate
(requests/s), --step-seconds per level, from a quarter of phase 1's throughput upwards, until p95 reaches
200 ms, errors appear or the rate is not reached; the answer is the highest level whose p95 stayed under.
At the end, how many letters were requested and rendered. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import PostgresCluster, RedisServer, Stack, wait_for  # noqa: E402

STEPS = ["login", "search", "patient", "encounter", "workup", "decide", "worklist", "letter", "pdf"]
P95_GOAL = 0.200
CLINICS, GPS_PER_CLINIC, PATIENTS_PER_CLINIC = 4, 5, 500
FAMILY = [
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Васильев", "Васильева"),
    ("Петров", "Петрова"),
    ("Соколов", "Соколова"),
    ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"),
    ("Лебедев", "Лебедева"),
    ("Семёнов", "Семёнова"),
    ("Егоров", "Егорова"),
]
GIVEN = {"male": ["Александр", "Сергей", "Дмитрий", "Андрей", "Алексей"], "female": ["Мария", "Елена", "Ольга"]}
URINARY = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}
RED_FLAGS: list[str] = []  # every red flag of the knowledge base, answered "absent" in each encounter


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


# -- the services and the data ----------------------------------------------------------------------------


def setup_django(env: dict) -> None:
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "MEDIA_ROOT")})
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "0", "DJANGO_LOG_LEVEL": "WARNING"})
    import django

    django.setup()


def seed(password: str, rng: random.Random) -> tuple[list[str], dict]:
    """The clinics, their GPs (usernames) and patients; {username: [patient ids of their clinic]}."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from clinic.models import Clinic, Membership, Patient
    from clinic.text import search_key

    hashed = make_password(password)  # once: hashing is deliberately slow
    usernames, patients_of = [], {}
    for number in range(1, CLINICS + 1):
        clinic = Clinic.objects.create(name=f"Поликлиника № {number} (нагрузочный тест)")
        rows = []
        for _ in range(PATIENTS_PER_CLINIC):
            sex = rng.choice(["male", "female"])
            family = rng.choice(FAMILY)[0 if sex == "male" else 1]
            given = rng.choice(GIVEN[sex])
            rows.append(
                Patient(
                    clinic=clinic,
                    family_name=family,
                    given_name=given,
                    birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(60 * 365)),
                    sex=sex,
                    name_search=search_key(f"{family} {given}"),
                )
            )
        ids = [patient.pk for patient in Patient.objects.bulk_create(rows)]
        for gp in range(1, GPS_PER_CLINIC + 1):
            user = get_user_model().objects.create(username=f"load_gp_{number}_{gp}", password=hashed)
            Membership.objects.create(user=user, clinic=clinic, full_name=f"Врач {number}-{gp}")
            usernames.append(user.username)
            patients_of[user.username] = ids
    return usernames, patients_of


def letters_summary() -> dict:
    from django.db.models import Count

    from referrals.models import Referral

    return dict(Referral.objects.values_list("pdf_status").annotate(n=Count("id")).order_by())


class ExternalRedis:
    """A Redis given by REDIS_URL: used, never started or stopped here."""

    def __init__(self, url: str):
        self.url = url

    def stop(self):
        pass


# -- one GP -------------------------------------------------------------------------------------------------


class Recorder:
    """Every request's step, latency and outcome, from all clients (appends are atomic under the GIL)."""

    def __init__(self):
        self.samples: list[tuple[str, float, bool]] = []
        self.errors: dict[str, list[str]] = defaultdict(list)

    def reset(self):
        self.samples, self.errors = [], defaultdict(list)


class Client:
    def __init__(self, *, base: str, username: str, password: str, patients: list[int], rng: random.Random):
        self.base, self.username, self.password = base, username, password
        self.patients, self.rng = patients, rng
        self.session = requests.Session()
        self.recorder: Recorder | None = None
        self.pace: float | None = None  # seconds between requests of this client, or None: back to back
        self.next_at = 0.0
        self.stop = threading.Event()  # the phase is over: the journey ends without further requests

    def call(self, step: str, method: str, path: str, *, expect=(200,), **kwargs):
        if self.pace:
            now = time.monotonic()
            self.next_at = max(self.next_at + self.pace, now - self.pace)
            if self.next_at > now:
                self.stop.wait(self.next_at - now)
        if self.stop.is_set():
            return None
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.base + path, timeout=30, **kwargs)
            ok = response.status_code in expect
            problem = "" if ok else f"{response.status_code} {response.text[:120]}"
        except requests.RequestException as error:
            response, ok, problem = None, False, type(error).__name__
        elapsed = time.perf_counter() - started
        if self.recorder is not None:
            self.recorder.samples.append((step, elapsed, ok))
            if not ok:
                self.recorder.errors[step].append(problem)
        return response if ok else None

    def login(self) -> bool:
        answer = self.call(
            "login", "POST", "/api/v1/auth/token/", json={"username": self.username, "password": self.password}
        )
        if answer is None:
            return False
        self.session.headers["Authorization"] = f"Token {answer.json()['token']}"
        return True

    def journey(self) -> None:
        rng = self.rng
        family = rng.choice(FAMILY)[rng.randrange(2)]
        found = self.call("search", "POST", "/api/v1/patients/search/", json={"search": family[:3].lower()})
        results = found.json()["results"] if found is not None else []
        patient_id = rng.choice(results)["id"] if results else rng.choice(self.patients)
        patient = self.call("patient", "GET", f"/api/v1/patients/{patient_id}/")
        if patient is None:
            return
        findings = {**URINARY, **{code: False for code in RED_FLAGS}}
        body = {
            "patient": patient_id,
            "visit_date": date.today().isoformat(),
            "chief_complaint": "Онемение в пояснице",
            "duration_days": rng.randrange(3, 30),
            "temperature_c": 36.7,
            "findings": findings,
            "notes": {"location": "Поясница, с двух сторон"},
        }
        if patient.json()["sex"] == "female":
            body["pregnant"] = False
        encounter = self.call("encounter", "POST", "/api/v1/encounters/", json=body, expect=(201,))
        if encounter is None:
            return
        encounter_id = encounter.json()["id"]
        workup = self.call("workup", "POST", f"/api/v1/encounters/{encounter_id}/workup/", expect=(201,))
        referrals = workup.json()["referrals"] if workup is not None else []
        if not referrals:
            return
        recommendation = referrals[0]["id"]
        self.call("decide", "PATCH", f"/api/v1/workup-referrals/{recommendation}/", json={"decision": "accepted"})
        self.call("worklist", "GET", "/api/v1/worklist/")
        asked = {"recommendation": recommendation}
        letter = self.call("letter", "POST", "/api/v1/referrals/", json=asked, expect=(201,))
        if letter is not None:
            self.call("pdf", "GET", f"/api/v1/referrals/{letter.json()['id']}/pdf/", expect=(200, 409))


def run_phase(clients: list[Client], recorder: Recorder, *, seconds: float, rate: float | None) -> float:
    """All clients do journeys until the time is up; returns the measured duration."""
    recorder.reset()
    stop = threading.Event()
    for client in clients:
        client.stop = stop
        client.recorder = recorder
        client.pace = len(clients) / rate if rate else None
        # Spread the clients' first requests over one interval (the first call adds one interval back).
        client.next_at = time.monotonic() + (client.rng.random() - 1) * (client.pace or 0)

    def loop(client):
        while not stop.is_set():
            client.journey()

    threads = [threading.Thread(target=loop, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return seconds


def summary(recorder: Recorder, duration: float) -> dict:
    by_step = defaultdict(list)
    for step, elapsed, _ok in recorder.samples:
        by_step[step].append(elapsed)
    everything = [elapsed for _step, elapsed, _ok in recorder.samples]
    errors = sum(len(problems) for problems in recorder.errors.values())

    def figures(values):
        return {
            "n": len(values),
            "p50": percentile(values, 0.50),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
            "mean": statistics.fmean(values) if values else float("nan"),
        }

    return {
        "duration": duration,
        "requests": len(everything),
        "rps": len(everything) / duration if duration else 0.0,
        "errors": errors,
        "overall": figures(everything),
        "steps": {step: figures(by_step[step]) for step in STEPS if by_step[step]},
        "problems": {step: problems[:3] for step, problems in recorder.errors.items()},
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def print_table(result: dict) -> None:
    print(
        f"  {result['requests']} requests in {result['duration']:.1f} s = {result['rps']:.1f} requests/s, "
        f"{result['errors']} errors"
    )
    print("  | step | requests | p50 ms | p95 ms | p99 ms |")
    print("  | --- | --- | --- | --- | --- |")
    for step, figures in [*result["steps"].items(), ("overall", result["overall"])]:
        print(f"  | {step} | {figures['n']} | {ms(figures['p50'])} | {ms(figures['p95'])} | {ms(figures['p99'])} |")
    for step, problems in result["problems"].items():
        print(f"  errors in {step}: {problems}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="length of the closed-loop phase")
    parser.add_argument("--step-seconds", type=float, default=20, help="length of each step-up level")
    parser.add_argument("--rates", default="", help="step-up levels in requests/s (default: from phase 1)")
    parser.add_argument("--no-step-up", action="store_true")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    work.chmod(0o755)
    cluster = redis = stack = None
    try:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            # Durable like production (fsync on): every write commits to disk.
            cluster = PostgresCluster(work).start(fsync="on", full_page_writes="on")
            database_url = cluster.create_database("backnumb_load")
        if os.environ.get("REDIS_URL"):
            redis = ExternalRedis(os.environ["REDIS_URL"])
        else:
            redis = RedisServer(work)
            redis.start()
        redis_url = redis.url
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40),
            "DJANGO_DEBUG": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(work / "media"),
            "STATIC_ROOT": str(work / "static"),
        }
        for command in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)
        os.environ.update({"STATIC_ROOT": env["STATIC_ROOT"]})
        setup_django(env)
        from workups.engine import get_knowledge_base

        RED_FLAGS.extend(get_knowledge_base().red_flags)
        password = secrets.token_urlsafe(16)
        usernames, patients_of = seed(password, rng)

        stack = Stack(
            directory=work,
            database_url=database_url,
            redis=redis,
            workers=2,
            beat="separate",
            web_args=("--workers", "2", "--threads", "4"),
            extra_env={key: env[key] for key in ("DJANGO_SECRET_KEY", "DJANGO_LOG_LEVEL", "STATIC_ROOT")}
            | {
                "DATABASE_CONN_MAX_AGE": "60",
                "DOCUMENT_SWEEP_SECONDS": "30",
                "DOCUMENT_REQUEUE_SECONDS": "300",
                "CELERY_TASK_TIME_LIMIT": "120",
                "BEAT_LOCK_SECONDS": "30",
            },
        ).start()

        clients = [
            Client(
                base=stack.url,
                username=username,
                password=password,
                patients=patients_of[username],
                rng=random.Random(rng.random()),
            )
            for username in usernames[: args.clients]
        ]
        if len(clients) < args.clients:
            sys.exit(f"only {len(clients)} GPs are seeded")
        load = os.getloadavg()
        print(f"{date.today()}: {args.clients} clients, {os.cpu_count()} cores, load average {load[0]:.2f} at start")

        recorder = Recorder()
        for client in clients:
            client.recorder = recorder
        logins = [threading.Thread(target=client.login) for client in clients]
        for thread in logins:
            thread.start()
        for thread in logins:
            thread.join()
        if recorder.errors:
            sys.exit(f"some clients could not log in: {dict(recorder.errors)}")
        login = summary(recorder, 1.0)["overall"]
        print(
            f"\nLogin, every client at once (password hashing included): p50 {ms(login['p50'])} ms, "
            f"p95 {ms(login['p95'])} ms"
        )

        # Warm-up: connections, caches and the first letters; not measured.
        run_phase(clients, recorder, seconds=min(5.0, args.seconds / 4), rate=None)
        print(f"\nPhase 1: {args.clients} clients back to back for {args.seconds:.0f} s")
        closed = summary(recorder, run_phase(clients, recorder, seconds=args.seconds, rate=None))
        print_table(closed)

        if not args.no_step_up:
            if args.rates:
                rates = [float(rate) for rate in args.rates.split(",")]
            else:
                rates = [round(closed["rps"] * fraction, 1) for fraction in (0.25, 0.5, 0.65, 0.8, 0.9, 1.0, 1.1)]
            print(f"\nPhase 2: step-up, {args.step_seconds:.0f} s per level, until p95 reaches {ms(P95_GOAL)} ms")
            print("  | target rps | achieved rps | p50 ms | p95 ms | p99 ms | errors |")
            print("  | --- | --- | --- | --- | --- | --- |")
            best = None
            for rate in rates:
                level = summary(recorder, run_phase(clients, recorder, seconds=args.step_seconds, rate=rate))
                overall = level["overall"]
                print(
                    f"  | {rate:g} | {level['rps']:.1f} | {ms(overall['p50'])} | {ms(overall['p95'])} | "
                    f"{ms(overall['p99'])} | {level['errors']} |"
                )
                held = overall["p95"] < P95_GOAL and not level["errors"] and level["rps"] >= 0.9 * rate
                if not held:
                    break
                best = level["rps"]
            print(f"  highest rate with p95 under {ms(P95_GOAL)} ms: {best:.1f} requests/s" if best else "  none")

        # The letters the journeys asked for: let the workers finish (bounded), then count.
        try:
            wait_for(stack.tasks_settled, timeout=300, interval=1, what="the workers to finish the letters")
        except AssertionError as error:
            print(f"\n{error}")
        print(f"\nLetters by PDF status at the end: {letters_summary()}")
    finally:
        if stack is not None:
            stack.stop()
        if redis is not None:
            redis.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
