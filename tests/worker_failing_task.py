"""Test-only: a task that fails with a patient's name in its exception's message, as a careless
`raise ValueError(f"no chart for {patient}")` would. Loaded only by the tests' workers
(`celery worker --include tests.worker_failing_task`); production code knows nothing of it."""

from celery import shared_task

TASK = "tests.fails_naming_a_patient"


@shared_task(name=TASK)
def fails_naming_a_patient(family_name: str) -> None:
    raise ValueError(f"no chart for {family_name}")
