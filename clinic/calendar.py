"""Due dates for the loop (GUIDANCE 7). Pure: no database, no clock; the caller passes the dates.

A recommendation is due a number of working days after it started (the test accepted, the referral
issued): emergency the same day, urgent 3, routine 14 by default, a clinic may set its own. Working
days are Monday to Friday, less the clinic's holidays. Past its due date (due < today) it is overdue.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_DUE_DAYS = {"emergency": 0, "urgent": 3, "routine": 14}
URGENCY_ORDER = {"emergency": 0, "urgent": 1, "routine": 2}


def is_working_day(day: date, holidays: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The date `days` working days after `start` (0: `start` itself, whatever day it is)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, holidays):
            counted += 1
    return day


def due_date(
    *, start: date, urgency: str, holidays: Collection[date] = (), due_days: Mapping[str, int] | None = None
) -> date:
    """When a recommendation of this urgency started on `start` is due."""
    days = (due_days or DEFAULT_DUE_DAYS).get(urgency, DEFAULT_DUE_DAYS["routine"])
    return add_working_days(start, days, holidays)


def is_overdue(due: date, today: date) -> bool:
    return due < today


def clinic_due_days(clinic) -> dict[str, int]:
    return {
        "emergency": clinic.due_emergency_days,
        "urgent": clinic.due_urgent_days,
        "routine": clinic.due_routine_days,
    }


def local_date(moment: datetime, clinic) -> date:
    """The calendar day of `moment` in the clinic's time zone."""
    return moment.astimezone(ZoneInfo(clinic.time_zone)).date()
