"""Latency of the evaluate endpoint against a trivial authenticated endpoint, same server.

    python bench/endpoint.py [--requests 400]

Starts gunicorn on a free loopback port (one sync worker, so requests do not
compete), with the database of DATABASE_URL (a throwaway SQLite file otherwise),
creates a benchmark GP, then alternates requests to GET /api/v1/ping/ (the
baseline: token authentication and a JSON answer) and POST
/api/v1/workup/evaluate/ with the vignette cases, in blocks of 20. Prints the
median and p95 of each, and their ratios, and the worker's CPU time per request
of each (read from /proc between blocks), which a busy machine disturbs less
than latency. Only 127.0.0.1 is contacted; the loop is bounded.
"""

import argparse
import atexit
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Requests of one kind in a row, between two readings of the worker's CPU time.
BLOCK = 20


def worker_pid(master: int) -> int:
    """gunicorn's one worker process (the master only supervises)."""
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests to each endpoint")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40),
        "DJANGO_DEBUG": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    work = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    atexit.register(shutil.rmtree, work, True)  # also when setting up fails
    env.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [python, "manage.py", "seed_demo", "--clinic", "Benchmark clinic", "--username", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    token = next(line.split(": ", 1)[1] for line in seeded.splitlines() if line.startswith("api token"))

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from bench.engine import cases  # noqa: E402  (sets up Django for the knowledge base)
    from workups.engine import get_knowledge_base  # noqa: E402

    bodies = [json.dumps(body) for body in cases(get_knowledge_base())]
    port = free_port()
    server = subprocess.Popen(
        [
            python,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

        def call(method, path, body=None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            start = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            connection.close()
            if response.status != 200:
                raise SystemExit(f"{method} {path} answered {response.status}")
            return elapsed

        for _ in range(100):
            try:
                call("GET", "/api/v1/ping/")
                break
            except (ConnectionRefusedError, http.client.HTTPException, OSError):
                time.sleep(0.1)
        for index in range(20):  # warm up both paths
            call("GET", "/api/v1/ping/")
            call("POST", "/api/v1/workup/evaluate/", bodies[index % len(bodies)])
        worker = worker_pid(server.pid)
        ping, workup = [], []
        cpu = {"ping": 0.0, "evaluate": 0.0}
        for start in range(0, args.requests, BLOCK):
            indexes = range(start, min(start + BLOCK, args.requests))
            before = cpu_seconds(worker)
            ping += [call("GET", "/api/v1/ping/") for _ in indexes]
            middle = cpu_seconds(worker)
            workup += [call("POST", "/api/v1/workup/evaluate/", bodies[index % len(bodies)]) for index in indexes]
            cpu["ping"] += middle - before
            cpu["evaluate"] += cpu_seconds(worker) - middle
    finally:
        server.terminate()
        server.wait(timeout=10)

    def ms(value):
        return f"{value * 1000:7.2f} ms"

    rows = [("ping (baseline)", ping), ("workup/evaluate", workup)]
    database = env["DATABASE_URL"].split("@")[-1]
    print(f"{args.requests} requests each, one gunicorn sync worker, database {database}")
    for name, values in rows:
        print(f"{name:18} median {ms(statistics.median(values))}   p95 {ms(percentile(values, 0.95))}")
    print(
        f"ratio evaluate/ping: median {statistics.median(workup) / statistics.median(ping):.2f}x   "
        f"p95 {percentile(workup, 0.95) / percentile(ping, 0.95):.2f}x"
    )
    # The server's CPU per request hardly depends on what else the machine is running; latency does.
    print(
        f"server CPU per request: ping {cpu['ping'] / len(ping) * 1000:.2f} ms   "
        f"evaluate {cpu['evaluate'] / len(workup) * 1000:.2f} ms   ratio {cpu['evaluate'] / cpu['ping']:.2f}x"
    )


if __name__ == "__main__":
    main()
