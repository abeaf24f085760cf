"""What goes into a referral letter, a requisition and a patient leaflet: the templates' context, built
from the record, in the document's language.

Every printed label comes from the explicit per-language tables here (or from the language's
template), not from the gettext catalogue: a document must read the same whichever translations
happen to be compiled. Clinical texts (findings, tests, specialties, diagnoses, warning signs) come
from the knowledge base in the document's language (workups.localized.current_kb).
"""

from __future__ import annotations

import datetime
import re
import zoneinfo

from django.conf import settings
from django.utils import timezone

from clinic.calendar import clinic_due_days
from clinic.calendar import due_date as calendar_due_date
from clinic.identifiers import format_snils
from clinic.models import ClinicHoliday
from clinic.summary import findings_as_read
from clinic.text import lower_first
from referrals.models import Referral, ReferralStatus
from referrals.selectors import letters_standing
from workups.localized import current_kb, kb_language
from workups.models import HAND_ADDED as HAND_ADDED_STORED
from workups.models import KEPT_ACCEPTED, Result
from workups.selectors import engine_rows, provisional_diagnosis, row_text, workup_result
from workups.services import result_codes_by_test

# -- language tables -------------------------------------------------------------------------------

URGENCY_TEXT = {
    "emergency": "EMERGENCY: please see today",
    "urgent": "URGENT: please see within days",
    "routine": "Routine referral",
}
# Form 057/у: the form of medical care.
FORM_OF_CARE = {"emergency": "экстренная", "urgent": "неотложная", "routine": "плановая"}
TEST_URGENCY = {
    "ru": {"emergency": "экстренно", "urgent": "срочно", "routine": "планово"},
    "en": {"emergency": "emergency", "urgent": "urgent", "routine": "routine"},
}
TEST_DONE = {"ru": "выполнено", "en": "done"}
RESULT_FLAG = {
    "ru": {
        "low": "ниже нормы",
        "high": "выше нормы",
        "normal": "норма",
        "positive": "положительный",
        "negative": "отрицательный",
        "present": "выявлено",
        "absent": "не выявлено",
    },
    "en": {
        "low": "low",
        "high": "high",
        "normal": "normal",
        "positive": "positive",
        "negative": "negative",
        "present": "present",
        "absent": "absent",
    },
}
TEST_STATUS = {
    "ru": {"accepted": "назначено", "pending": "рекомендовано, не назначено", "declined": "отменено"},
    "en": {"accepted": "ordered", "pending": "recommended, not yet ordered", "declined": "declined"},
}
CATEGORY_ORDER = ("lab", "functional", "imaging")
# The findings sections in clinical order: (key, finding group).
SECTIONS = [
    ("location", "loc"),
    ("pattern", "pattern"),
    ("symptoms", "sx"),
    ("red_flags", "rf"),
    ("history", "hx"),
    ("examination", "ex"),
]
SECTION_TITLES = {
    "ru": {
        "location": "Локализация онемения",
        "pattern": "Характер и длительность",
        "symptoms": "Симптомы",
        "red_flags": "«Красные флаги»",
        "history": "Анамнез",
        "examination": "Объективный осмотр",
        "vitals": "Витальные показатели",
        "plan": "План",
    },
    "en": {
        "location": "Where the numbness is",
        "pattern": "Pattern and duration",
        "symptoms": "Symptoms",
        "red_flags": "Red-flag screen",
        "history": "History",
        "examination": "Examination",
        "vitals": "Vital signs",
        "plan": "Plan",
    },
}
SEX = {"ru": {"female": "женский", "male": "мужской"}, "en": {"female": "Female", "male": "Male"}}
# Form 057/у names the addressee in the dative: "к врачу-неврологу".
ADDRESSEE_RU = {
    "neurology": "врачу-неврологу",
    "neurosurgery": "врачу-нейрохирургу",
    "orthopedics": "врачу — травматологу-ортопеду",
    "traumatology": "врачу-травматологу",
    "cardiology": "врачу-кардиологу",
    "vascular_surgery": "врачу — сосудистому хирургу",
    "pulmonology": "врачу-пульмонологу",
    "infectious_disease": "врачу-инфекционисту",
    "urology": "врачу-урологу",
    "nephrology": "врачу-нефрологу",
    "gynecology": "врачу — акушеру-гинекологу",
    "gastroenterology": "врачу-гастроэнтерологу",
    "proctology": "врачу-колопроктологу",
    "oncology": "врачу-онкологу",
    "rheumatology": "врачу-ревматологу",
}
# An emergency referral sends the patient to hospital now: the letter goes to the admitting department.
ADMISSION_RU = "в приёмное отделение стационара"
DEFAULT_TITLE = "General practitioner"
DEFAULT_POSITION_RU = "врач-терапевт участковый"

# The requisition's sheets, one per kind of study.
SHEETS = {
    "ru": {
        "lab": ("НАПРАВЛЕНИЕ", "на лабораторное исследование", ""),
        "functional": ("НАПРАВЛЕНИЕ", "на инструментальное исследование", "функциональная диагностика"),
        "imaging": ("НАПРАВЛЕНИЕ", "на инструментальное исследование", "лучевая диагностика"),
    },
    "en": {
        "lab": ("REQUISITION", "Laboratory tests", ""),
        "functional": ("REQUISITION", "Functional diagnostics", ""),
        "imaging": ("REQUISITION", "Imaging", ""),
    },
}
CITO = "cito!"

LABELS = {
    "ru": {
        "draft": "ЧЕРНОВИК",
        "number": "№",
        "from": "от",
        "form_code": "Учётная форма № 057/у",
        "ogrn": "ОГРН",
        "phone": "тел.",
        "patient": "Пациент",
        "full_name": "Фамилия, имя, отчество",
        "birth_date": "Дата рождения",
        "sex": "Пол",
        "address": "Адрес регистрации",
        "snils": "СНИЛС",
        "oms": "Полис ОМС",
        "insurer": "СМО",
        "not_given": "не указан",
        "diagnosis": "Диагноз (предварительный)",
        "icd10": "код по МКБ-10",
        "test": "Исследование",
        "biomaterial": "Биоматериал",
        "urgency": "Срочность",
        "indication": "Обоснование (клинические данные)",
        "pregnancy": "Беременность",
        "requested_by": "Направивший врач",
        "signature": "подпись",
        "date": "Дата",
        "seal": "М.П.",
        "issued": "Дата и время выдачи",
        "page_of": ("стр. ", " из "),
        "age": "полных лет",
        "title_leaflet": "ПАМЯТКА ПАЦИЕНТУ",
        "visit": "Приём",
        "your_tests": "Ваши обследования",
        "how_to_prepare": "Как подготовиться",
        "where": "Куда обратиться",
        "by_when": "Когда",
        "your_referrals": "Консультации специалистов",
        "specialist": "Специалист",
        "warning_title": "Когда сразу вызывать скорую помощь",
        "warning_intro": "Звоните {numbers} сейчас же, если появилось или усилилось хотя бы одно из этого:",
        "no_tests": "Обследования не назначены.",
        "no_referrals": "Направления к специалистам не выданы.",
        "questions": "Если что-то непонятно, позвоните в поликлинику",
        "doctor": "Ваш врач",
        "lab_place": "процедурный кабинет (лаборатория)",
        "functional_place": "кабинет функциональной диагностики",
        "imaging_place": "отделение лучевой диагностики",
        "referral_place": "регистратура поликлиники: запись к специалисту по направлению",
        "letter_to_come": "направление к специалисту выдаст врач; с ним — в регистратуру для записи",
        "admission_title": "Вы направлены на экстренную госпитализацию",
        "admission_text": "Врач вызывает вам скорую помощь: дождитесь бригаду в поликлинике и не уезжайте сами. Если"
        " врач отпустил вас ехать самостоятельно, то только с сопровождающим и не за рулём. Возьмите с собой"
        " направление, паспорт, полис ОМС, СНИЛС, эту памятку и лекарства, которые принимаете.",
        "admission_tests": "Обследования, которые проведут в стационаре",
        "admission_referrals": "Куда вы направлены",
        "admission_place": "приёмное отделение стационара",
        "admission_warning_title": "Если станет хуже, пока вы ждёте или едете, вызовите скорую помощь",
        "admission_warning_intro": "Звоните {numbers} сейчас же, если состояние ухудшилось или появилось что-то новое"
        " из этого:",
        "today": "сегодня",
        "no_later": "не позднее",
        "until": "до",
        "numbers_join": " или ",
    },
    "en": {
        "draft": "DRAFT",
        "number": "No.",
        "from": "of",
        "form_code": "",
        "ogrn": "OGRN",
        "phone": "phone",
        "patient": "Patient",
        "full_name": "Name",
        "birth_date": "Date of birth",
        "sex": "Sex",
        "address": "Address",
        "snils": "SNILS",
        "oms": "OMS policy",
        "insurer": "insurer",
        "not_given": "not recorded",
        "diagnosis": "Provisional diagnosis",
        "icd10": "ICD-10",
        "test": "Test",
        "biomaterial": "Specimen",
        "urgency": "Urgency",
        "indication": "Clinical indication",
        "pregnancy": "Pregnancy status",
        "requested_by": "Requested by",
        "signature": "signature",
        "date": "Date",
        "seal": "",
        "issued": "Issued",
        "page_of": ("page ", " of "),
        "age": "years",
        "title_leaflet": "PATIENT LEAFLET",
        "visit": "Visit",
        "your_tests": "Your tests",
        "how_to_prepare": "How to prepare",
        "where": "Where to go",
        "by_when": "When",
        "your_referrals": "Specialist appointments",
        "specialist": "Specialist",
        "warning_title": "When to call an ambulance straight away",
        "warning_intro": "Call {numbers} straight away if any of these starts or gets worse:",
        "no_tests": "No tests ordered.",
        "no_referrals": "No specialist referrals.",
        "questions": "If anything is unclear, call the practice",
        "doctor": "Your doctor",
        "lab_place": "the practice's blood-taking room (laboratory)",
        "functional_place": "the ECG room",
        "imaging_place": "the imaging (X-ray) department",
        "referral_place": "reception: book the specialist appointment with this referral",
        "letter_to_come": "your doctor will give you the referral letter; then book at reception with it",
        "admission_title": "You are being sent to hospital as an emergency",
        "admission_text": "Your doctor is calling an ambulance: wait for it at the clinic and do not leave on your own."
        " If the doctor lets you go by yourself, go with someone, and never drive. Take the referral letter, your"
        " passport, OMS policy and SNILS, this leaflet and the medicines you take.",
        "admission_tests": "Tests the hospital will do",
        "admission_referrals": "Where you are sent",
        "admission_place": "the hospital's admitting department",
        "admission_warning_title": "If you get worse while you wait or travel, call an ambulance",
        "admission_warning_intro": "Call {numbers} straight away if you feel worse or anything new from this list"
        " happens:",
        "today": "today",
        "no_later": "by",
        "until": "by",
        "numbers_join": " or ",
    },
}
# The ambulance numbers a patient calls: 103 (ambulance) and 112 (the single emergency number, which
# also works abroad). The clinic's language says nothing about its country, so it never changes them.
EMERGENCY_NUMBERS = ("103", "112")
PREGNANCY_TEST = "lab_pregnancy_test"
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def language_of(document) -> str:
    return kb_language(getattr(document, "language", None) or "ru")


# -- formatting ------------------------------------------------------------------------------------


def clinic_zone(clinic) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(clinic.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_moment(moment: datetime.datetime | None, clinic) -> datetime.datetime:
    return timezone.localtime(moment or timezone.now(), clinic_zone(clinic))


def format_date(day: datetime.date, language: str) -> str:
    """DD.MM.YYYY in Russian; "3 March 2024" in English (no day/month ambiguity)."""
    if language == "ru":
        return day.strftime("%d.%m.%Y")
    return f"{day.day} {EN_MONTHS[day.month - 1]} {day.year}"


def format_datetime(moment: datetime.datetime, language: str) -> str:
    return f"{format_date(moment.date(), language)} {moment:%H:%M}"


def decimal(value: float, language: str, digits: int = 1) -> str:
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if language == "ru" else text


def days_ru(count: int) -> str:
    if count % 10 == 1 and count % 100 != 11:
        word = "день"
    elif 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        word = "дня"
    else:
        word = "дней"
    return f"{count} {word}"


def document_number(document) -> str:
    """The document's printed number: its id, zero-padded to six digits."""
    return f"{document.pk:06d}"


def _ascii_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def download_name(document) -> str:
    """The PDF's file name: kind, number, date and (for a referral) specialty, never the patient's name.
    "napravlenie-000123-2026-11-30-neurology.pdf", "referral-…", "requisition-…", "leaflet-…"."""
    from referrals.models import Leaflet, Referral, Requisition

    if isinstance(document, Referral):
        kind = "napravlenie" if language_of(document) == "ru" else "referral"
        day = local_moment(document.issued_at or document.created_at, document.clinic).date()
        return f"{kind}-{document_number(document)}-{day:%Y-%m-%d}-{_ascii_slug(document.specialty)}.pdf"
    kind = (
        "requisition"
        if isinstance(document, Requisition)
        else "leaflet"
        if isinstance(document, Leaflet)
        else "document"
    )
    day = local_moment(document.created_at, document.clinic).date()
    return f"{kind}-{document_number(document)}-{day:%Y-%m-%d}.pdf"


# -- the record in words ---------------------------------------------------------------------------


def findings_sections(encounter, language: str) -> list[dict]:
    """[{key, title, present: [names], absent: [negative phrases], note}] in the document's language."""
    vocabulary = current_kb(language).vocabulary
    titles = SECTION_TITLES[language]
    findings = findings_as_read(encounter)  # as the engine read them: no "No fever" under a fever it counted
    notes = encounter.notes or {}
    sections = []
    for key, group in SECTIONS:
        codes = vocabulary.findings_in_group(group)
        # After the section's title and a colon: «Симптомы: учащённое мочеиспускание; болезненное…».
        present = [lower_first(vocabulary.findings[code]["name"]) for code in codes if findings.get(code) is True]
        absent = [vocabulary.findings[code]["negative"] for code in codes if findings.get(code) is False]
        if present or absent or notes.get(key):
            sections.append(
                {"key": key, "title": titles[key], "present": present, "absent": absent, "note": notes.get(key, "")}
            )
    for key in ("vitals", "plan"):
        if notes.get(key):
            sections.append({"key": key, "title": titles[key], "present": [], "absent": [], "note": notes[key]})
    return sections


def pertinent_negatives(encounter, language: str, sections=None) -> list[str]:
    """Each red flag answered "no" (in the knowledge base's order), then every other absent finding; none the
    engine overrode (a No to fever with a temperature of 38.0 °C or more)."""
    kb = current_kb(language)
    findings = findings_as_read(encounter)
    red_flags = [kb.vocabulary.findings[code]["negative"] for code in kb.red_flags if findings.get(code) is False]
    sections = findings_sections(encounter, language) if sections is None else sections
    return red_flags + [phrase for section in sections if section["key"] != "red_flags" for phrase in section["absent"]]


def vital_signs(encounter, language: str) -> list[tuple[str, str]]:
    ru = language == "ru"
    rows = []
    if encounter.temperature_c is not None:
        rows.append(("Температура тела" if ru else "Temperature", f"{decimal(encounter.temperature_c, language)} °C"))
    if encounter.heart_rate is not None:
        rows.append(
            ("ЧСС" if ru else "Heart rate", f"{encounter.heart_rate} уд/мин" if ru else f"{encounter.heart_rate} /min")
        )
    if encounter.systolic_bp is not None and encounter.diastolic_bp is not None:
        rows.append(
            (
                "АД" if ru else "Blood pressure",
                f"{encounter.systolic_bp}/{encounter.diastolic_bp} {'мм рт. ст.' if ru else 'mmHg'}",
            )
        )
    elif encounter.systolic_bp is not None:
        rows.append(
            (
                "Систолическое АД" if ru else "Systolic blood pressure",
                f"{encounter.systolic_bp} {'мм рт. ст.' if ru else 'mmHg'}",
            )
        )
    if encounter.resp_rate is not None:
        rows.append(
            (
                "ЧДД" if ru else "Respiratory rate",
                f"{encounter.resp_rate} в мин" if ru else f"{encounter.resp_rate} /min",
            )
        )
    if encounter.spo2 is not None:
        rows.append(("Сатурация кислорода" if ru else "SpO₂", f"{encounter.spo2} %"))
    return rows


def _accepted_codes(workup) -> set[str]:
    return {item.code for item in workup.items.all() if item.decision == "accepted"} if workup else set()


def pregnancy_line(encounter, language: str, *, workup=None) -> str:
    """The pregnancy status as documents print it; "" for a man. A pregnancy test ordered means its
    result is pending, whatever was answered before it."""
    if encounter.patient.sex != "female":
        return ""
    ru = language == "ru"
    test_ordered = PREGNANCY_TEST in _accepted_codes(workup)
    if encounter.pregnant is True:
        return "беременна" if ru else "pregnant"
    pending = "назначен тест на беременность, результат ожидается" if ru else "pregnancy test ordered, result pending"
    if encounter.pregnant is False:
        return pending if test_ordered else ("не беременна" if ru else "not pregnant")
    unknown = (
        "не указана: уточнить до исследований с ионизирующим излучением"
        if ru
        else ("not recorded: confirm before ionising imaging")
    )
    return f"{unknown}; {pending}" if test_ordered else unknown


def gp_of(encounter, language: str) -> tuple[str, str]:
    user = encounter.clinician
    membership = getattr(user, "membership", None)
    if membership is None:
        return (user.get_full_name() or user.get_username(), DEFAULT_POSITION_RU if language == "ru" else DEFAULT_TITLE)
    position = membership.display_position
    if language == "ru" and not membership.position and membership.title == DEFAULT_TITLE:
        position = DEFAULT_POSITION_RU
    return membership.display_name, position


def _sentence(text: str, language: str) -> str:
    """English letters print the pregnancy status as a sentence ("Not pregnant."); Russian ones after a label."""
    if not text or language == "ru":
        return text
    return f"{text[:1].upper()}{text[1:]}."


HAND_ADDED = {"ru": "Назначено врачом", "en": "Added by the clinician"}


def _rationale(item, texts, language) -> str:
    """An item's rationale in the document's language; the default text of a hand-added test too."""
    # A test the GP accepted and kept after the findings changed is, on paper, the GP's order like a hand-added one.
    if item.added_by_clinician and item.rationale in (HAND_ADDED_STORED, KEPT_ACCEPTED):
        return HAND_ADDED[language]
    return row_text(item, texts)


def _workup_texts(workup, language) -> tuple[dict, dict]:
    return engine_rows(workup_result(workup, language) if workup is not None else {})


def keep_number_sign_with_number(text: str) -> str:
    """«Поликлиника № 3»: the sign and its number on one line (a no-break space), never «№» at a line's end."""
    return re.sub(r"№\s+", "№\u00a0", text)


def _common(document, encounter, language: str) -> dict:
    clinic = encounter.clinic
    patient = encounter.patient
    gp_name, gp_position = gp_of(encounter, language)
    labels = LABELS[language]
    created = local_moment(getattr(document, "created_at", None), clinic)
    return {
        "language": language,
        "labels": labels,
        "clinic": clinic,
        "organisation": keep_number_sign_with_number(clinic.legal_name or clinic.name),
        "clinic_name": keep_number_sign_with_number(clinic.name),
        "patient": patient,
        "encounter": encounter,
        "age": encounter.age,
        "date": created.date(),
        "date_text": format_date(created.date(), language),
        "visit_date_text": format_date(encounter.visit_date, language),
        "birth_date_text": format_date(patient.birth_date, language)
        if language == "ru"
        else patient.birth_date.strftime("%Y-%m-%d"),
        "sex_text": SEX[language].get(patient.sex, patient.sex),
        "snils_text": format_snils(patient.snils) if patient.snils else "",
        "gp_name": gp_name,
        "gp_title": gp_position,
        "number": document_number(document) if document is not None and document.pk else "",
        "page_of": labels["page_of"],
    }


def _value_text(number: float, language: str) -> str:
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "ru" else text


def _result_text(result, meta: dict, language: str) -> str:
    """One result as a letter states it: «Гемоглобин 98 г/л (ниже нормы)», «Нитриты в моче: положительный»."""
    flag = RESULT_FLAG[language].get(result.flag, result.flag)
    if meta["type"] == "boolean":
        return f"{meta['name']}: {flag}"
    value = f"{_value_text(result.value_number, language)} {meta['unit']}".strip()
    return f"{meta['name']} {value} ({flag})"


def _done_status(results, vocabulary, encounter, language: str) -> str:
    """A test whose results are in: done on the latest day, and what it found (form 057/у lists the results of
    the studies already done, so the specialist sees the evidence)."""
    days = [result.performed_on or local_moment(result.entered_at, encounter.clinic).date() for result in results]
    found = "; ".join(_result_text(result, vocabulary.results[result.code], language) for result in results)
    return f"{TEST_DONE[language]} {format_date(max(days), language)}: {found}"


def _tests(workup, language, item_texts) -> list[dict]:
    if workup is None:
        return []
    vocabulary = current_kb(language).vocabulary
    current = {
        result.code: result
        for result in Result.objects.filter(encounter_id=workup.encounter_id, superseded_at__isnull=True).order_by(
            "entered_at", "id"
        )
        if result.code in vocabulary.results
    }
    answers = result_codes_by_test()
    tests = []
    for item in workup.items.all():
        status = TEST_STATUS[language][item.decision]
        if item.decision == "declined" and item.decision_reason:
            status = f"{status}: {item.decision_reason}"
        results = [current[code] for code in answers.get(item.code, ()) if code in current]
        if results:
            status = _done_status(results, vocabulary, workup.encounter, language)
        tests.append(
            {
                "code": item.code,
                "name": vocabulary.items[item.code]["name"],
                "category": item.category,
                "urgency": TEST_URGENCY[language].get(item.urgency, item.urgency) if language == "ru" else item.urgency,
                "status": status,
                "rationale": _rationale(item, item_texts, language),
            }
        )
    return tests


# -- the documents ---------------------------------------------------------------------------------


def addressee_ru(referral, specialty_name: str) -> str:
    """Whom the Russian letter is for, as form 057/у's «Направляется» reads: «к врачу-неврологу»; an emergency
    letter goes to the hospital's admitting department, for the specialist."""
    dative = ADDRESSEE_RU.get(referral.specialty)
    whom = f"к {dative}" if dative else f"к специалисту: {specialty_name}"
    return f"{ADMISSION_RU}, {whom}" if referral.urgency == "emergency" else whom


def letter_context(referral, *, workup) -> dict:
    encounter = referral.encounter
    language = language_of(referral)
    kb = current_kb(language)
    sections = findings_sections(encounter, language)
    item_texts, _ = _workup_texts(workup, language)
    clinic = encounter.clinic
    issued = local_moment(referral.issued_at, clinic) if referral.issued_at else None
    day = (issued or local_moment(referral.created_at, clinic)).date()
    specialty_name = kb.vocabulary.specialties.get(referral.specialty, referral.specialty)
    duration = encounter.duration_days
    return {
        **_common(referral, encounter, language),
        "referral": referral,
        # Booked, completed or closed: it was issued, so it is never a draft again.
        "draft": referral.status == "draft",
        "issued_text": format_datetime(issued, language) if issued else "",
        "date": day,
        "date_text": format_date(day, language),
        "specialty_name": specialty_name,
        "addressee": addressee_ru(referral, specialty_name),
        "admission": referral.urgency == "emergency",
        "urgency_text": URGENCY_TEXT.get(referral.urgency, referral.urgency),
        "form_of_care": FORM_OF_CARE.get(referral.urgency, referral.urgency),
        "icd10": referral.icd10,
        "diagnosis": referral.diagnosis,
        "duration_text": (days_ru(duration) if language == "ru" else f"{duration} day{'s' if duration != 1 else ''}")
        if duration
        else "",
        "positives": [section for section in sections if section["present"]],
        "negatives": pertinent_negatives(encounter, language, sections),
        "notes": [{"title": section["title"], "text": section["note"]} for section in sections if section["note"]],
        "pregnancy_text": _sentence(pregnancy_line(encounter, language, workup=workup), language),
        "vitals": vital_signs(encounter, language),
        "tests": _tests(workup, language, item_texts),
        "kb_version": workup.knowledge_base_version if workup else kb.version,
    }


def requisition_diagnosis(accepted_items, language: str) -> tuple[str, str]:
    rule_ids = []
    for item in accepted_items:
        rule_ids.extend(rule for rule in item.rules or () if rule not in rule_ids)
    return provisional_diagnosis(rule_ids=rule_ids, language=language)


def requisition_context(requisition) -> dict:
    encounter = requisition.encounter
    language = language_of(requisition)
    vocabulary = current_kb(language).vocabulary
    workup = requisition.workup
    item_texts, _ = _workup_texts(workup, language)
    accepted = [item for item in workup.items.all() if item.decision == "accepted"]
    icd10, diagnosis = requisition_diagnosis(accepted, language)
    # cito! tells a laboratory "now": only an emergency test has it; an urgent one carries its due date instead,
    # the date the patient's leaflet gives.
    due_on = due_dates(encounter.clinic, given=local_moment(requisition.created_at, encounter.clinic).date())

    def urgency_text(urgency):
        text = TEST_URGENCY[language].get(urgency, urgency)
        if urgency == "urgent":
            return f"{text}, {LABELS[language]['until']} {format_date(due_on(urgency), language)}"
        return text

    sheets = []
    for key in CATEGORY_ORDER:
        tests = []
        for item in accepted:
            if item.category != key:
                continue
            meta = vocabulary.items[item.code]
            tests.append(
                {
                    "code": item.code,
                    "name": meta["name"],
                    "biomaterial": meta.get("biomaterial", ""),
                    "urgency": urgency_text(item.urgency),
                    "cito": item.urgency == "emergency",
                    "rationale": _rationale(item, item_texts, language),
                }
            )
        if tests:
            title, subtitle, kind = SHEETS[language][key]
            sheets.append(
                {
                    "key": key,
                    "title": title,
                    "subtitle": subtitle,
                    "kind": kind,
                    "tests": tests,
                    "head": tests[:-1],
                    "tail_rows": tests[-1:],
                }
            )
    female = encounter.patient.sex == "female"
    return {
        **_common(requisition, encounter, language),
        "requisition": requisition,
        "sheets": sheets,
        "groups": sheets,
        "cito": CITO,
        "icd10": icd10,
        "diagnosis": diagnosis,
        "imaging_requested": any(sheet["key"] == "imaging" for sheet in sheets),
        "pregnant": female and encounter.pregnant is True,
        "pregnancy_status": pregnancy_line(encounter, language, workup=workup)
        if female
        else ("" if language == "ru" else "not applicable (male)"),
    }


def due_dates(clinic, *, given: datetime.date):
    """When a test or visit of each urgency is due, counted as the worklist counts it: working days (the clinic's
    due days and holidays) from `given`, the day the document is given."""
    holidays = set(ClinicHoliday.objects.filter(clinic=clinic).values_list("date", flat=True))
    due_days = clinic_due_days(clinic)
    return lambda urgency: calendar_due_date(start=given, urgency=urgency, holidays=holidays, due_days=due_days)


def due_text(day: datetime.date, urgency: str, language: str, *, given: datetime.date) -> str:
    """When the patient should go, as the leaflet reads it: an emergency is today (the leaflet is given the day
    the patient is sent); the rest by the clinic's due date."""
    labels = LABELS[language]
    if urgency == "emergency":
        return f"{labels['today']}, {format_date(given, language)}"
    return f"{labels['no_later']} {format_date(day, language)}"


def leaflet_context(leaflet) -> dict:
    """The leaflet the patient takes home, or, sent to hospital now, takes there: an emergency leaflet says so,
    lists what the hospital will do, and asks to call 103 if things get worse on the way. The dates are the
    worklist's: working days (the clinic's due days and holidays) from the day the leaflet is given."""
    encounter = leaflet.encounter
    clinic = encounter.clinic
    language = language_of(leaflet)
    kb = current_kb(language)
    vocabulary = kb.vocabulary
    labels = LABELS[language]
    workup = leaflet.workup
    admission = workup.disposition == "emergency"
    given = local_moment(leaflet.created_at, clinic).date()
    due_on = due_dates(clinic, given=given)

    def due(urgency):
        return due_text(due_on(urgency), urgency, language, given=given)

    places = {"lab": labels["lab_place"], "functional": labels["functional_place"], "imaging": labels["imaging_place"]}
    tests = []
    for item in workup.items.all():
        if item.decision != "accepted":
            continue
        meta = vocabulary.items[item.code]
        tests.append(
            {
                "code": item.code,
                "name": meta["name"],
                "preparation": meta.get("preparation", ""),
                "place": places.get(item.category, ""),
                "due": due(item.urgency),
                "urgency": item.urgency,
            }
        )
    # A referral accepted but with no letter issued yet cannot be booked at reception: the patient is told the
    # doctor will give the letter, not sent to book with a paper they do not have.
    issued = letters_standing(
        Referral.objects.filter(encounter=encounter).exclude(
            status__in=(ReferralStatus.DRAFT, ReferralStatus.CANCELLED)
        )
    )
    referrals = []
    for row in workup.referrals.all():
        if row.decision != "accepted":
            continue
        if admission:
            place = labels["admission_place"]
        else:
            place = labels["referral_place" if issued(row.pk, row.specialty, row.urgency) else "letter_to_come"]
        referrals.append(
            {
                "specialty": row.specialty,
                "name": vocabulary.specialties.get(row.specialty, row.specialty),
                "due": due(row.urgency),
                "urgency": row.urgency,
                "place": place,
            }
        )
    numbers = EMERGENCY_NUMBERS
    numbers_text = labels["numbers_join"].join(numbers)
    warning = "admission_warning" if admission else "warning"
    return {
        **_common(leaflet, encounter, language),
        "leaflet": leaflet,
        "admission": admission,
        "tests": tests,
        "referrals": referrals,
        "warning_signs": kb.warning_signs,
        "emergency_numbers": numbers,
        "warning_title": labels[f"{warning}_title"],
        "warning_intro": labels[f"{warning}_intro"].format(numbers=numbers_text),
    }
