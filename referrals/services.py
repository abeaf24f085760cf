"""Referrals, requisitions and their PDFs.

A document is saved first and rendered after: the row is committed with
`pdf_status=pending`, the render task is enqueued after commit, and a worker
claims the row (pending -> rendering) before rendering it. If the broker is
down the row simply stays pending and the periodic sweep enqueues it later; if
a task runs twice, the second finds nothing to claim. So no letter is lost and
none is rendered twice.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clinic.audit import Actor, audit_record
from clinic.models import Encounter
from referrals import documents
from referrals.models import PdfStatus, Referral, ReferralStatus, Requisition
from referrals.pdf import render_pdf
from workups.engine import get_knowledge_base
from workups.models import Decision, Urgency, WorkupReferral

logger = logging.getLogger(__name__)

KINDS = {"referral": Referral, "requisition": Requisition}
# A claim older than this is abandoned (its worker died on another machine): the task's hard
# time limit plus a margin for the worker to notice.
CLAIM_TIMEOUT = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
# A pending document enqueued longer ago than this is enqueued again by the sweep.
REQUEUE_AFTER = timedelta(seconds=settings.DOCUMENT_REQUEUE_SECONDS)


def _kind_of(document) -> str:
    return "referral" if isinstance(document, Referral) else "requisition"


# -- enqueueing ------------------------------------------------------------------------------------

def document_enqueue(document) -> bool:
    """Hand the render to the broker; False (and the row left pending for the sweep) when it is down."""
    from referrals.tasks import render_document

    kind = _kind_of(document)
    model = KINDS[kind]
    try:
        render_document.delay(kind, document.pk)
    except Exception as error:  # the broker is unreachable: the sweep will pick the row up
        logger.warning("could not enqueue %s %s (%s); the sweep will retry", kind, document.pk, type(error).__name__)
        return False
    model.objects.filter(pk=document.pk, pdf_status=PdfStatus.PENDING).update(pdf_enqueued_at=timezone.now())
    return True


def _enqueue_after_commit(document) -> None:
    transaction.on_commit(lambda: document_enqueue(document))


# -- referrals -------------------------------------------------------------------------------------

def _referral_check(*, specialty, urgency, reason) -> None:
    errors = {}
    if specialty not in get_knowledge_base().vocabulary.specialties:
        errors["specialty"] = [f"Unknown specialty {specialty!r}."]
    if urgency not in Urgency.values:
        errors["urgency"] = [f"Must be one of {', '.join(Urgency.values)}."]
    if not (reason or "").strip():
        errors["reason"] = ["Give the reason for the referral."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def referral_create(*, actor: Actor, encounter: Encounter, specialty: str | None = None, urgency: str | None = None,
                    reason: str | None = None, question: str = "",
                    recommendation: WorkupReferral | None = None) -> Referral:
    """A referral by hand, or from an accepted recommendation (whose specialty, urgency and reason it takes
    unless given). Its letter is rendered after commit."""
    if recommendation is not None:
        if recommendation.workup.encounter_id != encounter.pk:
            raise ValidationError({"recommendation": ["That recommendation belongs to another encounter."]})
        if recommendation.decision != Decision.ACCEPTED:
            raise ValidationError({"recommendation": ["Accept the recommendation before writing its letter."]})
        specialty = specialty or recommendation.specialty
        urgency = urgency or recommendation.urgency
        reason = reason or recommendation.reason
    _referral_check(specialty=specialty, urgency=urgency, reason=reason)
    referral = Referral.objects.create(
        clinic=encounter.clinic, encounter=encounter, recommendation=recommendation, specialty=specialty,
        urgency=urgency, reason=reason.strip(), question=(question or "").strip(), created_by=actor.user,
    )
    audit_record(actor=actor, action="create", object_type="referral", object_id=referral.pk,
                 patient_id=encounter.patient_id)
    _enqueue_after_commit(referral)
    return referral


@transaction.atomic
def referral_update(*, actor: Actor, referral: Referral, **changes) -> Referral:
    """Change a draft referral; its letter is rendered again."""
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if referral.status != ReferralStatus.DRAFT:
        from clinic.errors import RecordLocked

        raise RecordLocked("This referral has been issued and can no longer be changed.")
    for name, value in changes.items():
        if name not in ("urgency", "reason", "question"):
            raise TypeError(f"referral_update() got an unexpected field {name!r}")
        setattr(referral, name, (value or "").strip() if name != "urgency" else value)
    _referral_check(specialty=referral.specialty, urgency=referral.urgency, reason=referral.reason)
    referral.pdf_generation += 1
    referral.pdf_status = PdfStatus.PENDING
    referral.pdf_error = ""
    referral.pdf_enqueued_at = None
    referral.pdf_claimed_by = ""
    referral.pdf_claimed_at = None
    referral.save()
    audit_record(actor=actor, action="update", object_type="referral", object_id=referral.pk,
                 patient_id=referral.encounter.patient_id)
    _enqueue_after_commit(referral)
    return referral


@transaction.atomic
def referral_issue(*, actor: Actor, referral: Referral) -> Referral:
    """The GP signs the referral off: it can no longer be changed."""
    updated = Referral.objects.filter(pk=referral.pk, status=ReferralStatus.DRAFT).update(
        status=ReferralStatus.ISSUED, issued_at=timezone.now())
    referral.refresh_from_db()
    if updated:
        audit_record(actor=actor, action="issue", object_type="referral", object_id=referral.pk,
                     patient_id=referral.encounter.patient_id)
    return referral


@transaction.atomic
def document_rerender(*, actor: Actor, document) -> None:
    """Ask again for a document whose render failed."""
    model = type(document)
    changed = model.objects.filter(pk=document.pk, pdf_status=PdfStatus.FAILED).update(
        pdf_status=PdfStatus.PENDING, pdf_error="", pdf_enqueued_at=None, pdf_claimed_by="", pdf_claimed_at=None)
    if changed:
        audit_record(actor=actor, action="rerender", object_type=_kind_of(document), object_id=document.pk,
                     patient_id=document.encounter.patient_id)
        _enqueue_after_commit(document)


# -- requisitions ----------------------------------------------------------------------------------

@transaction.atomic
def requisition_request(*, actor: Actor, encounter: Encounter) -> Requisition:
    """The requisition of the encounter's accepted tests, as they are now; rendered after commit."""
    from workups.services import workup_current

    workup = workup_current(actor=actor, encounter=encounter) if not encounter.is_finalized else (
        encounter.workups.order_by("-created_at", "-id").first())
    if workup is None:
        raise ValidationError({"workup": ["Generate the workup first."]})
    if not workup.items.filter(decision=Decision.ACCEPTED).exists():
        raise ValidationError({"workup": ["Accept at least one test before requesting the requisition."]})
    requisition = Requisition.objects.create(clinic=encounter.clinic, encounter=encounter, workup=workup,
                                             created_by=actor.user)
    audit_record(actor=actor, action="create", object_type="requisition", object_id=requisition.pk,
                 patient_id=encounter.patient_id)
    _enqueue_after_commit(requisition)
    return requisition


# -- rendering (in the worker) ---------------------------------------------------------------------

def _process_alive(claimant: str) -> bool:
    """Whether the process that claimed a render still runs. Known only for this machine; a claim
    from another machine counts as alive until CLAIM_TIMEOUT."""
    host, _, rest = claimant.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(model, pk, claimant: str) -> bool:
    """Atomically take the render of a pending document, or of one whose renderer died."""
    now = timezone.now()
    if model.objects.filter(pk=pk, pdf_status=PdfStatus.PENDING).update(
            pdf_status=PdfStatus.RENDERING, pdf_claimed_by=claimant, pdf_claimed_at=now):
        return True
    stuck = model.objects.filter(pk=pk, pdf_status=PdfStatus.RENDERING).values_list(
        "pdf_claimed_by", "pdf_claimed_at").first()
    if stuck is None:
        return False
    holder, claimed_at = stuck
    if holder != claimant and _process_alive(holder) and claimed_at and claimed_at > now - CLAIM_TIMEOUT:
        return False
    # The previous renderer is gone (killed mid-render): take over, unless someone else just did.
    return bool(model.objects.filter(pk=pk, pdf_status=PdfStatus.RENDERING, pdf_claimed_by=holder).update(
        pdf_claimed_by=claimant, pdf_claimed_at=now))


def _render_bytes(document) -> bytes:
    if isinstance(document, Referral):
        workup = document.encounter.workups.prefetch_related("items").order_by("-created_at", "-id").first()
        return render_pdf("referrals/letter.html", documents.letter_context(document, workup=workup))
    return render_pdf("referrals/requisition.html", documents.requisition_context(document))


def document_render(*, kind: str, pk: int, claimant: str) -> str:
    """Render one document if it is this claimant's to render: "rendered", "skipped" or "failed"."""
    model = KINDS[kind]
    if not _claim(model, pk, claimant):
        return "skipped"
    related = ["encounter__patient", "encounter__clinic", "encounter__clinician__membership"]
    document = model.objects.select_related(*related).get(pk=pk)
    generation = document.pdf_generation
    if settings.DOCUMENT_RENDER_PAUSE_SECONDS:  # fault-injection tests kill a worker mid-render
        time.sleep(settings.DOCUMENT_RENDER_PAUSE_SECONDS)
    mine = model.objects.filter(pk=pk, pdf_claimed_by=claimant, pdf_generation=generation,
                                pdf_status=PdfStatus.RENDERING)
    try:
        pdf = _render_bytes(document)
    except Exception as error:
        logger.exception("rendering %s %s failed", kind, pk)
        mine.update(pdf_status=PdfStatus.FAILED, pdf_error=f"{type(error).__name__}: {error}"[:2000])
        return "failed"
    name = f"{kind}-{pk}-{generation}.pdf"
    field = document.pdf_file
    stored = field.storage.save(field.field.generate_filename(document, name), ContentFile(pdf))
    done = mine.update(pdf_status=PdfStatus.READY, pdf_file=stored, pdf_rendered_at=timezone.now(), pdf_error="",
                       pdf_renders=F("pdf_renders") + 1)
    if not done:  # the content changed or another worker took over meanwhile: its render counts
        field.storage.delete(stored)
        return "skipped"
    if document.pdf_file and document.pdf_file.name != stored:
        field.storage.delete(document.pdf_file.name)
    return "rendered"


def documents_sweep() -> int:
    """Enqueue what should be rendering and is not: pending rows never (or long ago) handed to the broker,
    and renders whose worker died. Returns how many were enqueued."""
    now = timezone.now()
    enqueued = 0
    for model in KINDS.values():
        model.objects.filter(pdf_status=PdfStatus.RENDERING, pdf_claimed_at__lt=now - CLAIM_TIMEOUT).update(
            pdf_status=PdfStatus.PENDING, pdf_claimed_by="", pdf_claimed_at=None, pdf_enqueued_at=None)
        stale = model.objects.filter(
            Q(pdf_enqueued_at__isnull=True) | Q(pdf_enqueued_at__lt=now - REQUEUE_AFTER), pdf_status=PdfStatus.PENDING)
        for document in stale.only("pk")[:500]:
            enqueued += document_enqueue(document)
    return enqueued
