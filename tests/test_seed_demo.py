"""`seed_demo` makes the demo clinic and GP, and can be run again safely."""

from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command

from clinic.models import Clinic, Membership


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
    assert Clinic.objects.filter(name="Demo clinic").count() == 1
    assert Membership.objects.filter(user__username="demo", clinic__name="Demo clinic").count() == 1
    assert authenticate(username="demo", password="a-demo-password-9") is not None
    assert "password: a-demo-password-9" in output


def test_seed_demo_prints_a_random_password_when_none_is_given(db, monkeypatch):
    output = seed(monkeypatch)
    password = next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("password:"))
    assert len(password) >= 12
    assert authenticate(username="demo", password=password) is not None


def test_seed_demo_adds_another_clinic_with_its_gp(db, monkeypatch):
    seed(monkeypatch, "a-demo-password-9")
    seed(monkeypatch, "a-demo-password-9", clinic="North clinic", username="north")
    assert Membership.objects.get(user__username="north").clinic.name == "North clinic"
    assert Membership.objects.get(user__username="demo").clinic.name == "Demo clinic"


def test_a_weak_demo_password_is_refused_like_any_other(db, monkeypatch):
    import pytest
    from django.core.management.base import CommandError

    for weak in ("demo", "12345678", "password"):
        with pytest.raises(CommandError, match="DEMO_PASSWORD"):
            seed(monkeypatch, weak)
    assert not Membership.objects.filter(user__username="demo").exists()
