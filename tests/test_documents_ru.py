"""The Russian documents, rendered in-process and read back with pypdf: the referral on form 057/у,
the requisition (one направление per kind of study), the patient leaflet; drafts and issued letters."""

import datetime
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from pypdf import PdfReader

from clinic.calendar import add_working_days
from clinic.models import Clinic, ClinicHoliday, Membership
from referrals import documents, services
from referrals.models import Leaflet, PdfStatus, Referral, Requisition
from tests.factories import MOSCOW_POLYCLINIC, ClinicFactory, MembershipFactory
from tests.record_factories import actor_for, clinic_local, encounter_of, patient_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide, workup_item_add

pytestmark = pytest.mark.django_db

VISIT = datetime.date(2026, 11, 30)
# Latin words a Russian document may carry: "cito" and the units it prints.
LATIN_ALLOWED = {"cito"}
DEMO_FINDINGS = {
    "loc_lumbar": True,
    "sx_leg_pain": True,
    "sx_tingling": True,
    "ex_straight_leg_raise_positive": True,
    "ex_reflexes_reduced": True,
    "hx_osteochondrosis": False,
}


def english_date(day) -> str:
    return f"{day.day} {day:%B %Y}"


def pdf_pages(document) -> list[str]:
    document.refresh_from_db()
    assert document.pdf_status == PdfStatus.READY, document.pdf_error
    with document.pdf_file.open("rb") as handle:
        return [page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages]


def flat(pages) -> str:
    return " ".join(" ".join(pages).split())


def latin_words(text: str) -> set[str]:
    return {word for word in re.findall(r"[A-Za-z]{2,}", text) if word.lower() not in LATIN_ALLOWED}


def render(document) -> str:
    kind = {Referral: "referral", Requisition: "requisition", Leaflet: "leaflet"}[type(document)]
    return services.document_render(kind=kind, pk=document.pk, claimant=f"test:{id(document)}")


def keep_page_images(document, name):
    """With SCREENSHOT_DIR set, keep page images (pdftoppm -r 60) for the documentation."""
    target = os.environ.get("SCREENSHOT_DIR")
    if target and shutil.which("pdftoppm"):
        Path(target).mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "60", "-png", document.pdf_file.path, str(Path(target) / name)], check=True)


@pytest.fixture
def ru_gp(db):
    """A участковый терапевт of a Russian polyclinic in Moscow time."""
    clinic = ClinicFactory(**MOSCOW_POLYCLINIC)
    membership = MembershipFactory(
        clinic=clinic, user__username="gp_olga", full_name="Петрова Анна Сергеевна", position="врач-терапевт участковый"
    )
    return membership.user


@pytest.fixture
def demo(ru_gp):
    """Иванова Мария Петровна, 45: lumbar numbness with leg pain, positive Lasègue, reduced reflexes;
    every red flag answered "no"; an accepted (urgent) neurology referral."""
    patient = patient_of(
        ru_gp,
        family_name="Иванова",
        given_name="Мария",
        middle_name="Петровна",
        sex="female",
        birth_date=datetime.date(1981, 3, 12),
        address="г. Москва, ул. Ленина, д. 1, кв. 5",
        snils="11223344595",
        oms_policy="7712345678901234",
        insurer="АО «СОГАЗ-Мед»",
    )
    encounter = encounter_of(
        ru_gp,
        patient=patient,
        visit_date=VISIT,
        duration_days=14,
        pregnant=False,
        chief_complaint="Онемение в пояснице, боль отдаёт в левую ногу",
        temperature_c=37.8,
        heart_rate=78,
        systolic_bp=128,
        diastolic_bp=82,
        findings=screened(DEMO_FINDINGS),
    )
    workup = workup_for(ru_gp, encounter)
    actor = actor_for(ru_gp)
    neurology = workup.referrals.get(specialty="neurology")
    recommendation_decide(actor=actor, recommendation=neurology, decision=Decision.ACCEPTED)
    for code in ("mri_lumbar_spine", "lab_cbc"):
        recommendation_decide(actor=actor, recommendation=workup.items.get(code=code), decision=Decision.ACCEPTED)
    return {"gp": ru_gp, "actor": actor, "encounter": encounter, "workup": workup, "neurology": neurology}


def test_a_russian_referral_follows_form_057u_with_every_field_and_no_english_word(demo):
    referral = services.referral_create(
        actor=demo["actor"],
        encounter=demo["encounter"],
        recommendation=demo["neurology"],
        question="Радикулопатия L5? Показано ли оперативное лечение?",
    )
    assert referral.language == "ru" and referral.icd10 == "M54.1" and referral.diagnosis == "Радикулопатия"
    assert render(referral) == "rendered"
    pages = pdf_pages(referral)
    text = flat(pages)
    number = f"{referral.pk:06d}"
    for expected in [
        "ГБУЗ «Городская поликлиника № 3",
        "ОГРН 1027700132195",
        "г. Москва, ул. Садовая, д. 12",
        "Учётная форма № 057/у",
        f"НАПРАВЛЕНИЕ № {number}",
        f"от {clinic_local(referral.created_at, referral.clinic):%d.%m.%Y}",
        "Форма оказания медицинской помощи неотложная",
        "к врачу-неврологу",
        "Иванова Мария Петровна",
        "12.03.1981",
        "женский",
        "г. Москва, ул. Ленина, д. 1, кв. 5",
        "112-233-445 95",
        "7712345678901234",
        "АО «СОГАЗ-Мед»",
        "M54.1 — Радикулопатия",
        referral.reason,
        "Радикулопатия L5? Показано ли оперативное лечение?",
        "Онемение в пояснице, боль отдаёт в левую ногу",
        "длительность: 14 дней",
        "положительный симптом Ласега",  # after «Данные осмотра:», in lower case
        "снижение коленного или ахиллова рефлекса",
        "боль, отдающая в одну или обе ноги",
        "Седловидной анестезии нет",
        "Задержки и недержания мочи нет",
        "Лихорадки нет",
        "Остеохондроз",  # answered "no": a pertinent negative from the history
        "Температура тела 37,8 °C",
        "ЧСС 78 уд/мин",
        "АД 128/82 мм рт. ст.",
        "МРТ",
        "назначено",
        "Беременность: не беременна",
        "врач-терапевт участковый",
        "Петрова Анна Сергеевна",
        "М.П.",
        "ЧЕРНОВИК",
    ]:
        assert " ".join(expected.split()) in text, expected
    # The reason is the recommendation's, in Russian.
    assert re.search("[а-яё]", referral.reason)
    assert latin_words(text) == set(), latin_words(text)
    keep_page_images(referral, "letter-ru")


def test_an_issued_referral_carries_its_number_and_time_of_issue_in_the_clinic_zone_and_no_watermark(demo):
    referral = services.referral_create(
        actor=demo["actor"], encounter=demo["encounter"], recommendation=demo["neurology"]
    )
    render(referral)
    assert "ЧЕРНОВИК" in flat(pdf_pages(referral))
    issued = services.referral_issue(actor=demo["actor"], referral=referral)
    assert issued.status == "issued" and issued.pdf_status == PdfStatus.PENDING and issued.pdf_generation == 2
    # 22:30 UTC on the 29th is 01:30 on the 30th in Moscow.
    Referral.objects.filter(pk=referral.pk).update(
        issued_at=datetime.datetime(2026, 11, 29, 22, 30, tzinfo=datetime.UTC)
    )
    assert render(referral) == "rendered"
    text = flat(pdf_pages(referral))
    assert "ЧЕРНОВИК" not in text
    assert f"НАПРАВЛЕНИЕ № {referral.pk:06d}" in text and "от 30.11.2026" in text
    assert "Дата и время выдачи: 30.11.2026 01:30" in text
    referral.refresh_from_db()
    assert documents.download_name(referral) == f"napravlenie-{referral.pk:06d}-2026-11-30-neurology.pdf"


def test_an_english_letter_is_watermarked_draft_until_issued_and_names_its_icd10_code(demo):
    referral = services.referral_create(
        actor=demo["actor"], encounter=demo["encounter"], recommendation=demo["neurology"], language="en"
    )
    assert referral.diagnosis == "Radiculopathy"
    render(referral)
    text = flat(pdf_pages(referral))
    assert "DRAFT" in text and "M54.1 — Radiculopathy" in text and f"Referral No. {referral.pk:06d}" in text
    assert "Седловидной" not in text and "No saddle anaesthesia" in text
    services.referral_issue(actor=demo["actor"], referral=referral)
    render(referral)
    text = flat(pdf_pages(referral))
    assert "DRAFT" not in text and "Issued" in text
    assert documents.download_name(referral).startswith(f"referral-{referral.pk:06d}-")


def test_a_russian_requisition_has_one_sheet_per_kind_of_study_with_biomaterials_cito_and_a_pending_pregnancy_test(
    demo,
):
    actor, workup = demo["actor"], demo["workup"]
    workup_item_add(
        actor=actor,
        workup=workup,
        code="lab_nechiporenko",
        urgency="urgent",
        rationale="Исключить инфекцию мочевых путей",
    )
    workup_item_add(
        actor=actor,
        workup=workup,
        code="lab_pregnancy_test",
        urgency="urgent",
        rationale="Перед исследованиями уточнить беременность",
    )
    workup_item_add(actor=actor, workup=workup, code="ecg", urgency="routine")
    workup_item_add(actor=actor, workup=workup, code="lab_troponin", urgency="emergency")
    requisition = services.requisition_request(actor=actor, encounter=demo["encounter"])
    assert requisition.language == "ru"
    assert render(requisition) == "rendered"
    pages = pdf_pages(requisition)
    lab = [page for page in pages if "на лабораторное исследование" in page]
    imaging = [page for page in pages if "лучевая диагностика" in page]
    functional = [page for page in pages if "функциональная диагностика" in page]
    assert lab and imaging and functional
    assert not set(map(id, lab)) & set(map(id, imaging))  # separate sheets
    lab_text, imaging_text = flat(lab), flat(imaging)
    assert "Общий (клинический) анализ крови" in lab_text and "Венозная кровь" in lab_text
    assert "Анализ мочи по Нечипоренко" in lab_text and "Моча, средняя порция первой утренней мочи" in lab_text
    # cito! means "now" to a laboratory: the emergency test only; an urgent one has its due date, as on the leaflet.
    due = add_working_days(clinic_local(requisition.created_at, requisition.clinic).date(), 3)
    assert re.search(r"cito! экстренно", lab_text) and lab_text.count("cito!") == 1
    assert f"срочно, до {due:%d.%m.%Y}" in lab_text
    assert "МРТ" not in lab_text and "МРТ" in imaging_text and "cito!" not in imaging_text  # the MRI is urgent
    assert f"срочно, до {due:%d.%m.%Y}" in imaging_text
    assert "ЭКГ в 12 отведениях" in flat(functional) and "Назначено врачом" in flat(functional)
    for sheet in (lab_text, imaging_text):
        for expected in [
            "ОГРН 1027700132195",
            "Иванова Мария Петровна",
            "12.03.1981",
            "112-233-445 95",
            "M54.1",
            "назначен тест на беременность, результат ожидается",
            "М.П.",
            "Петрова Анна Сергеевна",
        ]:
            assert expected in sheet, expected
    assert "не беременна" not in flat(pages)
    assert latin_words(flat(pages)) == set(), latin_words(flat(pages))
    keep_page_images(requisition, "requisition-ru")


def test_the_signature_keeps_with_the_last_row_of_a_long_requisition(demo):
    actor, workup = demo["actor"], demo["workup"]
    long_reason = "Длинное обоснование исследования. " * 25
    for code in (
        "lab_biochemistry",
        "lab_crp_esr",
        "lab_urinalysis",
        "lab_nechiporenko",
        "lab_troponin",
        "lab_pancreatic_enzymes",
    ):
        if workup.items.filter(code=code).exists():
            recommendation_decide(actor=actor, recommendation=workup.items.get(code=code), decision=Decision.ACCEPTED)
        else:
            workup_item_add(actor=actor, workup=workup, code=code, rationale=long_reason)
    requisition = services.requisition_request(actor=actor, encounter=demo["encounter"])
    render(requisition)
    for page in pdf_pages(requisition):
        if "М.П." in page:
            # A page with the signature also carries at least one test row (its biomaterial or urgency).
            assert re.search("планово|срочно|экстренно", page.split("Направивший врач")[0]), page


def test_the_leaflet_in_russian_has_the_preparation_the_due_dates_and_the_ambulance_numbers(demo):
    actor, workup = demo["actor"], demo["workup"]
    workup_item_add(actor=actor, workup=workup, code="lab_nechiporenko", urgency="urgent")
    leaflet = services.leaflet_request(actor=actor, encounter=demo["encounter"])
    assert leaflet.language == "ru"
    assert render(leaflet) == "rendered"
    text = flat(pdf_pages(leaflet))
    given = clinic_local(leaflet.created_at, leaflet.clinic).date()
    for expected in [
        "ПАМЯТКА ПАЦИЕНТУ",
        "Иванова Мария Петровна",
        "Анализ мочи по Нечипоренко",
        "Собрать первую утреннюю мочу",
        "среднюю порцию",
        f"не позднее {add_working_days(given, 3):%d.%m.%Y}",  # urgent: 3 working days from the day it is given
        "Общий (клинический) анализ крови",
        f"не позднее {add_working_days(given, 14):%d.%m.%Y}",  # routine: 14
        "Утром натощак",
        "МРТ",
        "отделение лучевой диагностики",
        "г. Москва, ул. Садовая, д. 12",
        "+7 495 123-45-67",
        "Невролог",
        "103",
        "112",
        "Когда сразу вызывать скорую помощь",
        "если появилось или усилилось",
        "Не получается помочиться",
    ]:
        assert " ".join(expected.split()) in text, expected
    assert latin_words(text) == set(), latin_words(text)
    keep_page_images(leaflet, "leaflet-ru")


def test_the_leaflet_in_english_for_a_patient_of_a_russian_clinic(demo):
    actor, workup = demo["actor"], demo["workup"]
    workup_item_add(actor=actor, workup=workup, code="lab_nechiporenko", urgency="emergency")
    leaflet = services.leaflet_request(actor=actor, encounter=demo["encounter"], language="en")
    render(leaflet)
    text = flat(pdf_pages(leaflet))
    given = clinic_local(leaflet.created_at, leaflet.clinic).date()
    for expected in [
        "PATIENT LEAFLET",
        "Nechiporenko urine test",
        "Collect the first urine of the morning",
        "collect the middle portion",
        f"today, {english_date(given)}",
        f"by {english_date(add_working_days(given, 3))}",
        f"by {english_date(add_working_days(given, 14))}",
        "Neurology",
        "When to call an ambulance straight away",
        "Call 103 or 112 straight away if any of these starts or gets worse",
        "Unable to pass urine",
    ]:
        assert " ".join(expected.split()) in text, expected
    # Only what the record holds in Russian (names, the address, the GP's position) stays Cyrillic.
    for record_text in (
        "Иванова Мария Петровна",
        "Поликлиника",
        "г. Москва, ул. Садовая, д.",
        "врач-терапевт участковый",
        "Петрова Анна Сергеевна",
    ):
        text = text.replace(record_text, "")
    assert not re.search("[а-яё]{3,}", text), text
    made = clinic_local(leaflet.created_at, leaflet.clinic)
    assert documents.download_name(leaflet) == f"leaflet-{leaflet.pk:06d}-{made:%Y-%m-%d}.pdf"


def test_an_english_leaflet_gives_the_same_ambulance_numbers(gp):
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    leaflet = services.leaflet_request(actor=actor_for(gp), encounter=encounter)
    assert leaflet.language == "en"
    render(leaflet)
    text = flat(pdf_pages(leaflet))
    assert "Call 103 or 112" in text and "999" not in text


def test_a_document_renders_in_its_language_and_zone_whatever_the_worker_uses(demo, settings):
    from django.utils import translation

    referral = services.referral_create(
        actor=demo["actor"], encounter=demo["encounter"], recommendation=demo["neurology"]
    )
    with translation.override("en"):
        render(referral)
    text = flat(pdf_pages(referral))
    assert "НАПРАВЛЕНИЕ" in text and "стр. 1 из" in text


def test_the_membership_and_clinic_defaults_print_in_russian(db):
    clinic = ClinicFactory(language="ru")
    user = MembershipFactory(clinic=clinic).user
    encounter = encounter_of(user)
    assert documents.gp_of(encounter, "ru")[1] == "врач-терапевт участковый"
    assert documents.gp_of(encounter, "en")[1] == "General practitioner"
    assert isinstance(clinic, Clinic) and Membership.objects.filter(user=user).exists()


CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True, "rf_bladder_dysfunction": True}


@pytest.fixture
def sent_to_hospital(ru_gp):
    """A patient with cauda equina syndrome whom the GP sends to hospital with the one-step emergency path."""
    patient = patient_of(ru_gp, family_name="Смирнов", given_name="Пётр", middle_name="Ильич", sex="male")
    encounter = encounter_of(
        ru_gp,
        patient=patient,
        chief_complaint="Онемение в промежности, не может помочиться",
        findings=screened(CAUDA_EQUINA),
    )
    workup_for(ru_gp, encounter)
    letters, leaflet = services.emergency_documents_prepare(actor=actor_for(ru_gp), encounter=encounter)
    return {"encounter": encounter, "letters": letters, "leaflet": leaflet}


def test_an_emergency_letter_sends_the_patient_to_the_admitting_department_for_emergency_admission(sent_to_hospital):
    letter = next(letter for letter in sent_to_hospital["letters"] if letter.specialty == "neurosurgery")
    render(letter)
    text = flat(pdf_pages(letter))

    assert "на экстренную госпитализацию" in text
    assert "Форма оказания медицинской помощи экстренная" in text
    assert "Направляется в приёмное отделение стационара, к врачу-нейрохирургу" in text
    assert latin_words(text) == set(), latin_words(text)


def test_a_planned_letter_is_not_titled_as_an_admission(demo):
    referral = services.referral_create(
        actor=demo["actor"], encounter=demo["encounter"], recommendation=demo["neurology"]
    )
    render(referral)
    text = flat(pdf_pages(referral))

    assert "к врачу-неврологу" in text
    assert "госпитализац" not in text and "приёмное отделение" not in text


def test_the_emergency_leaflet_tells_the_patient_to_go_to_hospital_now_not_to_the_clinic(sent_to_hospital):
    leaflet = sent_to_hospital["leaflet"]
    render(leaflet)
    text = flat(pdf_pages(leaflet))
    given = clinic_local(leaflet.created_at, leaflet.clinic).date()

    for expected in [
        "Вы направлены на экстренную госпитализацию",
        "Врач вызывает вам скорую помощь: дождитесь бригаду в поликлинике",
        "не за рулём",
        "полис ОМС",
        "Нейрохирург",
        f"сегодня, {given:%d.%m.%Y}",
        "приёмное отделение стационара",
        # While waiting the patient already has some of the signs: the call is for getting worse.
        "Если станет хуже, пока вы ждёте или едете, вызовите скорую помощь",
        "103",
    ]:
        assert expected in text, expected
    # Nothing of an outpatient's plan: no clinic rooms, no booking at reception, no preparation.
    for outpatient in (
        "регистратура",
        "отделение лучевой диагностики",
        "Как подготовиться",
        "Консультации специалистов",
    ):
        assert outpatient not in text, outpatient
    assert latin_words(text) == set(), latin_words(text)
    keep_page_images(leaflet, "leaflet-emergency-ru")


def test_the_emergency_leaflet_in_english(ru_gp):
    encounter = encounter_of(ru_gp, findings=screened(CAUDA_EQUINA))
    workup_for(ru_gp, encounter)
    services.emergency_documents_prepare(actor=actor_for(ru_gp), encounter=encounter)
    leaflet = services.leaflet_request(actor=actor_for(ru_gp), encounter=encounter, language="en")
    render(leaflet)
    text = flat(pdf_pages(leaflet))

    assert "You are being sent to hospital as an emergency" in text
    assert "the hospital's admitting department" in text
    assert "If you get worse while you wait or travel, call an ambulance" in text
    assert "reception" not in text and "How to prepare" not in text


def test_the_leaflet_gives_the_worklist_due_dates_counting_the_clinics_holidays(demo):
    """The patient's «не позднее» and the date the worklist calls the test overdue are one date."""
    actor, encounter = demo["actor"], demo["encounter"]
    given = clinic_local(clinic=encounter.clinic).date()
    holiday = add_working_days(given, 1)
    ClinicHoliday.objects.create(clinic=encounter.clinic, date=holiday, name="Праздник")
    workup_item_add(actor=actor, workup=demo["workup"], code="lab_nechiporenko", urgency="urgent")

    leaflet = services.leaflet_request(actor=actor, encounter=encounter)
    render(leaflet)
    text = flat(pdf_pages(leaflet))

    due = add_working_days(given, 3, {holiday})
    assert due != add_working_days(given, 3)
    assert f"не позднее {due:%d.%m.%Y}" in text


def test_an_emergency_letter_in_english_is_for_the_admitting_department(sent_to_hospital, ru_gp):
    letter = next(letter for letter in sent_to_hospital["letters"] if letter.specialty == "neurosurgery")
    letter = services.referral_update(actor=actor_for(ru_gp), referral=letter, language="en")
    render(letter)
    text = flat(pdf_pages(letter))

    assert "Referral for emergency admission" in text
    assert "To: the admitting department, for Neurosurgery" in text
    assert "EMERGENCY ADMISSION" in text


def test_the_letter_preview_names_the_addressee_once_in_the_letters_language(sent_to_hospital, ru_gp):
    letter = next(letter for letter in sent_to_hospital["letters"] if letter.specialty == "neurosurgery")
    web = Client()
    web.force_login(ru_gp)

    page = web.get(f"/referrals/{letter.pk}/issue/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "в приёмное отделение стационара, к врачу-нейрохирургу</span></dd>" in page

    # A GP reading the Russian letter in the English interface also gets the specialty in English.
    page = web.get(f"/referrals/{letter.pk}/issue/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "к врачу-нейрохирургу</span> (Neurosurgery)</dd>" in page


def test_a_letter_written_after_results_states_them_as_form_057u_asks(demo):
    """The specialist sees the evidence: a test whose results are in reads «выполнено» with what it found."""
    from workups.services import result_enter

    actor = demo["actor"]
    result_enter(actor=actor, encounter=demo["encounter"], code="res_hemoglobin", value=98)
    result_enter(actor=actor, encounter=demo["encounter"], code="res_wbc", value=6.5)
    referral = services.referral_create(actor=actor, encounter=demo["encounter"], recommendation=demo["neurology"])
    render(referral)
    text = flat(pdf_pages(referral))
    entered = clinic_local(clinic=referral.clinic).date()

    assert f"выполнено {entered:%d.%m.%Y}: Гемоглобин 98 г/л (ниже нормы); Лейкоциты крови 6,5 ×10⁹/л (норма)" in text
    # A test with no result yet is still only ordered.
    assert re.search(r"МРТ пояснично-крестцового отдела позвоночника \w+ назначено", text), text

    referral = services.referral_update(actor=actor, referral=referral, language="en")
    render(referral)
    text = flat(pdf_pages(referral))
    assert f"done {english_date(entered)}: Haemoglobin 98 g/L (low); White cell count 6.5 ×10⁹/L (normal)" in text


def test_the_number_sign_keeps_to_its_number_on_a_document():
    assert documents.keep_number_sign_with_number("ГБУЗ «Городская поликлиника № 3»") == (
        "ГБУЗ «Городская поликлиника №\u00a03»"
    )


def test_the_leaflet_sends_the_patient_to_book_only_with_an_issued_letter(demo):
    actor = demo["actor"]
    leaflet = services.leaflet_request(actor=actor, encounter=demo["encounter"])
    render(leaflet)
    text = flat(pdf_pages(leaflet))
    assert "направление к специалисту выдаст врач" in text and "запись к специалисту по направлению" not in text

    referral = services.referral_create(actor=actor, encounter=demo["encounter"], recommendation=demo["neurology"])
    services.referral_issue(actor=actor, referral=referral)
    leaflet = services.leaflet_request(actor=actor, encounter=demo["encounter"])
    render(leaflet)
    text = flat(pdf_pages(leaflet))
    assert "регистратура поликлиники: запись к специалисту по направлению" in text
    assert "выдаст врач" not in text
