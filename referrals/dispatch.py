"""The referrals' task names, and the lookup of a task by name for the services that enqueue them.

A task reloads its row and calls a service (referrals.tasks imports referrals.services), so the services
can't import the tasks back without closing a circle: they ask Celery for a task by the name it is
registered under. These constants are the only spelling of those names: referrals.tasks registers each task
under its constant. Importing referrals.tasks registers them: Celery's autodiscovery does in a worker, and
referrals.apps does in every process (the web one too, where CELERY_TASK_ALWAYS_EAGER runs them in-process).
"""

from celery import current_app

RENDER_DOCUMENT = "referrals.render_document"
SWEEP = "referrals.sweep"
MARK_OVERDUE = "referrals.mark_overdue"


def task(name: str):
    """The registered task (a KeyError names a task that referrals.tasks doesn't define)."""
    return current_app.tasks[name]
