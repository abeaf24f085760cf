"""The clinic's worklist (GUIDANCE 7): what is awaited, open or unacknowledged, with due dates.

Reads only (the overdue marking is referrals.services.overdue_mark). A constant number of queries
whatever the number of rows. Everything is the caller's clinic's: another clinic's rows never appear.

- unacknowledged_results: current abnormal results not signed off. Due the working day after entry
  (GUIDANCE sets no interval: an abnormal result is read promptly); urgency that of the test it answers.
- awaited_results: accepted tests of each encounter's latest workup (initial or follow-up) that a result
  code can answer and no current result answers yet. Due from the day the test was accepted.
- open_referrals: issued or booked referrals. Due from the day the referral was issued.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from clinic.audit import Actor, audit_record
from clinic.calendar import URGENCY_ORDER, add_working_days, clinic_due_days, due_date, is_overdue, local_date
from clinic.models import ClinicHoliday
from referrals.models import OPEN_REFERRAL_STATUSES, Referral
from workups.localized import current_kb
from workups.models import ABNORMAL_FLAGS, Decision, Result, Workup, WorkupItem

# An abnormal result is to be acknowledged within this many working days of its entry.
ACKNOWLEDGE_WITHIN_DAYS = 1


def _patient(encounter) -> dict:
    return {"id": encounter.patient_id, "name": encounter.patient.full_name}


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(
        rows, key=lambda row: (not row["overdue"], URGENCY_ORDER.get(row["urgency"], 3), row["due"], row["id"])
    )


def worklist_rows(*, clinic, now=None) -> dict:
    """The worklist of `clinic` as of `now` (the current time by default); `due` as a date."""
    now = now or timezone.now()
    today = local_date(now, clinic)
    holidays = set(ClinicHoliday.objects.filter(clinic=clinic).values_list("date", flat=True))
    days = clinic_due_days(clinic)
    vocabulary = current_kb().vocabulary

    unacknowledged = []
    results = Result.objects.filter(
        encounter__clinic=clinic, superseded_at__isnull=True, acknowledged_at__isnull=True, flag__in=ABNORMAL_FLAGS
    ).select_related("encounter__patient", "item")
    for result in results:
        due = add_working_days(local_date(result.entered_at, clinic), ACKNOWLEDGE_WITHIN_DAYS, holidays)
        meta = vocabulary.results.get(result.code, {})
        unacknowledged.append(
            {
                "kind": "result",
                "id": result.pk,
                "encounter": result.encounter_id,
                "patient": _patient(result.encounter),
                "code": result.code,
                "name": meta.get("name", result.code),
                "value": result.value,
                "unit": meta.get("unit", ""),
                "flag": result.flag,
                "urgency": result.item.urgency if result.item_id else "routine",
                "due": due,
                "overdue": is_overdue(due, today),
                "overdue_at": result.overdue_at,
            }
        )

    answers: dict[str, set[str]] = {}
    for code, meta in vocabulary.results.items():
        for item in meta["items"]:
            answers.setdefault(item, set()).add(code)
    latest = Workup.objects.filter(encounter=OuterRef("workup__encounter")).order_by("-created_at", "-id").values("pk")
    items = list(
        WorkupItem.objects.filter(
            workup__encounter__clinic=clinic,
            decision=Decision.ACCEPTED,
            code__in=answers,
            workup_id=Subquery(latest[:1]),
        ).select_related("workup__encounter__patient")
    )
    entered: dict[int, set[str]] = {}
    if items:
        for encounter_id, code in Result.objects.filter(
            encounter_id__in={item.workup.encounter_id for item in items}, superseded_at__isnull=True
        ).values_list("encounter_id", "code"):
            entered.setdefault(encounter_id, set()).add(code)
    awaited = []
    for item in items:
        encounter = item.workup.encounter
        if answers[item.code] & entered.get(encounter.pk, set()):
            continue
        start = local_date(item.decided_at or item.workup.created_at, clinic)
        due = due_date(start=start, urgency=item.urgency, holidays=holidays, due_days=days)
        awaited.append(
            {
                "kind": "test",
                "id": item.pk,
                "encounter": encounter.pk,
                "patient": _patient(encounter),
                "code": item.code,
                "name": vocabulary.items.get(item.code, {}).get("name", item.code),
                "urgency": item.urgency,
                "workup": item.workup_id,
                "accepted_at": item.decided_at,
                "due": due,
                "overdue": is_overdue(due, today),
                "overdue_at": item.overdue_at,
            }
        )

    open_referrals = []
    for referral in Referral.objects.filter(clinic=clinic, status__in=OPEN_REFERRAL_STATUSES).select_related(
        "encounter__patient"
    ):
        start = local_date(referral.issued_at or referral.created_at, clinic)
        due = due_date(start=start, urgency=referral.urgency, holidays=holidays, due_days=days)
        open_referrals.append(
            {
                "kind": "referral",
                "id": referral.pk,
                "encounter": referral.encounter_id,
                "patient": _patient(referral.encounter),
                "specialty": referral.specialty,
                "name": vocabulary.specialties.get(referral.specialty, referral.specialty),
                "urgency": referral.urgency,
                "status": referral.status,
                "issued_at": referral.issued_at,
                "appointment_at": referral.appointment_at,
                "due": due,
                "overdue": is_overdue(due, today),
                "overdue_at": referral.overdue_at,
            }
        )
    return {
        "unacknowledged_results": _sorted(unacknowledged),
        "awaited_results": _sorted(awaited),
        "open_referrals": _sorted(open_referrals),
    }


def worklist_get(*, actor: Actor, now=None) -> dict:
    """The caller's clinic's worklist, audit-logged with every patient shown."""
    if actor.clinic is None:
        return {"unacknowledged_results": [], "awaited_results": [], "open_referrals": []}
    rows = worklist_rows(clinic=actor.clinic, now=now)
    patients = sorted({row["patient"]["id"] for group in rows.values() for row in group})
    audit_record(actor=actor, action="list", object_type="worklist", patient_ids=patients)
    return rows


def worklist_counts(*, actor: Actor, now=None) -> dict:
    """For the navigation badge: how many rows are overdue, and how many results unacknowledged.
    Audit-logged as a count (no patient is shown)."""
    if actor.clinic is None:
        return {"overdue": 0, "unacknowledged": 0}
    rows = worklist_rows(clinic=actor.clinic, now=now)
    audit_record(actor=actor, action="count", object_type="worklist")
    overdue = sum(row["overdue"] for group in rows.values() for row in group)
    unacknowledged = len(rows["unacknowledged_results"])
    # Each row needing attention once: an unacknowledged result that is also overdue is one thing to do.
    attention = unacknowledged + sum(
        row["overdue"] for name, group in rows.items() if name != "unacknowledged_results" for row in group
    )
    return {"overdue": overdue, "unacknowledged": unacknowledged, "attention": attention}
