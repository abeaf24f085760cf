"""Writes of workups: generating them from an encounter, and the GP's decisions."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.audit import Actor, audit_record
from clinic.errors import RecordLocked
from clinic.models import Encounter
from workups.engine import Case, evaluate, get_knowledge_base
from workups.engine.loader import DEFAULT_LANGUAGE, LANGUAGES
from workups.engine.case import VITAL_SIGNS
from workups.models import Decision, Urgency, Workup, WorkupItem, WorkupReferral


def encounter_case(encounter: Encounter) -> Case:
    return Case(
        sex=encounter.patient.sex,
        age=encounter.age,
        duration_days=encounter.duration_days,
        pregnant=encounter.pregnant if encounter.patient.sex == "female" else None,
        temperature_c=encounter.temperature_c,
        vitals={name: getattr(encounter, name) for name in VITAL_SIGNS if getattr(encounter, name) is not None},
        findings=encounter.findings,
    )


def case_from_snapshot(snapshot: dict) -> Case:
    return Case(
        sex=snapshot["sex"], age=snapshot["age"], duration_days=snapshot["duration_days"],
        pregnant=snapshot["pregnant"], temperature_c=snapshot["temperature_c"],
        vitals=dict(snapshot.get("vitals") or {}), findings=dict(snapshot.get("findings") or {}),
    )


def case_snapshot(case: Case) -> dict:
    return {
        "sex": case.sex, "age": case.age, "duration_days": case.duration_days, "pregnant": case.pregnant,
        "temperature_c": case.temperature_c, "vitals": dict(case.vitals), "findings": dict(case.findings),
    }


def workup_is_stale(workup: Workup, encounter: Encounter) -> bool:
    """The encounter changed since this workup was generated."""
    return workup.case != case_snapshot(encounter_case(encounter))


def _locked_check(encounter: Encounter) -> None:
    if encounter.is_finalized:
        raise RecordLocked()


def _carried(previous, key):
    """Decisions already taken on the previous workup, by code: regenerating must not lose them."""
    if previous is None:
        return {}
    rows = previous.items.all() if key == "code" else previous.referrals.all()
    return {getattr(row, key): row for row in rows}


def _decision_fields(row):
    """What carries over from the previous workup's row with the same code: the decision, and whether
    the GP ordered it by hand (so it is kept even when the engine stops recommending it)."""
    if row is None:
        return {}
    carried = {"added_by_clinician": row.added_by_clinician}
    if row.decision != Decision.PENDING:
        carried |= {"decision": row.decision, "decision_reason": row.decision_reason,
                    "decided_by_id": row.decided_by_id, "decided_at": row.decided_at}
    return carried


@transaction.atomic
def workup_generate(*, actor: Actor, encounter: Encounter) -> Workup:
    _locked_check(encounter)
    case = encounter_case(encounter)
    # The stored rows keep the base's default language; the other languages' texts are kept beside it.
    result = evaluate(get_knowledge_base(DEFAULT_LANGUAGE), case)
    translations = {language: evaluate(get_knowledge_base(language), case)
                    for language in LANGUAGES if language != DEFAULT_LANGUAGE}
    previous = encounter.workups.prefetch_related("items", "referrals").order_by("-created_at", "-id").first()
    workup = Workup.objects.create(
        encounter=encounter, knowledge_base_version=result["knowledge_base_version"],
        disposition=result["disposition"], case=case_snapshot(case), result=result, translations=translations,
        created_by=actor.user,
    )
    old_items, old_referrals = _carried(previous, "code"), _carried(previous, "specialty")
    items = [
        WorkupItem(workup=workup, code=row["code"], category=row["category"], urgency=row["urgency"],
                   rationale=row["rationale"], triggered_by=row["triggered_by"], sources=row["sources"],
                   rules=row["rules"], position=position, **_decision_fields(old_items.get(row["code"])))
        for position, row in enumerate(result["items"])
    ]
    referrals = [
        WorkupReferral(workup=workup, specialty=row["specialty"], urgency=row["urgency"], reason=row["reason"],
                       triggered_by=row["triggered_by"], sources=row["sources"], rules=row["rules"],
                       position=position, **_decision_fields(old_referrals.get(row["specialty"])))
        for position, row in enumerate(result["referrals"])
    ]
    # What the GP added by hand stays, whatever the engine now says.
    issued_codes = {item.code for item in items}
    issued_specialties = {referral.specialty for referral in referrals}
    for row in old_items.values():
        if row.added_by_clinician and row.code not in issued_codes:
            items.append(WorkupItem(workup=workup, code=row.code, category=row.category, urgency=row.urgency,
                                    rationale=row.rationale, position=len(items), **_decision_fields(row)))
    for row in old_referrals.values():
        if row.added_by_clinician and row.specialty not in issued_specialties:
            referrals.append(WorkupReferral(workup=workup, specialty=row.specialty, urgency=row.urgency,
                                            reason=row.reason, position=len(referrals), **_decision_fields(row)))
    WorkupItem.objects.bulk_create(items)
    WorkupReferral.objects.bulk_create(referrals)
    audit_record(actor=actor, action="generate", object_type="workup", object_id=workup.pk,
                 patient_id=encounter.patient_id)
    return workup


def workup_current(*, actor: Actor, encounter: Encounter) -> Workup:
    """The latest workup, generated anew when there is none or the encounter has changed since."""
    latest = encounter.workups.order_by("-created_at", "-id").first()
    if latest is None or (not encounter.is_finalized and workup_is_stale(latest, encounter)):
        return workup_generate(actor=actor, encounter=encounter)
    return latest


@transaction.atomic
def recommendation_decide(*, actor: Actor, recommendation: WorkupItem | WorkupReferral, decision: str,
                          reason: str = "") -> WorkupItem | WorkupReferral:
    encounter = recommendation.workup.encounter
    _latest_check(recommendation.workup)
    reason = (reason or "").strip()
    if decision not in Decision.values:
        raise ValidationError({"decision": [f"Must be one of {', '.join(Decision.values)}."]})
    if decision == Decision.DECLINED and not reason:
        raise ValidationError({"reason": ["Give a reason for declining."]})
    recommendation.decision = decision
    recommendation.decision_reason = reason if decision != Decision.PENDING else ""
    recommendation.decided_by = actor.user if decision != Decision.PENDING else None
    recommendation.decided_at = timezone.now() if decision != Decision.PENDING else None
    recommendation.save(update_fields=["decision", "decision_reason", "decided_by", "decided_at"])
    kind = "workup_item" if isinstance(recommendation, WorkupItem) else "workup_referral"
    audit_record(actor=actor, action=f"decide_{decision}", object_type=kind, object_id=recommendation.pk,
                 patient_id=encounter.patient_id)
    return recommendation


def _latest_check(workup: Workup) -> None:
    _locked_check(workup.encounter)
    latest = workup.encounter.workups.order_by("-created_at", "-id").values_list("pk", flat=True).first()
    if latest != workup.pk:
        raise ValidationError({"workup": ["Only the latest workup of an encounter can be changed."]})


def _hand_add(*, actor: Actor, workup: Workup, model, key: str, value: str, known, what: str, urgency: str,
              fields: dict):
    """Add a recommendation the GP chose by hand (an item or a referral): accepted by that very act."""
    _latest_check(workup)
    rows = model.objects.filter(workup=workup)
    errors = {}
    if value not in known:
        errors[key] = [f"Unknown {what} {value!r}."]
    elif rows.filter(**{key: value}).exists():
        errors[key] = [f"{value} is already in this workup."]
    if urgency not in Urgency.values:
        errors["urgency"] = [f"Must be one of {', '.join(Urgency.values)}."]
    if errors:
        raise ValidationError(errors)
    row = model.objects.create(
        workup=workup, urgency=urgency, added_by_clinician=True, decision=Decision.ACCEPTED, decided_by=actor.user,
        decided_at=timezone.now(), position=rows.count(), **{key: value}, **fields,
    )
    kind = "workup_item" if model is WorkupItem else "workup_referral"
    audit_record(actor=actor, action="add", object_type=kind, object_id=row.pk, patient_id=workup.encounter.patient_id)
    return row


@transaction.atomic
def workup_item_add(*, actor: Actor, workup: Workup, code: str, urgency: str = Urgency.ROUTINE,
                    rationale: str = "") -> WorkupItem:
    """A catalogue test the GP orders by hand."""
    items = get_knowledge_base().vocabulary.items
    return _hand_add(actor=actor, workup=workup, model=WorkupItem, key="code", value=code, known=items,
                     what="test code", urgency=urgency,
                     fields={"category": items[code]["category"] if code in items else "",
                             "rationale": rationale.strip() or "Added by the clinician"})


@transaction.atomic
def workup_referral_add(*, actor: Actor, workup: Workup, specialty: str, urgency: str = Urgency.ROUTINE,
                        reason: str = "") -> WorkupReferral:
    """A specialist the GP refers to by hand."""
    return _hand_add(actor=actor, workup=workup, model=WorkupReferral, key="specialty", value=specialty,
                     known=get_knowledge_base().vocabulary.specialties, what="specialty", urgency=urgency,
                     fields={"reason": reason.strip() or "Added by the clinician"})


@transaction.atomic
def workup_accept_all(*, actor: Actor, workup: Workup) -> int:
    """Accept every recommendation of the workup still pending (the GP's "accept all recommended");
    what was declined stays declined. Returns how many were accepted."""
    _latest_check(workup)
    accepted = 0
    for model in (WorkupItem, WorkupReferral):
        for row in model.objects.filter(workup=workup, decision=Decision.PENDING):
            recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
            accepted += 1
    return accepted
