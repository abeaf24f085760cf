"""Real services for tests that need them: a Redis server we can stop and start, gunicorn, Celery workers.

Everything listens on 127.0.0.1 at free ports and is stopped by the fixture that started it.
"""

from __future__ import annotations

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


class Stack:
    """gunicorn and Celery workers (the first one also running beat) against the test database."""

    def __init__(self, *, directory: Path, database_url: str, redis: RedisServer, workers: int = 2, extra_env=None):
        self.directory = directory
        self.redis = redis
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.media = directory / "media"
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
            **(extra_env or {}),
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.workers: list[subprocess.Popen] = []
        self.web = None
        self.worker_count = workers
        self.logs = []

    def _spawn(self, name, args):
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - held open for the process's life
        self.logs.append(log)
        return subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self):
        self.web = self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
        )
        for number in range(1, self.worker_count + 1):
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
                f"w{number}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "info",
            ]
            if number == 1:
                args += ["--beat", "--schedule", str(self.directory / "beat-schedule")]
            self.workers.append(self._spawn(f"worker{number}", args))
        wait_for(self._web_answers, timeout=30, what="gunicorn")
        return self

    def _web_answers(self):
        try:
            return requests.get(f"{self.url}/api/v1/ping/", timeout=1).status_code == 401
        except requests.RequestException:
            return False

    def log(self, name) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        for process in [self.web, *self.workers]:
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [self.web, *self.workers]:
            if process:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        for log in self.logs:
            log.close()
