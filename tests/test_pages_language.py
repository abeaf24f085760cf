"""The browser pages in Russian and English: translated text, local dates and numbers, the switch."""

import datetime
import re

import pytest
from django.test import Client

from clinic.models import Encounter, Patient
from tests.record_factories import encounter_of, patient_of, screened, workup_for


def page(client, url, language):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_pages_speak_the_language_asked_for(gp_web, gp):
    encounter = encounter_of(gp, patient=patient_of(gp, family_name="Иванова", given_name="Анна"), duration_days=21)
    workup_for(gp, encounter)
    patient = encounter.patient_id
    russian = {
        "/": "Зарегистрировать пациента",
        "/patients/new/": "Отчество",
        f"/patients/{patient}/": "Новый приём",
        f"/patients/{patient}/encounters/new/": "Витальные показатели",
        f"/encounters/{encounter.pk}/": "Сохранить черновик",
        f"/encounters/{encounter.pk}/workup/": "Завершить приём",
        f"/encounters/{encounter.pk}/workup/print/": "Анамнез и объективный осмотр",
    }
    english = [
        "Register a patient",
        "Patronymic (middle name)",
        "New encounter",
        "Vital signs",
        "Save draft",
        "Finalize encounter",
        "History and examination",
    ]
    for (url, text), english_text in zip(russian.items(), english, strict=True):
        ru = page(gp_web, url, "ru")
        assert '<html lang="ru">' in ru and text in ru and english_text not in ru, url
        en = page(gp_web, url, "en")
        assert '<html lang="en">' in en and english_text in en and text not in en, url
    record = page(gp_web, f"/encounters/{encounter.pk}/workup/print/", "ru")
    assert "01.03.2024" in record and "21 день" in record  # DD.MM.YYYY and a Russian plural


def test_an_unrecorded_pregnancy_reads_in_the_feminine_in_russian(gp_web, gp):
    encounter = encounter_of(gp, patient=patient_of(gp, sex="female"), pregnant=None)
    workup_for(gp, encounter)
    assert "<strong>беременность</strong> не указана" in page(gp_web, f"/encounters/{encounter.pk}/workup/print/", "ru")


def test_dates_are_day_first_in_english_too_never_month_first(gp_web, gp):
    """A GP reading 05/03/1980 cannot tell the 5th of March from the 3rd of May: English dates spell the month."""
    patient = patient_of(gp, family_name="Иванова", given_name="Анна", birth_date=datetime.date(1980, 5, 3))
    assert "born 3 May 1980" in page(gp_web, f"/patients/{patient.pk}/", "en")
    assert "03.05.1980" in page(gp_web, f"/patients/{patient.pk}/", "ru")
    listed = page(gp_web, "/", "en")
    assert "<td>3 May 1980</td>" in listed and "05/03/1980" not in listed


@pytest.mark.parametrize(
    ("days", "words"), [(1, "1 день"), (3, "3 дня"), (5, "5 дней"), (11, "11 дней"), (21, "21 день"), (22, "22 дня")]
)
def test_a_duration_in_days_has_the_russian_plural(gp_web, gp, days, words):
    encounter = encounter_of(gp, duration_days=days)
    workup_for(gp, encounter)  # the print view shows the record with its workup
    assert words in page(gp_web, f"/encounters/{encounter.pk}/workup/print/", "ru")


def test_a_decimal_comma_is_a_decimal_in_russian_and_shown_back_with_a_comma(gp_web, gp):
    patient = patient_of(gp)
    body = {
        "visit_date": "2024-03-01",
        "duration_days": "3",
        "temperature_c": "37,8",
        "heart_rate": "88",
        **{f"f_{code}": "yes" if value else "no" for code, value in screened().items()},
    }
    response = gp_web.post(f"/patients/{patient.pk}/encounters/new/", body, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 302
    encounter = Encounter.objects.get(patient=patient)
    assert encounter.temperature_c == pytest.approx(37.8)  # never 378
    form = page(gp_web, f"/encounters/{encounter.pk}/", "ru")
    assert re.search(r'name="temperature_c" value="37,8"', form) and 'inputmode="decimal"' in form
    assert 'value="37.8"' in page(gp_web, f"/encounters/{encounter.pk}/", "en")


def test_a_temperature_of_3_7_is_refused_beside_its_field_saying_to_check_the_comma(gp_web, gp):
    patient = patient_of(gp)
    body = {
        "visit_date": "2024-03-01",
        "duration_days": "3",
        "temperature_c": "3,7",
        **{f"f_{code}": "yes" if value else "no" for code, value in screened().items()},
    }
    response = gp_web.post(f"/patients/{patient.pk}/encounters/new/", body, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200 and not Encounter.objects.filter(patient=patient).exists()
    assert "проверьте запятую (37,2, а не 3,72)" in response.content.decode()


def test_the_patient_form_takes_the_russian_record_fields_in_russian_order(gp_web, gp):
    form = page(gp_web, "/patients/new/", "ru")
    names = re.findall(
        r'name="(family_name|given_name|middle_name|birth_date|sex|snils|oms_policy|insurer|address|'
        r'phone|identifier)"',
        form,
    )
    order = list(dict.fromkeys(names))
    assert order == [
        "family_name",
        "given_name",
        "middle_name",
        "birth_date",
        "sex",
        "snils",
        "oms_policy",
        "insurer",
        "address",
        "phone",
        "identifier",
    ]
    assert re.search(r"<fieldset[^>]*>\s*<legend>Пол <span class=\"required\">\(обязательно\)</span></legend>", form)
    body = {
        "family_name": "Петров",
        "given_name": "Иван",
        "middle_name": "Сергеевич",
        "birth_date": "1970-01-01",
        "sex": "male",
        "snils": "112-233-445 95",
        "oms_policy": "1234 5678 9012 3456",
        "insurer": "СОГАЗ-Мед",
        "address": "г. Тверь, ул. Советская, д. 1",
    }
    refused = gp_web.post("/patients/new/", {**body, "snils": "112-233-445 96"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert refused.status_code == 200 and "Контрольное число СНИЛС" in refused.content.decode()
    assert gp_web.post("/patients/new/", body, HTTP_ACCEPT_LANGUAGE="ru").status_code == 302
    patient = Patient.objects.get(family_name="Петров")
    assert (patient.middle_name, patient.snils, patient.oms_policy) == ("Сергеевич", "11223344595", "1234567890123456")


def test_the_language_switch_is_remembered_and_marks_the_current_language(gp_web, gp):
    before = page(gp_web, "/", "ru")
    assert 'href="#main"' in before and 'id="main"' in before and "Перейти к содержимому" in before
    assert re.search(r'value="ru"[^>]*aria-current="true"', before)
    response = gp_web.post("/language/", {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    after = page(gp_web, "/", "ru")  # the GP's choice wins over the browser's
    assert '<html lang="en">' in after and re.search(r'value="en"[^>]*aria-current="true"', after)


def test_the_login_page_has_the_switch_too(client):
    login = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "language-switch" in login and "<h1>Log in</h1>" in login
    client.post("/language/", {"language": "ru", "next": "/accounts/login/"})
    assert "<h1>Вход</h1>" in client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.parametrize(
    ("days", "words"),
    [(14, "14 дней (2 недели)"), (21, "21 день (3 недели)"), (35, "35 дней (5 недель)"), (10, "10 дней")],
)
def test_a_long_duration_is_also_given_in_weeks_with_the_russian_plural(gp_web, gp, days, words):
    encounter = encounter_of(gp, duration_days=days)
    workup_for(gp, encounter)
    text = page(gp_web, f"/encounters/{encounter.pk}/workup/print/", "ru")
    assert words in text
    if days < 14:
        assert f"{words} (" not in text


def test_registering_a_likely_duplicate_shows_the_existing_patient_first(gp_web, gp):
    existing = patient_of(
        gp, family_name="Петров", given_name="Иван", birth_date="1970-01-01", name_search="петров иван"
    )
    body = {"family_name": "Петров", "given_name": "Иван", "birth_date": "1970-01-01", "sex": "male"}

    warned = gp_web.post("/patients/new/", body, HTTP_ACCEPT_LANGUAGE="ru")
    assert warned.status_code == 200
    text = warned.content.decode()
    assert f'href="/patients/{existing.pk}/"' in text and 'name="allow_duplicate"' in text
    assert "совпадают: ФИО и дата рождения</strong>" in text  # what matched, exactly
    assert Patient.objects.filter(family_name="Петров").count() == 1

    registered = gp_web.post("/patients/new/", {**body, "allow_duplicate": "1"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert registered.status_code == 302
    assert Patient.objects.filter(family_name="Петров").count() == 2


def test_a_duplicate_by_snils_says_so_and_offers_no_registering_anyway(gp_web, gp):
    # A SNILS is one person's: "register anyway" would only be refused when saving.
    existing = patient_of(gp, family_name="Иванова", given_name="Мария", snils="11223344595")
    body = {
        "family_name": "Соколов",
        "given_name": "Пётр",
        "birth_date": "1965-02-03",
        "sex": "male",
        "snils": "112-233-445 95",
    }
    text = gp_web.post("/patients/new/", body, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert f'href="/patients/{existing.pk}/"' in text and "совпадают: СНИЛС</strong>" in text
    assert 'name="allow_duplicate"' not in text and "исправьте номер" in text
    assert not Patient.objects.filter(family_name="Соколов").exists()


def test_downloads_are_named_by_kind_number_date_and_specialty_never_the_patient(gp_web, gp):
    from referrals import services as referral_services
    from tests.record_factories import actor_for
    from workups.models import Decision
    from workups.services import recommendation_decide

    encounter = encounter_of(
        gp,
        patient=patient_of(gp, family_name="Сидорова"),
        findings=screened({"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}),
    )
    workup = workup_for(gp, encounter)
    row = workup.referrals.first()
    recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    referral = referral_services.referral_create(actor=actor_for(gp), encounter=encounter, recommendation=row)
    referral_services.document_render(kind="referral", pk=referral.pk, claimant="test:1:names")

    response = gp_web.get(f"/referrals/{referral.pk}/pdf/")

    disposition = response["Content-Disposition"]
    assert f"{referral.pk:06d}" in disposition and row.specialty in disposition
    assert "Сидорова" not in disposition and "sidorova" not in disposition.lower()


@pytest.mark.parametrize(
    "language, words", [("ru", "Произошла ошибка"), ("en", "Something went wrong")], ids=["ru", "en"]
)
def test_a_server_error_page_speaks_the_language_too(rf, language, words):
    from django.utils import translation
    from django.views.defaults import server_error

    # Django renders it with no context at all, whatever failed: the page may need nothing from the request.
    with translation.override(language):
        response = server_error(rf.get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert f'<html lang="{language}">' in page and words in page


@pytest.mark.parametrize(
    "language, words",
    [("ru", "Не удалось прочитать запрос"), ("en", "The request could not be read")],
    ids=["ru", "en"],
)
def test_a_form_sent_in_another_encoding_is_a_bad_request_page_not_a_server_error(db, language, words):
    # Django reads only UTF-8 forms; its own 400 page then read the form again for the CSRF token, failed the
    # same way, and the answer was a bare 500, to anyone, logged in or not.
    browser = Client(enforce_csrf_checks=True)
    browser.get("/accounts/login/")
    response = browser.post(
        "/accounts/login/",
        "q=x",
        content_type="application/x-www-form-urlencoded; charset=utf-16",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert f'<html lang="{language}">' in page and words in page


@pytest.mark.parametrize(
    "language, said, never", [("ru", "Добавлено врачом", "Added by"), ("en", "Added by the clinician", "Добавлено")]
)
def test_a_test_added_by_hand_without_a_reason_says_so_in_the_readers_language(gp_web, gp, language, said, never):
    from tests.record_factories import actor_for
    from workups.services import workup_item_add

    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    workup_item_add(actor=actor_for(gp), workup=workup, code="ecg")
    page = gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    row = page.split('data-code="ecg"')[1].split("</li>")[0]
    assert said in row and never not in page
