"""Reads of referrals, requisitions and leaflets: clinic-scoped (404 otherwise) and audit-logged."""

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.http import Http404
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from clinic.audit import Actor, audit_record
from clinic.models import Encounter
from referrals.models import Leaflet, Referral, ReferralStatus, Requisition
from workups.localized import current_kb
from workups.models import ABNORMAL_FLAGS, Result


def referral_get(*, actor: Actor, referral_id, action: str = "view") -> Referral:
    if actor.clinic is None:
        raise Http404("No such referral.")
    try:
        referral = Referral.objects.select_related("encounter__patient", "clinic").get(
            pk=referral_id, clinic=actor.clinic
        )
    except (Referral.DoesNotExist, ValueError, TypeError):
        raise Http404("No such referral.") from None
    audit_record(
        actor=actor,
        action=action,
        object_type="referral",
        object_id=referral.pk,
        patient_id=referral.encounter.patient_id,
    )
    return referral


def referrals_of_encounter(*, actor: Actor, encounter):
    audit_record(actor=actor, action="list", object_type="referral", patient_id=encounter.patient_id)
    return Referral.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id")


def requisition_latest(*, actor: Actor, encounter, action: str = "view") -> Requisition | None:
    requisition = (
        Requisition.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id").first()
    )
    if requisition is not None:
        audit_record(
            actor=actor,
            action=action,
            object_type="requisition",
            object_id=requisition.pk,
            patient_id=encounter.patient_id,
        )
    return requisition


def leaflet_latest(*, actor: Actor, encounter, action: str = "view") -> Leaflet | None:
    leaflet = Leaflet.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id").first()
    if leaflet is not None:
        audit_record(
            actor=actor, action=action, object_type="leaflet", object_id=leaflet.pk, patient_id=encounter.patient_id
        )
    return leaflet


URGENCY_RANK = {"routine": 0, "urgent": 1, "emergency": 2}


def letters_standing(letters) -> Callable[[int, str, str], bool]:
    """Whether a recommended referral (its id, specialty and urgency) has its letter: the one made from it, or,
    since a review stores a new version of the workup with new rows, a letter of the encounter to the same
    specialty, not cancelled, at the same urgency or a higher one. Without this, a referral issued before the
    results came back would be offered again, and listed as unfinished, once the GP reviews them."""
    made_from = {letter.recommendation_id for letter in letters}
    standing: dict[str, int] = {}
    for letter in letters:
        if letter.status != ReferralStatus.CANCELLED:
            rank = URGENCY_RANK.get(letter.urgency, 0)
            standing[letter.specialty] = max(standing.get(letter.specialty, -1), rank)

    def has_letter(row_id: int, specialty: str, urgency: str) -> bool:
        return row_id in made_from or URGENCY_RANK.get(urgency, 0) <= standing.get(specialty, -1)

    return has_letter


# A letter in the patient's hands (or answered): the recommendation it came from is decided. Cancelling it or
# recording the patient's refusal frees the decision again.
LETTER_HOLDS_DECISION = (ReferralStatus.ISSUED, ReferralStatus.BOOKED, ReferralStatus.COMPLETED)


def letter_holding(letters, *, recommendation_id: int, specialty: str):
    """The letter that holds a recommended referral's decision, among the encounter's `letters`: one issued,
    booked or completed, made from it or to its specialty (a review's new version of the workup has new rows;
    a letter by hand to the same specialty answers it too), the one made from it first. None when none does."""
    holding = [letter for letter in letters if letter.status in LETTER_HOLDS_DECISION and letter.specialty == specialty]
    holding.sort(key=lambda letter: (letter.recommendation_id != recommendation_id, -letter.pk))
    return holding[0] if holding else None


def letter_holding_words(letter) -> str:
    """What the workup row says, and a refused change of its decision answers, while `letter` holds it."""
    number = f"{letter.pk:06d}"  # as documents.document_number prints it
    if letter.status == ReferralStatus.COMPLETED:
        return _("Referral No. %(number)s completed: the specialist's conclusion is recorded.") % {"number": number}
    return _("Referral No. %(number)s issued: to change the decision, close the referral.") % {"number": number}


# Whose conclusion a completed referral brings, by specialty, in each language («Заключение невролога»).
CONCLUSION_OF = {
    "neurology": ("невролога", "Neurologist's"),
    "neurosurgery": ("нейрохирурга", "Neurosurgeon's"),
    "orthopedics": ("травматолога-ортопеда", "Orthopaedic surgeon's"),
    "traumatology": ("травматолога", "Traumatologist's"),
    "cardiology": ("кардиолога", "Cardiologist's"),
    "vascular_surgery": ("сосудистого хирурга", "Vascular surgeon's"),
    "pulmonology": ("пульмонолога", "Pulmonologist's"),
    "infectious_disease": ("инфекциониста", "Infectious disease specialist's"),
    "urology": ("уролога", "Urologist's"),
    "nephrology": ("нефролога", "Nephrologist's"),
    "gynecology": ("акушера-гинеколога", "Gynaecologist's"),
    "gastroenterology": ("гастроэнтеролога", "Gastroenterologist's"),
    "proctology": ("колопроктолога", "Coloproctologist's"),
    "oncology": ("онколога", "Oncologist's"),
    "rheumatology": ("ревматолога", "Rheumatologist's"),
}


def conclusion_heading(letter) -> str:
    """«Заключение невролога (01.12.2026)» / "Neurologist's conclusion (1 December 2026)", in the active
    language: the day the specialist saw the patient (the appointment, on the clinic's calendar) when it was
    recorded, else the day the conclusion was recorded."""
    russian = (translation.get_language() or "ru").startswith("ru")
    moment = letter.appointment_at if letter.appointment_at and letter.appointment_at <= letter.closed_at else None
    day = timezone.localtime(moment or letter.closed_at, ZoneInfo(letter.clinic.time_zone)).date()
    whose = CONCLUSION_OF.get(letter.specialty)
    if russian:
        title = f"Заключение {whose[0]}" if whose else "Заключение специалиста"
        return f"{title} ({date_format(day, 'SHORT_DATE_FORMAT')})"
    title = f"{whose[1]} conclusion" if whose else "Specialist's conclusion"
    return f"{title} ({date_format(day, 'DATE_FORMAT')})"


def workup_page_documents(*, encounter: Encounter, result: dict | None) -> dict:
    """The workup page's letters, requisition and leaflet of the encounter (registered as one of its sections:
    workups.web.WORKUP_PAGE_SECTIONS); each recommended referral row says whether it has a letter."""
    letters = list(Referral.objects.filter(encounter=encounter).select_related("clinic").order_by("-created_at", "-id"))
    for letter in letters:
        # A completed referral's conclusion shows under its row, so the GP reads it beside the workup.
        answered = letter.status == ReferralStatus.COMPLETED and letter.conclusion and letter.closed_at
        letter.conclusion_heading = conclusion_heading(letter) if answered else ""
    requisition = Requisition.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    leaflet = Leaflet.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    has_letter = letters_standing(letters)
    if result:
        for row in result["referrals"]:
            row["has_letter"] = has_letter(row["id"], row["specialty"], row["urgency"])
            # A letter issued holds the row's decision: the row says so in place of the decision's buttons.
            held_by = letter_holding(letters, recommendation_id=row["id"], specialty=row["specialty"])
            row["held_by"] = {"id": held_by.pk, "words": letter_holding_words(held_by)} if held_by else None
    # The emergency checklist under the banner: each standing emergency letter, oldest first.
    emergency_letters = [
        letter
        for letter in reversed(letters)
        if letter.urgency == "emergency" and letter.status != ReferralStatus.CANCELLED
    ]
    return {"letters": letters, "requisition": requisition, "leaflet": leaflet, "emergency_letters": emergency_letters}


def encounter_unfinished(*, encounter: Encounter) -> dict:
    """What is still open before the encounter is finalized, for the GP's confirmation:
    pending emergency/urgent recommendations, accepted referrals without an issued letter, draft
    letters, red flags not asked, and abnormal results not acknowledged. `emergency_untouched`: an emergency
    none of whose emergency rows has been decided."""
    kb = current_kb()
    workup = encounter.workups.prefetch_related("items", "referrals").order_by("-created_at", "-id").first()
    rows = [*workup.items.all(), *workup.referrals.all()] if workup else []
    pending = [row for row in rows if row.decision == "pending" and row.urgency in ("emergency", "urgent")]
    letters = list(
        Referral.objects.filter(encounter=encounter).only("recommendation_id", "status", "specialty", "urgency")
    )
    # A referral with a draft letter is listed once, under the draft letters.
    has_letter = letters_standing(letters)
    referrals = workup.referrals.all() if workup else []
    without_letter = [
        row for row in referrals if row.decision == "accepted" and not has_letter(row.pk, row.specialty, row.urgency)
    ]
    drafts = [letter for letter in letters if letter.status == ReferralStatus.DRAFT]
    unasked = [code for code in kb.red_flags if code not in (encounter.findings or {})]
    untouched = bool(workup and workup.emergency_untouched())
    unacknowledged = list(
        Result.objects.filter(
            encounter=encounter, superseded_at__isnull=True, acknowledged_at__isnull=True, flag__in=ABNORMAL_FLAGS
        ).order_by("entered_at", "id")
    )
    vocabulary = kb.vocabulary

    def name(row):
        return vocabulary.items[row.code]["name"] if hasattr(row, "code") else vocabulary.specialties[row.specialty]

    return {
        "pending_urgent": [
            {
                "kind": "item" if hasattr(row, "code") else "referral",
                "id": row.pk,
                "name": name(row),
                "urgency": row.urgency,
            }
            for row in pending
        ],
        "referrals_without_letter": [
            {"id": row.pk, "name": name(row), "urgency": row.urgency} for row in without_letter
        ],
        "draft_letters": [
            {"id": letter.pk, "name": vocabulary.specialties.get(letter.specialty, letter.specialty)}
            for letter in drafts
        ],
        "red_flags_not_asked": [{"code": code, "name": vocabulary.findings[code]["name"]} for code in unasked],
        # GUIDANCE 7: an abnormal result is acknowledged; closing the encounter is the last chance to see one isn't.
        "abnormal_results_unacknowledged": [
            {"id": row.pk, "code": row.code, "name": vocabulary.name_of(row.code), "flag": row.flag}
            for row in unacknowledged
        ],
        "emergency_untouched": untouched,
        "anything": bool(pending or without_letter or drafts or unasked or unacknowledged),
    }
