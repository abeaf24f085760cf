"""Writes of workups: generating them from an encounter, and the GP's decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clinic.audit import Actor, audit_record
from clinic.errors import RecordLocked
from clinic.models import Encounter
from clinic.services import encounter_lock
from clinic.validation import check_results
from workups.engine import Case, evaluate, get_knowledge_base
from workups.engine.case import VITAL_SIGNS
from workups.engine.loader import DEFAULT_LANGUAGE, LANGUAGES
from workups.models import (
    ABNORMAL_FLAGS,
    HAND_ADDED,
    KEPT_ACCEPTED,
    Decision,
    ItemOrder,
    Result,
    Urgency,
    Workup,
    WorkupItem,
    WorkupKind,
    WorkupReferral,
)


def encounter_case(encounter: Encounter) -> Case:
    return Case(
        sex=encounter.sex,
        age=encounter.age,
        duration_days=encounter.duration_days,
        pregnant=encounter.pregnant if encounter.sex == "female" else None,
        temperature_c=encounter.temperature_c,
        vitals={name: getattr(encounter, name) for name in VITAL_SIGNS if getattr(encounter, name) is not None},
        findings=encounter.findings,
    )


def case_from_snapshot(snapshot: dict) -> Case:
    return Case(
        sex=snapshot["sex"],
        age=snapshot["age"],
        duration_days=snapshot["duration_days"],
        pregnant=snapshot["pregnant"],
        temperature_c=snapshot["temperature_c"],
        vitals=dict(snapshot.get("vitals") or {}),
        findings=dict(snapshot.get("findings") or {}),
        results=dict(snapshot.get("results") or {}),
    )


def case_snapshot(case: Case) -> dict:
    return {
        "sex": case.sex,
        "age": case.age,
        "duration_days": case.duration_days,
        "pregnant": case.pregnant,
        "temperature_c": case.temperature_c,
        "vitals": dict(case.vitals),
        "findings": dict(case.findings),
    }


def workup_is_stale(workup: Workup, encounter: Encounter) -> bool:
    """The encounter's history or examination changed since this workup was generated (a follow-up
    workup is judged on the same, without the results it was computed from)."""
    case = {key: value for key, value in workup.case.items() if key != "results"}
    return case != case_snapshot(encounter_case(encounter))


def _lock(encounter_id: int) -> None:
    """Take the encounter's row lock for the rest of the transaction. Every write to an encounter's workups,
    decisions and results takes it first, so they run one after another per encounter: what awaits a result is
    then worked out (awaiting_refresh) on everything the writes before committed, and no two writers lock the
    same rows in opposite orders."""
    Encounter.objects.select_for_update().filter(pk=encounter_id).values_list("pk", flat=True).first()


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
    carried = {"added_by_clinician": row.added_by_clinician, "ordered_at": row.ordered_at}
    if row.decision != Decision.PENDING:
        carried |= {
            "decision": row.decision,
            "decision_reason": row.decision_reason,
            "decided_by_id": row.decided_by_id,
            "decided_at": row.decided_at,
        }
    return carried


def _kept(row) -> dict:
    """A row of the previous workup the engine does not issue now that stays: one the GP added by hand, as it
    was; one the GP accepted, as the GP's own order (the patient may be booked for it already), saying why."""
    if row.added_by_clinician:
        return _decision_fields(row)
    # What fired it then stays with it: a letter made from it still gives the findings and purpose it had.
    origin = {name: getattr(row, name) for name in ("triggered_by", "sources", "rules")}
    return {**_decision_fields(row), **origin, "added_by_clinician": True}


def _keeps(row) -> bool:
    return row.added_by_clinician or row.decision == Decision.ACCEPTED


def _store_rows(workup, items, referrals, old_items, old_referrals) -> None:
    """Save the new workup's rows, with the rows of the previous one that the engine does not issue now but the
    GP added by hand or accepted (kept with their decisions)."""
    issued_codes = {item.code for item in items}
    issued_specialties = {referral.specialty for referral in referrals}
    for row in old_items.values():
        if _keeps(row) and row.code not in issued_codes:
            items.append(
                WorkupItem(
                    workup=workup,
                    code=row.code,
                    category=row.category,
                    urgency=row.urgency,
                    rationale=row.rationale if row.added_by_clinician else KEPT_ACCEPTED,
                    position=len(items),
                    **_kept(row),
                )
            )
    for row in old_referrals.values():
        if _keeps(row) and row.specialty not in issued_specialties:
            referrals.append(
                WorkupReferral(
                    workup=workup,
                    specialty=row.specialty,
                    urgency=row.urgency,
                    reason=row.reason if row.added_by_clinician else KEPT_ACCEPTED,
                    position=len(referrals),
                    **_kept(row),
                )
            )
    for item in items:
        item.clinic_id = workup.encounter.clinic_id
    WorkupItem.objects.bulk_create(items)
    WorkupReferral.objects.bulk_create(referrals)
    _orders_follow(workup, items)
    awaiting_refresh(encounter=workup.encounter)


def _orders_follow(workup, items) -> None:
    """The orders as the stored rows decide: a test accepted has an open order (an EHR holds what the app awaits);
    one declined, or one the new workup no longer has (never one accepted: those are kept), has none."""
    encounter_id = workup.encounter_id
    open_codes = set(
        ItemOrder.objects.filter(encounter_id=encounter_id, revoked_at__isnull=True).values_list("code", flat=True)
    )
    for item in items:
        if item.code in open_codes and item.decision == Decision.DECLINED:
            _orders_revoke(
                encounter_id=encounter_id, codes=[item.code], at=workup.created_at, reason=item.decision_reason
            )
        elif item.code not in open_codes and item.decision == Decision.ACCEPTED:
            _order_place(row=item, by_id=item.decided_by_id, at=workup.created_at)
    gone = open_codes - {item.code for item in items}
    if gone:
        _orders_revoke(encounter_id=encounter_id, codes=gone, at=workup.created_at)


def _order_place(*, row: WorkupItem, by_id, at) -> None:
    """The test accepted is ordered: a new order, unless its order is still open (on hold while the workup asked
    the GP again). One revoked before is final, so this one is the next round."""
    latest = ItemOrder.objects.filter(encounter_id=row.workup.encounter_id, code=row.code).order_by("-round").first()
    if latest is not None and latest.revoked_at is None:
        return
    ItemOrder.objects.create(
        encounter_id=row.workup.encounter_id,
        code=row.code,
        round=1 if latest is None else latest.round + 1,
        item=row,
        ordered_at=at,
        ordered_by_id=by_id,
    )


def _orders_revoke(*, encounter_id: int, codes, at, reason: str = "") -> None:
    """Take back the open orders of `codes`."""
    ItemOrder.objects.filter(encounter_id=encounter_id, code__in=codes, revoked_at__isnull=True).update(
        revoked_at=at, revoked_reason=reason
    )


def _workup_store(*, actor: Actor, encounter: Encounter, kind: str, case, result, translations, previous) -> Workup:
    """Store the engine's answer as a workup of `kind` with its rows. Each row carries the decision taken on the
    same code in `previous` (the workup it replaces or follows): an initial workup keeps it; a follow-up marks
    what is new and asks again where the results raised the urgency. What the GP added by hand stays, whatever
    the engine now says."""
    workup = Workup.objects.create(
        encounter=encounter,
        kind=kind,
        knowledge_base_version=result["knowledge_base_version"],
        disposition=result["disposition"],
        case=case,
        result=result,
        translations=translations,
        created_by=actor.user,
    )
    old = {"code": _carried(previous, "code"), "specialty": _carried(previous, "specialty")}

    def carried(key: str, row: dict) -> dict:
        before = old[key].get(row[key])
        if kind == WorkupKind.FOLLOW_UP:
            return {"is_new": before is None, **_follow_up_decision(before, row["urgency"])}
        if before is not None and before.decision == Decision.DECLINED and _raised(before.urgency, row["urgency"]):
            # A reason to decline a routine test does not cover it once the edited findings make it urgent.
            return {"added_by_clinician": before.added_by_clinician, "ordered_at": before.ordered_at}
        return _decision_fields(before)

    shared = ("urgency", "triggered_by", "sources", "rules")
    items = [
        WorkupItem(
            workup=workup,
            code=row["code"],
            category=row["category"],
            rationale=row["rationale"],
            position=position,
            **{name: row[name] for name in shared},
            **carried("code", row),
        )
        for position, row in enumerate(result["items"])
    ]
    referrals = [
        WorkupReferral(
            workup=workup,
            specialty=row["specialty"],
            reason=row["reason"],
            position=position,
            **{name: row[name] for name in shared},
            **carried("specialty", row),
        )
        for position, row in enumerate(result["referrals"])
    ]
    _store_rows(workup, items, referrals, old["code"], old["specialty"])
    return workup


@transaction.atomic
def workup_generate(*, actor: Actor, encounter: Encounter) -> Workup:
    _lock(encounter.pk)
    _locked_check(encounter)
    case = encounter_case(encounter)
    # The stored rows keep the base's default language; the other languages' texts are kept beside it.
    result = evaluate(get_knowledge_base(DEFAULT_LANGUAGE), case)
    translations = {
        language: evaluate(get_knowledge_base(language), case) for language in LANGUAGES if language != DEFAULT_LANGUAGE
    }
    # The decisions of the latest workup, a follow-up's too: a decline or acceptance the GP gave after a review
    # must not be undone by an edit of the findings.
    previous = encounter.workups.prefetch_related("items", "referrals").order_by("-created_at", "-id").first()
    workup = _workup_store(
        actor=actor,
        encounter=encounter,
        kind=WorkupKind.INITIAL,
        case=case_snapshot(case),
        result=result,
        translations=translations,
        previous=previous,
    )
    audit_record(
        actor=actor, action="generate", object_type="workup", object_id=workup.pk, patient_id=encounter.patient_id
    )
    return workup


def workup_current(*, actor: Actor, encounter: Encounter) -> Workup:
    """The latest workup (initial or follow-up); the initial one generated anew when there is none or
    the (draft) encounter has changed since it was."""
    initial = encounter.workups.filter(kind=WorkupKind.INITIAL).order_by("-created_at", "-id").first()
    if initial is None or (not encounter.is_finalized and workup_is_stale(initial, encounter)):
        return workup_generate(actor=actor, encounter=encounter)
    return encounter.workups.order_by("-created_at", "-id").first()


@transaction.atomic
def encounter_finalize(*, actor: Actor, encounter: Encounter, reason: str = "") -> Encounter:
    """Lock the encounter with its latest workup (generated now if missing or out of date).

    An emergency whose emergency work is all still pending is finalized only with a reason: the GP
    must say why nothing was acted on (sent by ambulance, refused, ...), so it is never by accident."""
    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    _locked_check(encounter)
    workup = workup_current(actor=actor, encounter=encounter)
    reason = (reason or "").strip()
    if workup.emergency_untouched() and not reason:
        raise ValidationError(
            {
                "reason": [
                    _(
                        "This is an emergency and none of its emergency tests or referrals "
                        "has been acted on: give the reason for finalizing now."
                    )
                ]
            }
        )
    return encounter_lock(actor=actor, encounter=encounter, reason=reason)


@transaction.atomic
def recommendation_decide(
    *, actor: Actor, recommendation: WorkupItem | WorkupReferral, decision: str, reason: str = ""
) -> WorkupItem | WorkupReferral:
    _lock(recommendation.workup.encounter_id)
    _decide(actor=actor, recommendation=recommendation, decision=decision, reason=reason)
    if isinstance(recommendation, WorkupItem):
        awaiting_refresh(encounter=recommendation.workup.encounter)
    return recommendation


# Checks a layer above adds before a decision is saved, each called with the recommendation and the decision and
# raising to refuse it: a letter issued from a recommended referral holds its decision (referrals.apps registers
# it; the workups, a layer below, must not import the letters).
DECISION_GUARDS: list[Callable[..., None]] = []


def _decide(*, actor: Actor, recommendation: WorkupItem | WorkupReferral, decision: str, reason: str) -> None:
    """The decision, checked, saved and audited (the caller holds the encounter's lock and refreshes what awaits
    a result once it has decided)."""
    encounter = recommendation.workup.encounter
    _latest_check(recommendation.workup)
    reason = (reason or "").strip()
    if decision not in Decision.values:
        raise ValidationError(
            {"decision": [_("Must be one of %(choices)s.") % {"choices": ", ".join(Decision.values)}]}
        )
    for guard in DECISION_GUARDS:
        guard(recommendation=recommendation, decision=decision)
    if decision == Decision.DECLINED and not reason:
        raise ValidationError({"reason": [_("Give a reason for declining.")]})
    recommendation.decision = decision
    recommendation.decision_reason = reason if decision != Decision.PENDING else ""
    recommendation.decided_by = actor.user if decision != Decision.PENDING else None
    recommendation.decided_at = timezone.now() if decision != Decision.PENDING else None
    if decision == Decision.ACCEPTED and recommendation.ordered_at is None:
        recommendation.ordered_at = recommendation.decided_at
    recommendation.save(update_fields=["decision", "decision_reason", "decided_by", "decided_at", "ordered_at"])
    if isinstance(recommendation, WorkupItem) and decision == Decision.ACCEPTED:
        _order_place(row=recommendation, by_id=actor.user.pk, at=recommendation.decided_at)
    elif isinstance(recommendation, WorkupItem) and decision == Decision.DECLINED:
        _orders_revoke(
            encounter_id=encounter.pk, codes=[recommendation.code], at=recommendation.decided_at, reason=reason
        )
    kind = "workup_item" if isinstance(recommendation, WorkupItem) else "workup_referral"
    audit_record(
        actor=actor,
        action=f"decide_{decision}",
        object_type=kind,
        object_id=recommendation.pk,
        patient_id=encounter.patient_id,
    )


def _latest_check(workup: Workup) -> None:
    """Only the latest workup is decided. Finalizing locks the first visit's decisions, not what the
    results brought: a follow-up workup is decided after finalizing too. A superseded workup is a
    conflict with the record's state (HTTP 409, like a finalized one), not bad input: the same request
    is fine on the latest workup."""
    if workup.kind != WorkupKind.FOLLOW_UP:
        _locked_check(workup.encounter)
    latest = workup.encounter.workups.order_by("-created_at", "-id").values_list("pk", flat=True).first()
    if latest != workup.pk:
        raise RecordLocked(_("Only the latest workup of an encounter can be changed."))


def _hand_add(
    *, actor: Actor, workup: Workup, model, key: str, value: str, known, what: str, urgency: str, fields: dict
):
    """Add a recommendation the GP chose by hand (an item or a referral): accepted by that very act."""
    _lock(workup.encounter_id)
    _latest_check(workup)
    rows = model.objects.filter(workup=workup)
    errors = {}
    if value not in known:
        errors[key] = [_("Unknown code %(code)s.") % {"code": repr(value)}]
    elif rows.filter(**{key: value}).exists():
        errors[key] = [f"{value} is already in this workup."]
    if urgency not in Urgency.values:
        errors["urgency"] = [_("Must be one of %(choices)s.") % {"choices": ", ".join(Urgency.values)}]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    row = model.objects.create(
        workup=workup,
        urgency=urgency,
        added_by_clinician=True,
        decision=Decision.ACCEPTED,
        decided_by=actor.user,
        decided_at=now,
        ordered_at=now,
        position=rows.count(),
        **{key: value},
        **fields,
    )
    kind = "workup_item" if model is WorkupItem else "workup_referral"
    if kind == "workup_item":
        _order_place(row=row, by_id=actor.user.pk, at=now)
        awaiting_refresh(encounter=workup.encounter)
    audit_record(actor=actor, action="add", object_type=kind, object_id=row.pk, patient_id=workup.encounter.patient_id)
    return row


@transaction.atomic
def workup_item_add(
    *, actor: Actor, workup: Workup, code: str, urgency: str = Urgency.ROUTINE, rationale: str = ""
) -> WorkupItem:
    """A catalogue test the GP orders by hand."""
    items = get_knowledge_base().vocabulary.items
    return _hand_add(
        actor=actor,
        workup=workup,
        model=WorkupItem,
        key="code",
        value=code,
        known=items,
        what="test code",
        urgency=urgency,
        fields={
            "category": items[code]["category"] if code in items else "",
            "clinic_id": workup.encounter.clinic_id,
            "rationale": rationale.strip() or HAND_ADDED,
        },
    )


@transaction.atomic
def workup_referral_add(
    *, actor: Actor, workup: Workup, specialty: str, urgency: str = Urgency.ROUTINE, reason: str = ""
) -> WorkupReferral:
    """A specialist the GP refers to by hand."""
    return _hand_add(
        actor=actor,
        workup=workup,
        model=WorkupReferral,
        key="specialty",
        value=specialty,
        known=get_knowledge_base().vocabulary.specialties,
        what="specialty",
        urgency=urgency,
        fields={"reason": reason.strip() or HAND_ADDED},
    )


@transaction.atomic
def workup_accept_all(*, actor: Actor, workup: Workup) -> int:
    """Accept every recommendation of the workup still pending (the GP's "accept all recommended");
    what was declined stays declined. Returns how many were accepted."""
    _lock(workup.encounter_id)
    _latest_check(workup)
    accepted = 0
    for model in (WorkupItem, WorkupReferral):
        for row in model.objects.filter(workup=workup, decision=Decision.PENDING):
            _decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED, reason="")
            accepted += 1
    awaiting_refresh(encounter=workup.encounter)  # once, for every test accepted
    return accepted


# -- what awaits its result (GUIDANCE 7) ------------------------------------------------------------


def result_codes_by_test() -> dict[str, list[str]]:
    """Each test code that a result can answer, and the result codes that answer it (in the vocabulary's order,
    which is the order a form asks for them)."""
    answers: dict[str, list[str]] = {}
    for code, meta in get_knowledge_base().vocabulary.results.items():
        for item in meta["items"]:
            answers.setdefault(item, []).append(code)
    return answers


@transaction.atomic
def encounter_awaiting_refresh(*, encounter_id: int) -> None:
    """awaiting_refresh for one encounter in a transaction of its own, under the encounter's lock as the app's
    writes take it (manage.py refresh_awaited_tests, while the app is in use)."""
    _lock(encounter_id)
    awaiting_refresh(encounter=Encounter.objects.only("pk").get(pk=encounter_id))


def awaiting_refresh(*, encounter: Encounter) -> None:
    """Set `awaiting_since` on each test of the encounter that awaits its result, and clear it on the others:
    accepted, in the encounter's latest workup (by creation, then id), answerable by a result code and answered by
    no current result. Called by every write that changes one of these (a decision, a new workup, a result), in
    its transaction and under the encounter's lock. A handful of plain queries, whatever the encounter holds (one
    statement with an EXISTS per testable code cost 13 ms to plan)."""
    latest = encounter.workups.order_by("-created_at", "-id").values("pk", "created_at").first()
    # The tests of the workups the latest replaced or followed await nothing.
    earlier = WorkupItem.objects.filter(workup__encounter=encounter, awaiting_since__isnull=False)
    if latest is not None:
        earlier = earlier.exclude(workup_id=latest["pk"])
    earlier.update(awaiting_since=None)
    if latest is None:
        return
    answers = result_codes_by_test()
    current = set(Result.objects.filter(encounter=encounter, superseded_at__isnull=True).values_list("code", flat=True))
    changed = []
    for item in WorkupItem.objects.filter(workup_id=latest["pk"]).only(
        "code", "decision", "decided_at", "awaiting_since"
    ):
        codes = answers.get(item.code)
        awaiting = item.decision == Decision.ACCEPTED and codes and not current.intersection(codes)
        since = (item.decided_at or latest["created_at"]) if awaiting else None
        if item.awaiting_since != since:
            item.awaiting_since = since
            changed.append(item)
    if changed:
        WorkupItem.objects.bulk_update(changed, ["awaiting_since"])


# -- results and the follow-up workup (GUIDANCE 6) -------------------------------------------------


def _control_characters(text: str) -> bool:
    return any(ord(char) < 32 and char not in "\n\r\t" or ord(char) == 127 for char in text)


def results_current(encounter: Encounter) -> dict[str, Result]:
    """The encounter's current result of each code (the latest entered, not superseded)."""
    return {row.code: row for row in Result.objects.filter(encounter=encounter, superseded_at__isnull=True)}


def _result_pregnant(encounter: Encounter, current: dict, code: str, value) -> bool | None:
    """Pregnant for the references: recorded so, or a positive hCG (N12), this one included."""
    if encounter.sex != "female":
        return None
    hcg = value if code == "res_hcg" else (current["res_hcg"].value if "res_hcg" in current else None)
    return True if hcg is True else encounter.pregnant


def result_interpret(
    *, encounter: Encounter, code: str, value, pregnant: bool | None, language: str | None = None
) -> tuple[str, str]:
    """(flag, reference) of one value for this patient, as the engine reads it."""
    from workups.engine.results import interpret

    language = language or DEFAULT_LANGUAGE
    meta = get_knowledge_base(language).vocabulary.results[code]
    return interpret(meta, value, sex=encounter.sex, age=encounter.age, pregnant=pregnant, language=language)


def _answered_item(encounter: Encounter, code: str) -> WorkupItem | None:
    """The accepted item of the encounter's latest workup that this result code answers."""
    latest = encounter.workups.order_by("-created_at", "-id").first()
    if latest is None:
        return None
    items = get_knowledge_base().vocabulary.results[code]["items"]
    return latest.items.filter(decision=Decision.ACCEPTED, code__in=items).order_by("position", "id").first()


@transaction.atomic
def result_enter(*, actor: Actor, encounter: Encounter, code: str, value, performed_on=None, note: str = "") -> Result:
    """Record a result that came back, also after the encounter is finalized (finalizing locks the
    first visit, not what comes back). A new value for a code supersedes the current one (kept).

    The value is checked like the engine's input (known code, type, plausible range: a haemoglobin of
    13.2 g/dL typed in g/L is refused, not flagged); `performed_on` may not be in the future nor
    before the visit. ValidationError names each problem."""

    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    note = (note or "").strip()
    errors = result_problems(encounter=encounter, code=code, value=value, performed_on=performed_on, note=note)
    if errors:
        raise ValidationError(errors)
    current = results_current(encounter)
    pregnant = _result_pregnant(encounter, current, code, value)
    flag, reference = result_interpret(encounter=encounter, code=code, value=value, pregnant=pregnant)
    translations = {
        language: result_interpret(encounter=encounter, code=code, value=value, pregnant=pregnant, language=language)[1]
        for language in LANGUAGES
        if language != DEFAULT_LANGUAGE
    }
    now = timezone.now()
    previous = current.get(code)
    if previous is not None:
        Result.objects.filter(pk=previous.pk).update(superseded_at=now)
    result = Result.objects.create(
        encounter=encounter,
        clinic_id=encounter.clinic_id,
        code=code,
        value_bool=value if isinstance(value, bool) else None,
        value_number=None if isinstance(value, bool) else float(value),
        performed_on=performed_on,
        note=note,
        flag=flag,
        reference=reference,
        reference_translations=translations,
        item=_answered_item(encounter, code),
        entered_by=actor.user,
        entered_at=now,
    )
    awaiting_refresh(encounter=encounter)
    if previous is not None:
        Result.objects.filter(pk=previous.pk).update(superseded_by=result)
        audit_record(
            actor=actor,
            action="supersede",
            object_type="result",
            object_id=previous.pk,
            patient_id=encounter.patient_id,
        )
    audit_record(
        actor=actor, action="create", object_type="result", object_id=result.pk, patient_id=encounter.patient_id
    )
    return result


def result_problems(*, encounter: Encounter, code, value, performed_on=None, note: str = "") -> dict:
    """Every problem with a result to enter, by field (`code`, `value`, `performed_on`, `note`)."""
    errors: dict = {}
    if isinstance(code, str):
        found: dict = {}
        check_results({"results": {code: value}}, found, sex=encounter.sex)
        messages = found.get("results", {}).get(code, []) if found else []
        if messages:
            errors["code" if code not in get_knowledge_base().vocabulary.results else "value"] = list(messages)
    if performed_on is not None:
        if performed_on > timezone.localdate():
            errors["performed_on"] = [_("The date is in the future.")]
        elif performed_on < encounter.visit_date:
            errors["performed_on"] = [_("The date is before the visit that ordered the test.")]
    note = note or ""
    if len(note) > 2000:
        errors["note"] = [_("Ensure this field has no more than 2000 characters.")]
    elif _control_characters(note):
        errors["note"] = [_("Control characters are not allowed.")]
    return errors


class NotAcknowledgeable(Exception):
    """The result cannot be acknowledged in its state (HTTP 409): normal, superseded or done already.
    `problems`: {result id: message} when several were asked for at once (results_acknowledge)."""

    def __init__(self, message, problems: dict | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or {}


@transaction.atomic
def result_acknowledge(*, actor: Actor, result: Result, note: str) -> Result:
    """A GP signs an abnormal result off with the action taken. Only the current result of a code, only
    an abnormal one, only once: anything else raises NotAcknowledgeable (409). The note is required."""
    note = (note or "").strip()
    problems = acknowledgement_note_problems(note)
    if problems:
        raise ValidationError({"note": problems})
    result = Result.objects.select_for_update().select_related("encounter").get(pk=result.pk)
    if result.acknowledged_at is not None:
        raise NotAcknowledgeable(_("This result has been acknowledged already."))
    if result.superseded_at is not None:
        raise NotAcknowledgeable(_("This result has been superseded by a newer value: acknowledge that one."))
    if result.flag not in ABNORMAL_FLAGS:
        raise NotAcknowledgeable(_("This result is within its reference: there is nothing to acknowledge."))
    result.acknowledged_at = timezone.now()
    result.acknowledged_by = actor.user
    result.acknowledgement_note = note
    result.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement_note"])
    audit_record(
        actor=actor,
        action="acknowledge",
        object_type="result",
        object_id=result.pk,
        patient_id=result.encounter.patient_id,
    )
    return result


def _ids_text(ids) -> str:
    return ", ".join(str(pk) for pk in ids)


def acknowledgement_note_problems(note: str) -> list[str]:
    """What is wrong with the note a GP signs an abnormal result off with: it is required."""
    note = (note or "").strip()
    if not note:
        return [_("Say what was done about this result.")]
    if len(note) > 2000:
        return [_("Ensure this field has no more than 2000 characters.")]
    if _control_characters(note):
        return [_("Control characters are not allowed.")]
    return []


def results_acknowledge_problems(*, encounter: Encounter, ids: list[int]) -> list[str]:
    """What is wrong with a list of result ids to acknowledge together: none, one listed twice, one that is
    not a result of this encounter (another encounter's, another clinic's, or none at all)."""
    if not ids:
        return [_("Choose at least one result.")]
    problems = []
    seen: set = set()
    twice = sorted({pk for pk in ids if pk in seen or seen.add(pk)})
    if twice:
        problems.append(_("Listed more than once: %(ids)s.") % {"ids": _ids_text(twice)})
    known = set(Result.objects.filter(encounter=encounter, pk__in=set(ids)).values_list("pk", flat=True))
    unknown = [pk for pk in dict.fromkeys(ids) if pk not in known]
    if unknown:
        problems.append(
            ngettext("No result %(ids)s in this encounter.", "No results %(ids)s in this encounter.", len(unknown))
            % {"ids": _ids_text(unknown)}
        )
    return problems


@transaction.atomic
def results_acknowledge(*, actor: Actor, encounter: Encounter, results, note: str) -> list[Result]:
    """Sign several abnormal results of one encounter off with one note (a blood panel with three values
    out of range): each exactly as result_acknowledge does, audited one by one, and all or none. `results`:
    Result rows or their ids. A list that names nothing, a result twice, or one not of this encounter is a
    ValidationError on `results`; a result that cannot be acknowledged in its state makes it a
    NotAcknowledgeable naming every such result (`problems`), and nothing is saved."""
    ids = [getattr(result, "pk", result) for result in results]
    _lock(encounter.pk)
    # Both at once: the list's problem does not hide the note's.
    problems = {
        field: found
        for field, found in (
            ("results", results_acknowledge_problems(encounter=encounter, ids=ids)),
            ("note", acknowledgement_note_problems(note)),
        )
        if found
    }
    if problems:
        raise ValidationError(problems)
    # Every row locked at once, in id order, so that two GPs signing overlapping panels off wait for each
    # other instead of each holding a row the other needs.
    rows = {row.pk: row for row in Result.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    acknowledged, conflicts = [], {}
    for pk in ids:
        try:
            acknowledged.append(result_acknowledge(actor=actor, result=rows[pk], note=note))
        except NotAcknowledgeable as error:
            conflicts[pk] = error.message
    if conflicts:
        # Raised out of the transaction: the ones acknowledged above are rolled back with their audit rows.
        raise NotAcknowledgeable(
            ngettext(
                "Nothing was acknowledged: result %(ids)s cannot be.",
                "Nothing was acknowledged: results %(ids)s cannot be.",
                len(conflicts),
            )
            % {"ids": _ids_text(conflicts)},
            problems=conflicts,
        )
    return acknowledged


_URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


def _raised(before: str, now: str) -> bool:
    return _URGENCY_RANK.get(now, 2) < _URGENCY_RANK.get(before, 2)


def _follow_up_decision(row, urgency: str) -> dict:
    """A decision of the workup followed carries over unless the results raised the row's urgency
    (a test declined as routine and now urgent is asked again)."""
    if row is None or _raised(row.urgency, urgency):
        return {"added_by_clinician": row.added_by_clinician, "ordered_at": row.ordered_at} if row is not None else {}
    return _decision_fields(row)


@transaction.atomic
def workup_review(*, actor: Actor, encounter: Encounter) -> tuple[Workup, bool]:
    """Store a follow-up workup computed from the encounter's findings plus its current results.

    Rows not in the workup it follows (the latest) are marked `is_new`; the others keep the decisions
    taken on them. The first workup is never rewritten. Returns (workup, created): the latest workup
    when it is already the follow-up of exactly these findings and results."""
    encounter = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    current = results_current(encounter)
    if not current:
        raise ValidationError({"results": [_("Enter at least one result before reviewing.")]})
    if not encounter.is_finalized:
        workup_current(actor=actor, encounter=encounter)
    results = {code: row.value for code, row in sorted(current.items())}
    case = dataclasses.replace(encounter_case(encounter), results=results)
    snapshot = {**case_snapshot(case), "results": results}
    previous = encounter.workups.prefetch_related("items", "referrals").order_by("-created_at", "-id").first()
    if previous is not None and previous.kind == WorkupKind.FOLLOW_UP and previous.case == snapshot:
        return previous, False
    result = evaluate(get_knowledge_base(DEFAULT_LANGUAGE), case)
    translations = {
        language: evaluate(get_knowledge_base(language), case) for language in LANGUAGES if language != DEFAULT_LANGUAGE
    }
    workup = _workup_store(
        actor=actor,
        encounter=encounter,
        kind=WorkupKind.FOLLOW_UP,
        case=snapshot,
        result=result,
        translations=translations,
        previous=previous,
    )
    audit_record(
        actor=actor, action="review", object_type="workup", object_id=workup.pk, patient_id=encounter.patient_id
    )
    return workup, True
