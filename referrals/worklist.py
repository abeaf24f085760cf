"""The clinic's worklist (GUIDANCE 7): what is awaited, open or unacknowledged, with due dates.

Reads only (the overdue marking is referrals.services.overdue_mark). A constant number of queries
whatever the number of rows. Everything is the caller's clinic's: another clinic's rows never appear.

- unacknowledged_results: current abnormal results not signed off. Due the working day after entry
  (GUIDANCE sets no interval: an abnormal result is read promptly); urgency that of the test it answers.
- awaited_results: accepted tests of each encounter's latest workup (initial or follow-up) that a result
  code can answer and no current result answers yet (WorkupItem.awaiting_since, kept by workups.services). Due
  from the day the test was accepted.
- open_referrals: issued or booked referrals. Due from the day the referral was issued; a booked one also on its
  appointment's day, whichever comes first (after it, the specialist's conclusion or a no-show is to be recorded).

A clinic can have thousands of open items, so the worklist is read in two steps: `worklist_entries` reads
only the columns that place a row (its id, urgency and start day), packs each into one int and sorts them;
`worklist_show` reads what a row shows (patient, code, value...) for the rows of one page only. The badge
(`worklist_counts`) counts in the database and builds no row at all.
"""

from __future__ import annotations

import bisect
import datetime
from functools import reduce
from operator import or_
from zoneinfo import ZoneInfo

from django.db.models import Case, Count, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from clinic.audit import Actor, audit_record
from clinic.calendar import DEFAULT_DUE_DAYS, URGENCY_ORDER, add_working_days, clinic_due_days, is_working_day
from clinic.models import ClinicHoliday, Encounter, EncounterStatus
from referrals.models import OPEN_REFERRAL_STATUSES, Referral, ReferralStatus
from workups.localized import current_kb
from workups.models import ABNORMAL_FLAGS, Result, Workup, WorkupItem

# An abnormal result is to be acknowledged within this many working days of its entry.
ACKNOWLEDGE_WITHIN_DAYS = 1

# Rows a page shows (the web page's sections, the API's pages by default), and the most the API gives at once.
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

SECTIONS = ("unacknowledged_results", "awaited_results", "open_referrals")
KINDS = {"unacknowledged_results": "result", "awaited_results": "test", "open_referrals": "referral"}
# Between rows of different kinds that sort alike, the page's order: results, then tests, then referrals.
KIND_RANK = {"result": 0, "test": 1, "referral": 2}
_KIND_OF_RANK = {rank: kind for kind, rank in KIND_RANK.items()}

# A lean entry is one int, so that 10,000 of them sort in a few milliseconds (tuples took 17): from the highest
# bits down, overdue first (0), the urgency's rank, the due date's ordinal, the kind's rank, the id. The order is
# total (kind and id last), so a page never repeats or skips a row.
_ID_BITS, _KIND_BITS, _DUE_BITS, _URGENCY_BITS = 40, 2, 20, 2
_NOT_OVERDUE = 1 << (_URGENCY_BITS + _DUE_BITS + _KIND_BITS + _ID_BITS)


def _prefix(*, overdue: bool, urgency: str, due: datetime.date, kind: str) -> int:
    packed = (int(not overdue) << _URGENCY_BITS) | URGENCY_ORDER.get(urgency, 3)
    packed = (packed << _DUE_BITS) | due.toordinal()
    return ((packed << _KIND_BITS) | KIND_RANK[kind]) << _ID_BITS


def entry_parts(entry: int) -> tuple[bool, datetime.date, str, int]:
    """(overdue, due, kind, id) of a lean entry."""
    pk = entry & ((1 << _ID_BITS) - 1)
    entry >>= _ID_BITS
    kind = _KIND_OF_RANK[entry & ((1 << _KIND_BITS) - 1)]
    entry >>= _KIND_BITS
    due = datetime.date.fromordinal(entry & ((1 << _DUE_BITS) - 1))
    return entry >> (_DUE_BITS + _URGENCY_BITS) == 0, due, kind, pk


def overdue_count(entries: list[int]) -> int:
    """How many of these sorted entries are overdue (they come first)."""
    return bisect.bisect_left(entries, _NOT_OVERDUE)


class _Calendar:
    """A clinic's due dates as of one day. Thousands of rows start on hundreds of days: `prepare` lists the
    working days those days need once, and a due date is then a lookup in it, not a walk through the calendar
    (a walk each took 95 ms for 10,000 rows)."""

    def __init__(self, *, clinic, now):
        self.zone = ZoneInfo(clinic.time_zone)
        self.today = now.astimezone(self.zone).date()
        self.holidays = set(ClinicHoliday.objects.filter(clinic=clinic).values_list("date", flat=True))
        self.days = clinic_due_days(clinic)
        self._working: list[datetime.date] = []
        self._due: dict[tuple[datetime.date, str | None], datetime.date] = {}

    def prepare(self, first: datetime.date, last: datetime.date) -> None:
        """The working days from `first` until enough of them follow `last` for any due date."""
        need = max(*self.days.values(), ACKNOWLEDGE_WITHIN_DAYS)
        working, day, after = [], first, 0
        while day <= last or after <= need:
            if is_working_day(day, self.holidays):
                working.append(day)
                after += day > last
            day += datetime.timedelta(days=1)
        self._working, self._last = working, last

    def _add(self, day: datetime.date, days: int) -> datetime.date:
        working = self._working
        if days == 0 or not working or not working[0] <= day <= self._last:
            return add_working_days(day, days, self.holidays)
        return working[bisect.bisect_right(working, day) + days - 1]

    def due_of_day(self, day: datetime.date, urgency: str | None) -> datetime.date:
        """`urgency` None: an abnormal result's acknowledgement."""
        key = (day, urgency)
        due = self._due.get(key)
        if due is None:
            if urgency is None:
                days = ACKNOWLEDGE_WITHIN_DAYS
            else:
                days = self.days.get(urgency, DEFAULT_DUE_DAYS["routine"])
            due = self._due[key] = self._add(day, days)
        return due

    def overdue_before(self, urgency: str | None) -> datetime.datetime:
        """The moment before which whatever started is overdue today. A due date never falls as its start
        moves later, so the rows overdue are exactly those started before the first day whose due date is
        not past: the database can count them without building a row."""
        day = self.today
        for _ in range(3660):  # years of holidays could not hold a due date back further
            earlier = day - datetime.timedelta(days=1)
            if self.due_of_day(earlier, urgency) < self.today:
                break
            day = earlier
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=self.zone)


def _unacknowledged(clinic):
    # The partial index result_unacknowledged holds exactly these rows.
    return Result.objects.filter(
        clinic=clinic, superseded_at__isnull=True, acknowledged_at__isnull=True, flag__in=ABNORMAL_FLAGS
    ).order_by()  # no sort: the rows are sorted by their due dates after


def _awaited(clinic):
    """Accepted tests awaiting their results: kept up to date by workups.services.awaiting_refresh, read off the
    partial index workup_item_awaiting (open rows only)."""
    return WorkupItem.objects.filter(clinic=clinic, awaiting_since__isnull=False).order_by()


def _open_referrals(clinic):
    return Referral.objects.filter(clinic=clinic, status__in=OPEN_REFERRAL_STATUSES).order_by()


def _booked_appointment():
    """A booked referral's appointment (None for one issued and not booked). Its day is due too: from the day
    after, the GP records the specialist's conclusion or that the patient did not attend. An appointment later
    than the referral's own due date leaves that date standing."""
    return Case(When(status=ReferralStatus.BOOKED, then=F("appointment_at")), output_field=DateTimeField())


def worklist_entries(*, clinic, now=None) -> dict[str, list[int]]:
    """Every open row of `clinic` as of `now`, as sorted lean entries (entry_parts reads one): three queries of
    three columns (the start as the clinic's calendar day), whatever the number of rows."""
    calendar = _Calendar(clinic=clinic, now=now or timezone.now())

    def day(moment):
        return TruncDate(moment, tzinfo=calendar.zone)

    results = list(_unacknowledged(clinic).values_list("pk", day("entered_at"), "item__urgency"))
    tests = list(_awaited(clinic).values_list("pk", day("awaiting_since"), "urgency"))
    referrals = list(
        _open_referrals(clinic).values_list(
            "pk", day(Coalesce("issued_at", "created_at")), "urgency", day(_booked_appointment())
        )
    )
    starts = {row[1] for rows in (results, tests, referrals) for row in rows}
    if starts:
        calendar.prepare(min(starts), max(starts))

    def entries(rows, kind):
        # Rows share (start day, urgency) pairs: each pair's due date and sort key worked out once, then each row's
        # entry in one comprehension (a loop testing each row's pair took a third more).
        prefixes: dict[tuple, int] = {}
        for start, urgency, *appointment in {row[1:] for row in rows}:
            due = calendar.due_of_day(start, None if kind == "result" else urgency)
            if appointment and appointment[0] is not None:
                due = min(due, appointment[0])
            shown = urgency or "routine"  # a result without its test: routine
            prefixes[(start, urgency, *appointment)] = _prefix(
                overdue=due < calendar.today, urgency=shown, due=due, kind=kind
            )
        made = [prefixes[row[1:]] | row[0] for row in rows]
        made.sort()
        return made

    return {
        "unacknowledged_results": entries(results, "result"),
        "awaited_results": entries(tests, "test"),
        "open_referrals": entries(referrals, "referral"),
    }


def _patient_name(values: dict, prefix: str) -> str:
    parts = (values[f"{prefix}family_name"], values[f"{prefix}given_name"], values[f"{prefix}middle_name"])
    return " ".join(part for part in parts if part)  # as Patient.full_name


def _patient_columns(prefix: str) -> list[str]:
    return [f"{prefix}id", f"{prefix}family_name", f"{prefix}given_name", f"{prefix}middle_name"]


def _details(kind: str, ids: list[int]) -> dict[int, dict]:
    """What the rows of one kind show, by id: one query of the columns shown (no JSON column)."""
    if not ids:
        return {}
    vocabulary = current_kb().vocabulary
    shown = {}
    if kind == "result":
        patient = "encounter__patient__"
        for values in Result.objects.filter(pk__in=ids).values(
            "pk", "encounter_id", "code", "value_number", "value_bool", "flag", "overdue_at", "item__urgency",
            *_patient_columns(patient),
        ):  # fmt: skip
            meta = vocabulary.results.get(values["code"], {})
            value = values["value_bool"] if values["value_bool"] is not None else values["value_number"]
            shown[values["pk"]] = {
                "encounter": values["encounter_id"],
                "patient": {"id": values[f"{patient}id"], "name": _patient_name(values, patient)},
                "code": values["code"],
                "name": meta.get("name", values["code"]),
                "value": value,
                "unit": meta.get("unit", ""),
                "flag": values["flag"],
                "urgency": values["item__urgency"] or "routine",
                "overdue_at": values["overdue_at"],
            }
    elif kind == "test":
        patient = "workup__encounter__patient__"
        for values in WorkupItem.objects.filter(pk__in=ids).values(
            "pk", "workup__encounter_id", "code", "urgency", "workup_id", "decided_at", "overdue_at",
            *_patient_columns(patient),
        ):  # fmt: skip
            shown[values["pk"]] = {
                "encounter": values["workup__encounter_id"],
                "patient": {"id": values[f"{patient}id"], "name": _patient_name(values, patient)},
                "code": values["code"],
                "name": vocabulary.items.get(values["code"], {}).get("name", values["code"]),
                "urgency": values["urgency"],
                "workup": values["workup_id"],
                "accepted_at": values["decided_at"],
                "overdue_at": values["overdue_at"],
            }
    else:
        patient = "encounter__patient__"
        for values in Referral.objects.filter(pk__in=ids).values(
            "pk", "encounter_id", "specialty", "urgency", "status", "issued_at", "appointment_at", "overdue_at",
            *_patient_columns(patient),
        ):  # fmt: skip
            shown[values["pk"]] = {
                "encounter": values["encounter_id"],
                "patient": {"id": values[f"{patient}id"], "name": _patient_name(values, patient)},
                "specialty": values["specialty"],
                "name": vocabulary.specialties.get(values["specialty"], values["specialty"]),
                "urgency": values["urgency"],
                "status": values["status"],
                "issued_at": values["issued_at"],
                "appointment_at": values["appointment_at"],
                "overdue_at": values["overdue_at"],
            }
    return shown


def _passed(status, appointment, *, zone, today) -> bool:
    return bool(status == ReferralStatus.BOOKED and appointment and appointment.astimezone(zone).date() < today)


def appointment_passed(referral, *, now=None) -> bool:
    """Whether a referral is booked and its appointment's day (its clinic's) is over: the specialist's conclusion,
    or that the patient did not attend, is to be recorded."""
    zone = ZoneInfo(referral.clinic.time_zone)
    today = (now or timezone.now()).astimezone(zone).date()
    return _passed(referral.status, referral.appointment_at, zone=zone, today=today)


def worklist_rows_of(entries, *, clinic, now=None) -> list[dict]:
    """The rows of these entries, in their order: a query per kind among them (no audit: the callers do). A
    referral's `appointment_passed`: booked, and its appointment's day (the clinic's) is over with no conclusion
    recorded."""
    zone = ZoneInfo(clinic.time_zone)
    today = (now or timezone.now()).astimezone(zone).date()
    parts = [entry_parts(entry) for entry in entries]
    ids: dict[str, list[int]] = {kind: [] for kind in KIND_RANK}
    for _, _, kind, pk in parts:
        ids[kind].append(pk)
    details = {kind: _details(kind, kind_ids) for kind, kind_ids in ids.items()}
    rows = []
    for overdue, due, kind, pk in parts:
        shown = details[kind].get(pk)
        if shown is None:  # closed between the two reads
            continue
        row = {"kind": kind, "id": pk, "due": due, "overdue": overdue} | shown
        if kind == "referral":
            row["appointment_passed"] = _passed(shown["status"], shown["appointment_at"], zone=zone, today=today)
        rows.append(row)
    return rows


def worklist_rows(*, clinic, now=None) -> dict:
    """Every row of the worklist of `clinic` as of `now` (the current time by default), `due` as a date: for the
    overdue task, which needs them all; a page shows worklist_show's."""
    entries = worklist_entries(clinic=clinic, now=now)
    rows = worklist_rows_of([entry for section in SECTIONS for entry in entries[section]], clinic=clinic, now=now)
    return {section: [row for row in rows if row["kind"] == KINDS[section]] for section in SECTIONS}


def worklist_get(*, actor: Actor, now=None) -> dict[str, list[int]]:
    """The caller's clinic's worklist as sorted lean entries, to page (nothing is shown yet, so nothing is
    audited: worklist_show is, with the patients of the page)."""
    if actor.clinic is None:
        return {section: [] for section in SECTIONS}
    return worklist_entries(clinic=actor.clinic, now=now)


def worklist_show(*, actor: Actor, entries, now=None) -> list[dict]:
    """The rows of these entries (a page), audit-logged with the patients they show."""
    rows = worklist_rows_of(entries, clinic=actor.clinic, now=now) if actor.clinic is not None else []
    patients = sorted({row["patient"]["id"] for row in rows})
    audit_record(actor=actor, action="list", object_type="worklist", patient_ids=patients)
    return rows


def worklist_counts(*, actor: Actor, now=None) -> dict:
    """For the navigation badge: how many rows are overdue, and how many results unacknowledged. Counted in
    the database (a query per section, whatever the number of rows). Audit-logged as a count (no patient is
    shown)."""
    if actor.clinic is None:
        return {"overdue": 0, "unacknowledged": 0, "attention": 0}
    clinic = actor.clinic
    calendar = _Calendar(clinic=clinic, now=now or timezone.now())

    def overdue(start) -> Q:
        # Any urgency other than emergency and urgent is due as routine (clinic.calendar.due_date).
        return reduce(
            or_,
            (
                Q(urgency="emergency", **{f"{start}__lt": calendar.overdue_before("emergency")}),
                Q(urgency="urgent", **{f"{start}__lt": calendar.overdue_before("urgent")}),
                ~Q(urgency__in=["emergency", "urgent"]) & Q(**{f"{start}__lt": calendar.overdue_before("routine")}),
            ),
        )

    results = _unacknowledged(clinic).aggregate(
        all=Count("pk"), overdue=Count("pk", filter=Q(entered_at__lt=calendar.overdue_before(None)))
    )
    tests = _awaited(clinic).aggregate(overdue=Count("pk", filter=overdue("awaiting_since")))
    # A booked referral whose appointment's day is over is overdue too, whenever it was issued.
    today_began = datetime.datetime.combine(calendar.today, datetime.time.min, tzinfo=calendar.zone)
    referrals = (
        _open_referrals(clinic)
        .alias(start=Coalesce("issued_at", "created_at"))
        .aggregate(
            overdue=Count(
                "pk",
                filter=overdue("start") | Q(status=ReferralStatus.BOOKED, appointment_at__lt=today_began),
            )
        )
    )
    audit_record(actor=actor, action="count", object_type="worklist")
    # Each row needing attention once: an unacknowledged result that is also overdue is one thing to do.
    return {
        "overdue": results["overdue"] + tests["overdue"] + referrals["overdue"],
        "unacknowledged": results["all"],
        "attention": results["all"] + tests["overdue"] + referrals["overdue"],
    }


# -- encounters left as drafts -------------------------------------------------------------------


def encounters_left_open(*, actor: Actor, now=None) -> QuerySet[Encounter]:
    """The caller's clinic's encounters still drafts after their visit day (the clinic's day), oldest first: a
    consultation nobody finalized, whose workup may never have been acted on. Read off the partial index
    encounter_draft (drafts only), each with its patient and its latest workup's disposition (None before any
    workup); page it, then audit the page with encounters_left_open_shown."""
    if actor.clinic is None:
        return Encounter.objects.none()
    clinic = actor.clinic
    today = (now or timezone.now()).astimezone(ZoneInfo(clinic.time_zone)).date()
    latest = Workup.objects.filter(encounter=OuterRef("pk")).order_by("-created_at", "-id").values("disposition")[:1]
    return (
        Encounter.objects.filter(clinic=clinic, status=EncounterStatus.DRAFT, visit_date__lt=today)
        .select_related("patient")
        .annotate(disposition=Subquery(latest))
        .order_by("visit_date", "id")
    )


def encounters_left_open_shown(*, actor: Actor, encounters) -> None:
    audit_record(
        actor=actor,
        action="list",
        object_type="encounters_left_open",
        patient_ids=sorted({encounter.patient_id for encounter in encounters}),
    )
