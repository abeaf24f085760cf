"""Due dates (GUIDANCE 7): working days with weekends and the clinic's holidays left out. Fixed dates only."""

from datetime import UTC, date, datetime

import pytest

from clinic.calendar import add_working_days, clinic_due_days, due_date, is_overdue, is_working_day, local_date
from tests.factories import ClinicFactory

MONDAY = date(2024, 3, 4)
FRIDAY = date(2024, 3, 8)


def test_an_emergency_is_due_the_same_day_even_on_a_weekend():
    assert due_date(start=MONDAY, urgency="emergency") == MONDAY
    assert due_date(start=date(2024, 3, 9), urgency="emergency") == date(2024, 3, 9)


def test_urgent_is_three_working_days():
    assert due_date(start=MONDAY, urgency="urgent") == date(2024, 3, 7)
    assert due_date(start=FRIDAY, urgency="urgent") == date(2024, 3, 13)  # Mon, Tue, Wed
    assert due_date(start=date(2024, 3, 9), urgency="urgent") == date(2024, 3, 13)  # from a Saturday


def test_routine_is_fourteen_working_days():
    assert due_date(start=MONDAY, urgency="routine") == date(2024, 3, 22)


def test_holidays_are_not_working_days():
    holidays = {date(2024, 3, 11), date(2024, 3, 12)}
    assert due_date(start=FRIDAY, urgency="urgent", holidays=holidays) == date(2024, 3, 15)
    assert not is_working_day(date(2024, 3, 11), holidays) and is_working_day(date(2024, 3, 13), holidays)
    # The New Year holidays in Russia: 1-8 January 2024 (1 Jan is a Monday).
    new_year = {date(2024, 1, day) for day in range(1, 9)}
    assert add_working_days(date(2023, 12, 29), 3, new_year) == date(2024, 1, 11)


def test_a_clinic_sets_its_own_day_counts(db):
    clinic = ClinicFactory(due_urgent_days=2, due_routine_days=10, due_emergency_days=0)
    assert clinic_due_days(clinic) == {"emergency": 0, "urgent": 2, "routine": 10}
    assert due_date(start=MONDAY, urgency="urgent", due_days=clinic_due_days(clinic)) == date(2024, 3, 6)
    assert due_date(start=MONDAY, urgency="routine", due_days=clinic_due_days(clinic)) == date(2024, 3, 18)


def test_the_defaults_are_guidance_7(db):
    assert clinic_due_days(ClinicFactory()) == {"emergency": 0, "urgent": 3, "routine": 14}


def test_overdue_is_after_the_due_day():
    assert not is_overdue(MONDAY, MONDAY)
    assert is_overdue(MONDAY, date(2024, 3, 5))


def test_the_day_is_the_clinics(db):
    clinic = ClinicFactory(time_zone="Asia/Vladivostok")
    assert local_date(datetime(2024, 3, 4, 20, 0, tzinfo=UTC), clinic) == date(2024, 3, 5)


def test_negative_days_are_refused():
    with pytest.raises(ValueError):
        add_working_days(MONDAY, -1)
