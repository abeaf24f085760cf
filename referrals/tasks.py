"""Celery tasks: they take ids, reload rows, guard on status and call a service; safe to run twice."""

import os
import socket

from celery import shared_task

from referrals import dispatch, services


@shared_task(name=dispatch.RENDER_DOCUMENT, bind=True, acks_late=True, reject_on_worker_lost=True)
def render_document(self, kind: str, pk: int) -> str:
    claimant = f"{socket.gethostname()}:{os.getpid()}:{self.request.id or 'eager'}"
    return services.document_render(kind=kind, pk=pk, claimant=claimant)


@shared_task(name=dispatch.SWEEP, acks_late=True)
def sweep() -> int:
    return services.documents_sweep()


@shared_task(name=dispatch.MARK_OVERDUE, acks_late=True)
def mark_overdue() -> int:
    """Record what has become overdue (GUIDANCE 7). Idempotent; sends nothing outside the app."""
    return services.overdue_mark()
