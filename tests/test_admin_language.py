"""The admin in the reader's language, where the words are ours: the apps' names, the permissions Django names
in English when it makes them, and what our objects call themselves (titles, breadcrumbs, lists, history).
Django's own admin text is Django's translation; the installed packages' model names are theirs."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from referrals.models import Leaflet, Referral, Requisition
from tests.test_admin_scoping import staff_of
from tests.test_pages_language_sweep import (
    CYRILLIC_WORD,
    LATIN_WORD,
    build_record,
    leftovers,
    russian_gp,  # noqa: F401 (a fixture)
    visible_text,
)
from workups.models import Workup

# On the admin's index in Russian, the only Latin words left are these: Django's name, and the installed
# packages' apps and models (they bring no Russian of their own), and a member's own name.
THEIRS = (
    "Django",
    "Knox",
    "Auth tokens",
    "Axes",
    "Otp_Static",
    "Otp_Totp",
    "TOTP devices",
    "Static devices",
    "Access attempts",
    "Access failures",
    "Access logs",
    "Access attempt expirations",
)


def _reader(gp, language):
    staff = staff_of(gp.membership.clinic)
    staff.membership.language = language
    staff.membership.save()
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(staff)
    return client, staff


def _page(client, url, language):
    response = client.get(url)
    assert response.status_code == 200, url
    return visible_text(response.content.decode(), language)


def test_the_russian_admin_index_names_our_apps_and_models_in_russian(russian_gp):  # noqa: F811
    client, staff = _reader(russian_gp, "ru")
    text = _page(client, reverse("admin:index"), "ru")
    for name in ("Клиники и врачи", "Обследования", "Направления и документы", "Интеграция с МИС"):
        assert name in text
    found = leftovers(text, removed=[staff.get_full_name(), staff.first_name], allowed=THEIRS, pattern=LATIN_WORD)
    assert not found, found


def test_the_english_admin_index_has_no_russian(russian_gp):  # noqa: F811
    client, staff = _reader(russian_gp, "en")
    text = _page(client, reverse("admin:index"), "en")
    assert "Clinics and clinicians" in text and "EHR integration" in text
    found = leftovers(text, removed=[staff.get_full_name(), staff.first_name], allowed=(), pattern=CYRILLIC_WORD)
    assert not found, found


def test_a_members_permissions_are_shown_in_the_readers_language(russian_gp):  # noqa: F811
    client, staff = _reader(russian_gp, "ru")
    russian_gp.user_permissions.set(Permission.objects.filter(codename__in=["view_patient", "add_encounter"]))
    text = _page(client, reverse("admin:auth_user_change", args=[russian_gp.pk]), "ru")
    assert "Может просматривать: пациент" in text and "Может добавлять: приём" in text
    assert "Can view" not in text and "Can add" not in text


def test_a_superuser_chooses_permissions_by_their_names_in_the_readers_language(db):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.org", "Pass-word-123")
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(root)
    html = client.get(reverse("admin:auth_group_add")).content.decode()
    assert re.search(r"<option[^>]*>Клиники и врачи \| пациент \| Может изменять: пациент</option>", html)
    assert "Can change patient" not in html


@pytest.mark.parametrize("language", ["ru", "en"])
def test_our_objects_call_themselves_in_the_readers_language(russian_gp, language):  # noqa: F811
    record = build_record(russian_gp)
    gp = Client()
    gp.force_login(russian_gp)
    for document in ("requisition", "leaflet"):
        gp.post(f"/encounters/{record.encounters['urgent'].pk}/{document}/")
    client, _staff = _reader(russian_gp, language)
    expected = {
        Workup: ("Обследование", "Workup"),
        Referral: ("Направление", "Referral"),
        Requisition: ("Направление на исследования", "Requisition"),
        Leaflet: ("Памятка пациенту", "Patient leaflet"),
    }
    for model, (russian, english) in expected.items():
        document = model.objects.filter(encounter__clinic=russian_gp.membership.clinic).first()
        assert document is not None, model
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[document.pk])
        title = re.search(r"<title>(.*?)</title>", client.get(url).content.decode(), re.S).group(1)
        assert title.startswith(russian if language == "ru" else english), title
        pattern = LATIN_WORD if language == "ru" else CYRILLIC_WORD
        assert not pattern.search(title.split("|")[0]), title
