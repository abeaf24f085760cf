"""Real services for tests that need them: a Redis server we can stop and start, gunicorn, Celery workers.

Everything listens on 127.0.0.1 at free ports and is stopped by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what="redis")

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free loopback port, as scripts/test starts one (initdb and pg_ctl, as
    the postgres user when run as root, since PostgreSQL refuses to run as root); removed by stop()."""

    def __init__(self, directory: Path):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bins[-1]
        self.directory = directory / "pg"
        self.port = free_port()

    def _as_postgres(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self, **settings):
        self.directory.mkdir(parents=True)
        self.directory.chmod(0o700)
        if os.geteuid() == 0:
            self.directory.parent.chmod(0o755)
            shutil.chown(self.directory, "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.directory), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        subprocess.run(self._as_postgres([*initdb, "--locale=C.UTF-8"]), check=True, stdout=subprocess.DEVNULL)
        options = {"listen_addresses": "127.0.0.1", "fsync": "off", "full_page_writes": "off", **settings}
        flags = f"-p {self.port} -k {self.directory} " + " ".join(f"-c {k}={v}" for k, v in options.items())
        pg_ctl = [str(self.bin / "pg_ctl"), "-D", str(self.directory), "-l", str(self.directory / "log"), "-w"]
        subprocess.run(self._as_postgres([*pg_ctl, "-o", flags, "start"]), check=True, stdout=subprocess.DEVNULL)
        return self

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        pg_ctl = [str(self.bin / "pg_ctl"), "-D", str(self.directory), "-m", "immediate", "stop"]
        subprocess.run(self._as_postgres(pg_ctl), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.directory, ignore_errors=True)


class Stack:
    """gunicorn, Celery workers and Celery beat against the test database, each in a process group of its own.

    `beat`: None (the tests drive the sweep with `sweep()`), "embedded" (the first worker runs it, as
    `worker --beat`) or "separate" (its own `celery beat` process). `render_pause`: the workers load
    tests.worker_pause, and the first render to claim its document waits mid-render (see that module).
    """

    def __init__(
        self,
        *,
        directory: Path,
        database_url: str,
        redis: RedisServer,
        workers: int = 2,
        web: bool = True,
        beat: str | None = None,
        render_pause: bool = False,
        web_args: tuple[str, ...] = ("--workers", "2"),
        extra_env=None,
    ):
        self.directory = directory
        self.redis = redis
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.media = directory / "media"
        self.pause_dir = directory / "render-pause"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "MEDIA_ROOT": str(self.media),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "test-secret-key-for-the-stack"),
            "DATABASE_CONN_MAX_AGE": "0",
            "DOCUMENT_SWEEP_SECONDS": "1",
            "DOCUMENT_REQUEUE_SECONDS": "3",
            "CELERY_TASK_TIME_LIMIT": "60",
            "BEAT_LOCK_SECONDS": "3",
            **(extra_env or {}),
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.env.pop("TEST_RENDER_PAUSE_DIR", None)
        self.render_pause = render_pause
        if render_pause:
            self.pause_dir.mkdir()
            (self.pause_dir / "pause").touch()
            self.env["TEST_RENDER_PAUSE_DIR"] = str(self.pause_dir)
        self.worker_count = workers
        self.with_web = web
        self.web_args = list(web_args)
        self.beat = beat
        self.web = None
        self.workers: list[subprocess.Popen] = []
        self.beats: list[subprocess.Popen] = []
        self.processes: list[subprocess.Popen] = []
        self.logs = []

    @property
    def time_limit(self) -> int:
        return int(self.env["CELERY_TASK_TIME_LIMIT"])

    def _spawn(self, name, args):
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - held open for the process's life
        self.logs.append(log)
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def start(self):
        if self.with_web:
            self.web = self._spawn(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    *self.web_args,
                    "--log-level",
                    "warning",
                ],
            )
        for number in range(1, self.worker_count + 1):
            self.start_worker(f"worker{number}", beat=self.beat == "embedded" and number == 1)
        if self.beat == "separate":
            self.start_beat("beat")
        if self.with_web:
            wait_for(self._web_answers, timeout=30, what="gunicorn")
        return self

    def start_worker(self, name: str, *, beat: bool = False) -> subprocess.Popen:
        args = [
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
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "info",
        ]
        if self.render_pause:
            args += ["--include", "tests.worker_pause"]
        if beat:
            args += ["--beat", "--schedule", str(self.directory / f"{name}-beat-schedule")]
        worker = self._spawn(name, args)
        self.workers.append(worker)
        return worker

    def start_beat(self, name: str) -> subprocess.Popen:
        args = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "info"]
        beat = self._spawn(name, [*args, "--schedule", str(self.directory / f"{name}-schedule")])
        self.beats.append(beat)
        return beat

    def _web_answers(self):
        try:
            return requests.get(f"{self.url}/api/v1/ping/", timeout=1).status_code == 401
        except requests.RequestException:
            return False

    def log(self, name) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sweep(self) -> int:
        """Run the documents sweep once, now (as beat would), in a process of the stack: how many it enqueued."""
        code = "import django; django.setup(); from referrals.services import documents_sweep as s; print(s())"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    def redis_client(self):
        import redis

        return redis.Redis.from_url(self.redis.url, decode_responses=True)

    def beat_lock_holder(self) -> str | None:
        """Who holds the scheduler lock: "host:pid:…", or None."""
        from config.celery import BEAT_LOCK_KEY

        return self.redis_client().get(BEAT_LOCK_KEY)

    def tasks_settled(self) -> bool:
        """Nothing waits in the queue and nothing delivered is still unacknowledged (being run)."""
        client = self.redis_client()
        return client.llen("celery") == 0 and client.hlen("unacked") == 0

    def stop(self, *, grace: float = 20):
        """Stop every process gracefully, so that each ends through its own exit path and coverage (parallel,
        `sigterm`, `patch = ["fork", "_exit"]` in pyproject.toml) writes its data: pool children and an embedded
        beat too, whose lines would otherwise never count.

        First SIGTERM to each leader only (gunicorn's master, a Celery worker's main process, a separate beat):
        that is their own graceful stop, in which they stop their children (gunicorn's workers, the prefork
        pool, the embedded beat) in order. Signalling the whole group at once would kill the children under
        their parent's feet. Then whatever is left in each group (the orphans of a leader a test killed, a
        leader that did not stop within `grace` seconds): SIGTERM, a short wait, and SIGKILL."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        groups = [process.pid for process in self.processes]
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(group_alive(group) for group in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for process in self.processes:
            process.wait(timeout=5)
        for log in self.logs:
            log.close()


def group_alive(group: int) -> bool:
    """Whether any process of the process group is still running (zombies nobody reaped yet don't count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def process_gone(pid: int) -> bool:
    """Whether a process has exited (a zombie nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")
