"""`seed_demo` makes the demo clinic and GP, and can be run again safely."""

from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command

from clinic.models import Clinic, Membership, Patient
from clinic.services import DEMO_CLINIC_NAME


def seed(monkeypatch, password=None, **options):
    if password:
        monkeypatch.setenv("DEMO_PASSWORD", password)
    else:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_uses_the_demo_password_and_is_idempotent(db, monkeypatch):
    seed(monkeypatch, "a-demo-password-9")
    output = seed(monkeypatch, "a-demo-password-9")
    assert Clinic.objects.filter(name=DEMO_CLINIC_NAME).count() == 1
    assert Membership.objects.filter(user__username="demo", clinic__name=DEMO_CLINIC_NAME).count() == 1
    assert authenticate(username="demo", password="a-demo-password-9") is not None
    assert "password: a-demo-password-9" in output


def test_the_demo_clinic_has_a_russian_name_for_its_russian_documents(db, monkeypatch):
    output = seed(monkeypatch, "a-demo-password-9")
    clinic = Membership.objects.get(user__username="demo").clinic
    assert clinic.name == "Поликлиника № 1 (демо)" and clinic.language == "ru"
    assert f"clinic:   {clinic.name}" in output


def test_a_demo_clinic_seeded_under_its_old_english_name_is_renamed_with_its_patients(db, monkeypatch):
    seed(monkeypatch, "a-demo-password-9", clinic="Demo clinic")  # as an earlier version seeded it
    consultations()
    old = Clinic.objects.get(name="Demo clinic")

    seed(monkeypatch, "a-demo-password-9")

    old.refresh_from_db()
    assert old.name == DEMO_CLINIC_NAME and Clinic.objects.count() == 1
    assert Membership.objects.get(user__username="demo").clinic == old
    assert Patient.objects.filter(clinic=old).count() == 3


def test_seed_demo_prints_a_random_password_when_none_is_given(db, monkeypatch):
    output = seed(monkeypatch)
    password = next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("password:"))
    assert len(password) >= 12
    assert authenticate(username="demo", password=password) is not None


def test_seed_demo_adds_another_clinic_with_its_gp(db, monkeypatch):
    seed(monkeypatch, "a-demo-password-9")
    seed(monkeypatch, "a-demo-password-9", clinic="North clinic", username="north")
    assert Membership.objects.get(user__username="north").clinic.name == "North clinic"
    assert Membership.objects.get(user__username="demo").clinic.name == DEMO_CLINIC_NAME


def test_a_weak_demo_password_is_refused_like_any_other(db, monkeypatch):
    import pytest
    from django.core.management.base import CommandError

    for weak in ("demo", "12345678", "password"):
        with pytest.raises(CommandError, match="DEMO_PASSWORD"):
            seed(monkeypatch, weak)
    assert not Membership.objects.filter(user__username="demo").exists()


def consultations(username="demo"):
    out = StringIO()
    call_command("seed_demo_consultations", stdout=out, username=username)
    return out.getvalue()


def test_the_demo_clinic_gets_an_urgent_an_emergency_and_a_watchful_example(db, monkeypatch):
    from clinic.models import AuditEvent
    from workups.models import Workup

    seed(monkeypatch, "a-demo-password-9")
    output = consultations()
    patients = Patient.objects.filter(clinic__name=DEMO_CLINIC_NAME).order_by("pk")
    assert [patient.family_name for patient in patients] == ["Иванова", "Смирнов", "Кузнецова"]
    assert "Иванова, Смирнов, Кузнецова" in output
    dispositions = [Workup.objects.filter(encounter__patient=patient).get().disposition for patient in patients]
    assert dispositions == ["urgent", "emergency", "observe"]
    # Made through the services as a GP's entries are, so the trail shows them too.
    ids = {patient.pk for patient in patients}
    assert set(AuditEvent.objects.filter(patient_id__in=ids).values_list("patient_id", flat=True)) == ids


def test_the_examples_go_only_into_a_clinic_with_no_patient_yet(db, monkeypatch):
    from clinic.models import Patient

    seed(monkeypatch, "a-demo-password-9")
    consultations()
    assert "none added" in consultations()
    assert Patient.objects.filter(clinic__name=DEMO_CLINIC_NAME).count() == 3
    # Another clinic in use (a patient of its own) is left as it is.
    seed(monkeypatch, "a-demo-password-9", clinic="North clinic", username="north")
    clinic = Clinic.objects.get(name="North clinic")
    Patient.objects.create(clinic=clinic, family_name="Орлов", given_name="Пётр", birth_date="1970-01-01", sex="male")
    assert "none added" in consultations("north")
    assert Patient.objects.filter(clinic=clinic).count() == 1


def test_the_examples_need_the_demo_gp_first(db):
    import pytest
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="seed_demo"):
        consultations("nobody")


def test_the_urgent_example_puts_the_loop_on_the_worklist(db, monkeypatch):
    # A first look at the worklist should show what it is for: results back and not yet signed off, and tests
    # still awaited, all from the urgent example; the other two are left for the GP to work through.
    from clinic.models import Patient
    from referrals.worklist import worklist_entries
    from workups.models import Decision, Result, WorkupItem

    seed(monkeypatch, "a-demo-password-9")
    consultations()
    urgent, emergency, watchful = Patient.objects.filter(clinic__name=DEMO_CLINIC_NAME).order_by("pk")
    results = Result.objects.filter(encounter__patient=urgent)
    assert sorted((result.code, result.flag) for result in results) == [
        ("res_nech_leukocytes", "high"),
        ("res_ua_nitrite", "positive"),
    ]
    assert all(result.acknowledged_at is None for result in results)
    accepted = WorkupItem.objects.filter(workup__encounter__patient=urgent, decision=Decision.ACCEPTED)
    assert accepted.count() >= 4
    untouched = WorkupItem.objects.filter(workup__encounter__patient__in=[emergency, watchful])
    assert not untouched.exclude(decision=Decision.PENDING).exists()
    worklist = worklist_entries(clinic=urgent.clinic)
    assert len(worklist["unacknowledged_results"]) == 2
    # Every accepted test but the two answered (the Nechiporenko test and the urinalysis) is still awaited.
    assert len(worklist["awaited_results"]) == accepted.count() - 2
