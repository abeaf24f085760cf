"""The Celery app, and a beat scheduler of which only one instance sends tasks at a time.

Any number of `celery beat` processes (or workers started with `--beat`) may run; each asks Redis for one lock
before it sends anything, renews it every third of BEAT_LOCK_SECONDS and stands by while another holds it, so
when the holder dies the lock lapses and a standby takes over within BEAT_LOCK_SECONDS. A beat embedded in a
worker also stops when that worker dies (it would otherwise live on as an orphan, holding the lock).

Workers and beat log through the settings' LOGGING, so their lines are redacted as the web's are (config.reporting).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid

import redis
from celery import Celery, signals
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

BEAT_LOCK_KEY = "backnumb:beat-lock"
# Take the lock if it is free or already ours, and (re)set its lifetime; 1 when held, 0 when another has it.
_HOLD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@signals.setup_logging.connect
def _log_as_the_web_does(**kwargs) -> None:
    """Workers and beat log through the settings' LOGGING (config.reporting's formatter), not Celery's own
    handlers: no exception's message and no task's return value in a worker's log, as in the web's. Connecting
    this signal stops Celery from replacing the root logger's handlers; the level is DJANGO_LOG_LEVEL's."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# The worker that started an embedded beat (`worker --beat`), so the beat can tell when it is orphaned.
_embedding_worker: int | None = None


@signals.beat_embedded_init.connect
def _remember_embedding_worker(**kwargs) -> None:
    global _embedding_worker
    _embedding_worker = os.getppid()


class SingleBeatScheduler(PersistentScheduler):
    """Celery's persistent scheduler, sending tasks only while it holds the beat lock in Redis."""

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        self.lock_seconds = settings.BEAT_LOCK_SECONDS
        # Who holds the lock, for an operator (`redis-cli GET backnumb:beat-lock`) and the tests.
        self.lock_token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = None
        self._holding = False
        self._announced = None
        super().__init__(*args, **kwargs)

    def _client(self):
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def _hold(self) -> bool:
        """Whether this scheduler holds the lock now (taking or renewing it)."""
        if not self.app.conf.broker_url.startswith(("redis://", "rediss://", "unix://")):
            return True  # no Redis, no other process to share a schedule with
        try:
            held = bool(self._client().eval(_HOLD, 1, BEAT_LOCK_KEY, self.lock_token, int(self.lock_seconds * 1000)))
        except redis.RedisError as error:
            # Nothing can be sent without Redis anyway; the lock (ours or not) is decided when it is back.
            logger.warning("beat: cannot reach Redis for the scheduler lock (%s)", type(error).__name__)
            held = False
        if held != self._announced:
            if held:
                logger.info("beat: holding the scheduler lock as %s; sending tasks", self.lock_token)
            else:
                logger.info("beat: another scheduler holds the lock; standing by as %s", self.lock_token)
            self._announced = held
        self._holding = held
        return held

    def tick(self, *args, **kwargs):
        if _embedding_worker is not None and os.getppid() != _embedding_worker:
            logger.warning("beat: the worker that started this beat is gone; stopping")
            raise SystemExit(0)
        renew = self.lock_seconds / 3
        if not self._hold():
            return renew
        return min(super().tick(*args, **kwargs), renew)

    def close(self):
        try:
            super().close()
        finally:
            if self._holding and self._redis is not None:
                with contextlib.suppress(redis.RedisError):  # otherwise it lapses by itself
                    self._redis.eval(_RELEASE, 1, BEAT_LOCK_KEY, self.lock_token)
                self._holding = False
