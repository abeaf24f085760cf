"""Test-only: hold one render in the middle, after its worker has claimed the document, so a fault test can kill
that worker mid-render. Loaded only by the tests' workers (`celery worker --include tests.worker_pause`) and
active only when they set TEST_RENDER_PAUSE_DIR; production code knows nothing of it.

The render that first loads its document after claiming it (Django's post_init, inside the render task) takes
the pause if the directory holds a file `pause` (and removes it, so only one render ever waits). It then waits
until a file `resume` appears there; the tests mostly kill it first.
"""

import os
import time
from pathlib import Path

from celery.signals import task_postrun, task_prerun
from django.db.models.signals import post_init

from referrals.dispatch import RENDER_DOCUMENT

PAUSE_DIR = os.environ.get("TEST_RENDER_PAUSE_DIR")
RENDER_TASK = RENDER_DOCUMENT
LONGEST_PAUSE = 120  # seconds; never a worker stuck for good if a test forgets to resume it

_state = {"in_render": False}


def _document_loaded(sender, instance, **kwargs):
    from referrals.services import KINDS

    if not _state["in_render"] or sender not in KINDS.values():
        return
    _state["in_render"] = False  # once per task: the document, not the rows loaded after it
    directory = Path(PAUSE_DIR)
    try:
        (directory / "pause").unlink()  # whoever removes it takes the pause
    except FileNotFoundError:
        return
    (directory / f"paused-{os.getpid()}").touch()
    deadline = time.monotonic() + LONGEST_PAUSE
    while not (directory / "resume").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _task_started(sender=None, **kwargs):
    _state["in_render"] = getattr(sender, "name", None) == RENDER_TASK


def _task_finished(sender=None, **kwargs):
    _state["in_render"] = False


if PAUSE_DIR:
    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)
    post_init.connect(_document_loaded, weak=False)
