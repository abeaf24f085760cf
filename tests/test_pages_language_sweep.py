"""Every browser page, swept for text that never went through translation: a GP of a Russian clinic reads no
English word on a Russian page, and a GP reading in English no Russian one.

One realistic record (every disposition, decisions both ways, results normal, abnormal and acknowledged, letters
in each state, an overdue worklist) is opened page by page with the Django client, the pages' rich states and the
main forms' validation errors included. What a user sees or hears (text, placeholder, title, aria-label, alt, a
submit button's value) is kept; the record's own data, the guideline sources (cited in their own language),
ICD-10 codes and a short allow-list are taken out; whatever of the other alphabet is left is a leftover.

Every route of the web URL files is either visited by GET or exempt with its reason, so a new page cannot escape
the sweep."""

import dataclasses
import datetime
import re
from base64 import b32encode
from html.parser import HTMLParser
from importlib import import_module

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import Encounter
from referrals import services as referral_services
from referrals.models import PdfStatus, Referral
from tests.factories import MOSCOW_POLYCLINIC, PASSWORD, ClinicFactory, MembershipFactory
from tests.record_factories import URINARY, accept_tests, actor_for, encounter_of, patient_of, screened, workup_for
from workups import services as workup_services
from workups.engine import get_knowledge_base
from workups.models import Decision

ROUTE_FILES = ("clinic.urls_web", "workups.urls_web", "referrals.urls_web")

POST_ONLY = "answers POST only (a GET is 405): its outcome is swept on the page it leads to"
# A form's address that shows the form's refusal page; a GET there (reloaded, or the language switched on it)
# redirects to the page the form is on.
BACK_TO_FORM = "answers POST (its refusal page is swept); a GET redirects to the page its form is on"
EXEMPT = {
    "language-switch": POST_ONLY,
    "patient-list-alias": "a redirect to the patient list, which is swept at /",
    "two-factor-recovery-codes": POST_ONLY,
    "two-factor-off": POST_ONLY,
    "encounter-preview": POST_ONLY + " (the live panel fragment is swept)",
    "encounter-workup-generate": POST_ONLY,
    "encounter-workup-add-item": POST_ONLY,
    "encounter-workup-add-referral": POST_ONLY,
    "encounter-workup-accept-all": POST_ONLY,
    "encounter-results-check": POST_ONLY + " (the flag fragment is swept)",
    "encounter-results-enter": BACK_TO_FORM,
    "result-acknowledge": BACK_TO_FORM,
    "encounter-results-acknowledge": BACK_TO_FORM,
    "workup-item-decide": POST_ONLY + " (the row fragment is swept)",
    "workup-referral-decide": POST_ONLY + " (the row fragment is swept)",
    "workup-referral-letter": POST_ONLY,
    "referral-track": BACK_TO_FORM,
    "referral-rerender": POST_ONLY,
    "requisition-request": POST_ONLY,
    "leaflet-request": POST_ONLY,
    "encounter-emergency-documents": "POST: to the letter.s confirmation; GET: to the workup (both swept)",
    "referral-pdf": "a PDF file (tests/test_documents_language_sweep.py reads the letters' text)",
    "referral-conclusion-pdf": "the specialist's own PDF, uploaded: nothing of ours",
    "requisition-pdf": "a PDF file (tests/test_documents_language_sweep.py reads its text)",
    "leaflet-pdf": "a PDF file (tests/test_documents_language_sweep.py reads its text)",
}

# Seen by a user: these attributes' values (and a submit button's value), besides the text itself; data-template
# is a sentence static/js/encounter.js shows ("Unanswered red flags set to No (__N__)").
SPOKEN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt", "data-template")

# Written the same in both languages on purpose. Short: anything else is translated or is data.
ALLOWED_IN_RUSSIAN = (
    "API",  # the menu's link to the API documentation: the name developers know it by
    "PDF",
    "English",  # the letter's language is chosen by each language's own name, as the header's switch does
    "SpO₂",  # written so in Russian clinical records too
    # The authenticator apps the two-step login page names: brands.
    "Google Authenticator",
    "Microsoft Authenticator",
    "FreeOTP",
)
ALLOWED_IN_ENGLISH = (
    "Русский",  # the letter's language, as above
)
# An ICD-10 category, or a subcategory with its dot (M54, M54.1).
ICD10 = re.compile(r"\b[A-Z]\d{2}(?:\.\d{1,2})?\b")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")  # "QR-код" and "L5" are Russian enough; "Reason" is not
CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]+")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class VisibleText(HTMLParser):
    """The text a user sees or hears in the page's language: no script or style, nothing an element declares to
    be in another language (lang="ru" around a Russian letter's own words on an English page, the language
    switch's names); the spoken attributes kept, and a <template>'s text (static/js/encounter.js shows it)."""

    def __init__(self, language: str):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.parts: list[str] = []
        self.open: list[tuple[str, bool]] = []  # (tag, skipped)

    @property
    def skipping(self) -> bool:
        return any(skipped for _tag, skipped in self.open)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":  # the page's own language: Sweep checks it is the one asked for
            attributes.pop("lang", None)
        other_language = (attributes.get("lang") or self.language)[:2] != self.language
        skipped = tag in ("script", "style") or other_language
        if tag not in VOID:
            self.open.append((tag, skipped))
        if skipped or self.skipping:
            return
        for name in SPOKEN_ATTRIBUTES:
            if attributes.get(name):
                self.parts.append(f" {attributes[name]} ")
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.parts.append(f" {attributes['value']} ")

    def handle_endtag(self, tag):
        if any(name == tag for name, _skipped in self.open):
            while self.open and self.open.pop()[0] != tag:
                pass
        self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str, language: str) -> str:
    parser = VisibleText(language)
    parser.feed(html)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


SOURCE_KEYS = ("source", "sources")


def _cited(value, *, inside=False) -> list[str]:
    """Every string a knowledge base holds under a `source`/`sources` key, at any depth."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(field.name, getattr(value, field.name)) for field in dataclasses.fields(value)]
        return [s for name, item in fields for s in _cited(item, inside=inside or name in SOURCE_KEYS)]
    if isinstance(value, dict):
        return [s for name, item in value.items() for s in _cited(item, inside=inside or name in SOURCE_KEYS)]
    if isinstance(value, (list, tuple, frozenset, set)):
        return [s for item in value for s in _cited(item, inside=inside)]
    return [value] if inside and isinstance(value, str) else []


def guideline_sources(language: str) -> list[str]:
    kb = get_knowledge_base(language)
    found = [*kb.documents.values(), *_cited(vars(kb))]
    return sorted({re.sub(r"\s+", " ", text) for text in found if text}, key=len, reverse=True)


def leftovers(text: str, *, removed: list[str], allowed: tuple[str, ...], pattern: re.Pattern) -> list[str]:
    """The words of `pattern` left in `text` once `removed` and `allowed` are taken out, each in context."""
    for fragment in [*removed, *allowed]:
        if fragment:
            text = text.replace(fragment, " ¦ ")
    text = ICD10.sub(" ¦ ", text)
    found = []
    for match in pattern.finditer(text):
        start, end = max(0, match.start() - 40), min(len(text), match.end() + 40)
        found.append(f"{match.group()!r} in …{text[start:end]}…")
    return found


# -- the record ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Record:
    gp: object
    data: list[str]
    encounters: dict
    referrals: dict
    patients: dict
    results: dict


TYPED = {
    "urgent": "Онемение в пояснице справа, частое мочеиспускание, озноб",
    "emergency": "Онемение в промежности, с утра не может помочиться",
    "observe": "Онемение после долгого сидения, проходит при ходьбе",
    "routine": "Онемение в пояснице, учащённое мочеиспускание",
    "pregnant": "Онемение в пояснице после падения на льду",
    "unscreened": "Онемение в пояснице без опроса о красных флагах",
    "draft": "Онемение в пояснице, черновик",
}
FREE_TEXT = [
    *TYPED.values(),
    "Пациент отказался от исследования",
    "Повторный анализ через неделю, назначено лечение",
    "Онемение в пояснице справа",
    "Исключить радикулопатию",
    "Парестезия",
    "Корешковый синдром под вопросом",
    "Заключение невролога: радикулопатия L5 справа",
    "Записи врача: осмотр без особенностей",
    # What the test types wrong, echoed back in a refusal as typed.
    "zz-soon",
    "zz-sorok",
    "zz-nothing",
    "zz-abc",
]


def _patient(gp, family, given, middle, **extra):
    return patient_of(
        gp,
        family_name=family,
        given_name=given,
        middle_name=middle,
        name_search=f"{family} {given}".lower(),
        snils="11223344595",
        oms_policy="7712345678901234",
        insurer="АО «СОГАЗ-Мед»",
        address="г. Москва, ул. Ленина, д. 1, кв. 5",
        phone="+7 916 123-45-67",
        **extra,
    )


def build_record(gp) -> Record:
    actor = actor_for(gp, channel="web")
    today = timezone.localdate()
    long_ago = today - datetime.timedelta(days=90)
    patients = {
        "urgent": _patient(gp, "Иванова", "Мария", "Петровна", sex="female", birth_date=datetime.date(1968, 3, 2)),
        "emergency": _patient(gp, "Смирнов", "Алексей", "Игоревич", sex="male", birth_date=datetime.date(1979, 9, 14)),
        "observe": _patient(gp, "Кузнецова", "Ольга", "Андреевна", sex="female", birth_date=datetime.date(1994, 6, 21)),
        "routine": _patient(gp, "Попов", "Сергей", "Николаевич", sex="male", birth_date=datetime.date(1960, 1, 5)),
        "pregnant": _patient(gp, "Соколова", "Елена", "Викторовна", sex="female", birth_date=datetime.date(1998, 2, 8)),
        "unscreened": _patient(gp, "Новиков", "Павел", "Олегович", sex="male", birth_date=datetime.date(1985, 11, 30)),
    }
    findings = {
        "urgent": screened({**URINARY, "rf_fever": True, "sx_dysuria": True}),
        "emergency": screened({"rf_saddle_anesthesia": True, "rf_fever": True, "loc_lumbar": True, **URINARY}),
        "observe": screened({"loc_lumbar": True, "pattern_positional": True, "hx_prolonged_static_posture": True}),
        "routine": screened(URINARY),
        "pregnant": screened({"loc_lumbar": True, "hx_minor_trauma": True, "ex_paravertebral_tenderness": True}),
        "unscreened": {"loc_lumbar": True, "sx_urinary_frequency": True},
    }
    notes = {"location": "Онемение в пояснице справа", "plan": "Записи врача: осмотр без особенностей"}
    encounters = {
        kind: encounter_of(
            gp,
            patient=patients[kind],
            visit_date=long_ago,
            chief_complaint=TYPED[kind],
            findings=findings[kind],
            duration_days=4,
            temperature_c=38.4 if kind == "urgent" else 36.6,
            heart_rate=88,
            pregnant=True if kind == "pregnant" else False if patients[kind].sex == "female" else None,
            notes=notes,
        )
        for kind in findings
    }
    workups = {kind: workup_for(gp, encounter) for kind, encounter in encounters.items()}
    expected = {
        "urgent": "urgent",
        "emergency": "emergency",
        "observe": "observe",
        "routine": "routine",
        "pregnant": "routine",
        "unscreened": "routine",
    }
    assert {kind: workup.disposition for kind, workup in workups.items()} == expected
    assert workups["emergency"].result["deferred"] and workups["pregnant"].result["withheld"]
    assert workups["unscreened"].result["warnings"]

    # The urgent one: tests accepted three months ago (so overdue), one declined, results in.
    urgent = workups["urgent"]
    items = list(urgent.items.all())
    declined = next(item for item in items if item.code != "lab_cbc" and item.code != "lab_crp_esr")
    workup_services.recommendation_decide(
        actor=actor, recommendation=declined, decision=Decision.DECLINED, reason="Пациент отказался от исследования"
    )
    accept_tests(gp, urgent, at=timezone.now() - datetime.timedelta(days=80))
    for row in urgent.referrals.all():
        workup_services.recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
    urgent_encounter = encounters["urgent"]
    results = {}
    for code, value in (("res_hemoglobin", 95), ("res_crp", 40), ("res_wbc", 7.2)):
        results[code] = workup_services.result_enter(
            actor=actor, encounter=urgent_encounter, code=code, value=value, performed_on=today
        )
    workup_services.result_acknowledge(
        actor=actor, result=results["res_crp"], note="Повторный анализ через неделю, назначено лечение"
    )
    workup_services.workup_review(actor=actor, encounter=urgent_encounter)

    # Letters: a draft, an issued one, a booked one, an answered one.
    rows = list(urgent.referrals.all())
    letters = {
        "draft": referral_services.referral_create(actor=actor, encounter=urgent_encounter, recommendation=rows[0])
    }
    for state, specialty in (("issued", "neurology"), ("booked", "urology"), ("completed", "neurosurgery")):
        letter = referral_services.referral_create(
            actor=actor,
            encounter=urgent_encounter,
            specialty=specialty,
            urgency="urgent",
            reason="Исключить радикулопатию",
            question="Корешковый синдром под вопросом",
            icd10="M54.1",
        )
        letters[state] = referral_services.referral_issue(actor=actor, referral=letter)
    referral_services.referral_status_change(
        actor=actor,
        referral=letters["booked"],
        status="booked",
        appointment_at=timezone.now() + datetime.timedelta(days=3),
    )
    referral_services.referral_status_change(
        actor=actor,
        referral=letters["completed"],
        status="booked",
        # Seen the day the letter was issued (an appointment before the issue is refused).
        appointment_at=timezone.now() + datetime.timedelta(minutes=30),
    )
    referral_services.referral_status_change(
        actor=actor,
        referral=letters["completed"],
        status="completed",
        conclusion="Заключение невролога: радикулопатия L5 справа",
        appointment_at=timezone.now() + datetime.timedelta(hours=1),
    )
    for state, specialty in (("cancelled", "urology"), ("declined_by_patient", "traumatology")):
        letter = referral_services.referral_create(
            actor=actor, encounter=urgent_encounter, specialty=specialty, urgency="routine", reason="Парестезия"
        )
        letter = referral_services.referral_issue(actor=actor, referral=letter)
        letters[state] = referral_services.referral_status_change(
            actor=actor, referral=letter, status=state, reason="Пациент отказался от исследования"
        )
    referral_services.overdue_mark()
    # The letters' documents in each state: one rendered, one that failed (the others are still pending).
    Referral.objects.filter(pk=letters["issued"].pk).update(pdf_status=PdfStatus.READY, pdf_file="documents/x.pdf")
    Referral.objects.filter(pk=letters["booked"].pk).update(pdf_status=PdfStatus.FAILED)
    # A second haemoglobin supersedes the first (both shown).
    results["res_hemoglobin_again"] = workup_services.result_enter(
        actor=actor, encounter=urgent_encounter, code="res_hemoglobin", value=92, performed_on=today
    )

    # The routine one: decisions both ways, then finalized; the observe one finalized with nothing to do.
    routine = workups["routine"]
    for index, row in enumerate([*routine.items.all(), *routine.referrals.all()]):
        decision = Decision.DECLINED if index % 3 == 0 else Decision.ACCEPTED
        workup_services.recommendation_decide(
            actor=actor, recommendation=row, decision=decision, reason="Парестезия" if index % 3 == 0 else ""
        )
    workup_services.encounter_finalize(actor=actor, encounter=encounters["routine"])
    workup_services.encounter_finalize(actor=actor, encounter=encounters["observe"])
    encounters["draft"] = encounter_of(
        gp, patient=patients["routine"], chief_complaint=TYPED["draft"], findings=screened(URINARY), notes=notes
    )
    # More than a page of patients, and of one patient's encounters: the pagers.
    for _ in range(26):
        patient_of(gp, family_name="Тестова", given_name="Анна", name_search="тестова анна")
        encounter_of(
            gp, patient=patients["observe"], chief_complaint=TYPED["draft"], findings=findings["observe"], notes=notes
        )
    # A workup made before the draft changed: stale.
    encounters["stale"] = encounter_of(
        gp, patient=patients["pregnant"], chief_complaint=TYPED["draft"], findings=screened(URINARY), notes=notes
    )
    workup_for(gp, encounters["stale"])
    Encounter.objects.filter(pk=encounters["stale"].pk).update(duration_days=30)
    for encounter in encounters.values():
        encounter.refresh_from_db()

    clinic = gp.membership.clinic
    data = [clinic.name, clinic.legal_name, clinic.address, clinic.phone, gp.username, gp.get_full_name()]
    data += [gp.membership.full_name, gp.membership.position, *FREE_TEXT, "Тестова Анна"]
    for letter in letters.values():
        letter.refresh_from_db()
        # What the letter says is in the letter's language (the clinic's): its fields are the record's data.
        data += [letter.reason, letter.question, letter.diagnosis]
    for patient in patients.values():
        data += [patient.full_name, patient.family_name, patient.given_name, patient.middle_name]
        data += [patient.address, patient.insurer, patient.phone]
    return Record(gp, data, encounters, letters, patients, results)


# -- the sweep ----------------------------------------------------------------------------------------


class Sweep:
    """Opens pages as one persona in one language; keeps each page's visible text and each route visited."""

    def __init__(self, client: Client, language: str):
        self.client, self.language = client, language
        self.pages: dict[str, str] = {}
        self.wrong_language: dict[str, str] = {}  # page: the language its <html lang> declares instead
        self.visited: set[str] = set()
        self.data: list[str] = []  # what the sweep itself made (keys, codes, a colleague): data like the record's

    def keep(self, label, response, expected):
        assert response.status_code in expected, (label, response.status_code, response.content[:300])
        body = response.content.decode()
        if body:
            self.pages[label] = visible_text(body, self.language)
            declared = re.search(r"<html[^>]*\blang=\"([^\"]*)\"", body)
            if declared and declared.group(1)[:2] != self.language:
                self.wrong_language[label] = declared.group(1)
        return response

    def get(self, url, *, expected=(200,), follow=False, **extra):
        response = self.client.get(url, HTTP_ACCEPT_LANGUAGE=self.language, follow=follow, **extra)
        self.visited.add(resolve(url.split("?")[0]).url_name)
        if follow:
            for hop, _status in response.redirect_chain:
                self.visited.add(resolve(hop.split("?")[0]).url_name)
        return self.keep(f"GET {url}", response, expected)

    def post(self, url, data, *, expected=(200,), label="", follow=True, **extra):
        response = self.client.post(url, data, HTTP_ACCEPT_LANGUAGE=self.language, follow=follow, **extra)
        return self.keep(f"POST {url} {label}".strip(), response, expected)


def sweep_pages(record: Record, language: str) -> Sweep:
    gp = record.gp
    client = Client()
    client.force_login(gp)
    s = Sweep(client, language)
    enc, letters, patients = record.encounters, record.referrals, record.patients
    htmx = {"HTTP_HX_REQUEST": "true"}

    # The record: the list, search (and its refusal), registering and editing a patient, with their errors.
    s.get("/")
    s.get("/?page=2")
    s.get("/?page=9")
    s.post("/", {"q": "Иванова"}, label="search")
    s.post("/", {"q": "Иванова"}, label="search fragment", **htmx)
    s.post("/", {"q": "", "birth_date": "1.2.3"}, label="bad birth date")
    s.post("/", {"q": "Никого такого"}, label="nothing found")
    s.get("/patients/new/")
    s.post("/patients/new/", {"family_name": "", "birth_date": "2999-01-01", "snils": "112-233-445 96"}, label="bad")
    s.post(
        "/patients/new/",
        {"family_name": "Иванова", "given_name": "Мария", "birth_date": "1968-03-02", "sex": "female"},
        label="duplicate",
    )
    for patient in patients.values():
        s.get(f"/patients/{patient.pk}/")
    s.get(f"/patients/{patients['observe'].pk}/?page=2")
    patient = patients["urgent"]
    s.get(f"/patients/{patient.pk}/edit/")
    s.post(f"/patients/{patient.pk}/edit/", {"given_name": "", "oms_policy": "12", "sex": "x"}, label="bad")

    # The consultation: a new encounter, a draft, its errors, the live panel, "all remaining red flags: No".
    s.get(f"/patients/{patient.pk}/encounters/new/")
    s.post(
        f"/patients/{patient.pk}/encounters/new/",
        {"visit_date": "", "duration_days": "-3", "temperature_c": "zz-sorok", "heart_rate": "900"},
        label="bad",
    )
    body = {
        "visit_date": "2024-03-01",
        "duration_days": "3",
        "temperature_c": "37,4",
        "heart_rate": "88",
        "f_loc_lumbar": "yes",
        "f_sx_urinary_frequency": "yes",
        "f_rf_fever": "no",
    }
    s.post(f"/patients/{patient.pk}/encounters/new/", {**body, "red_flags_no": "1"}, label="red flags no")
    s.post(f"/patients/{patient.pk}/encounters/preview/", body, label="panel", **htmx)
    s.post(
        f"/patients/{patient.pk}/encounters/preview/",
        {**body, "f_rf_saddle_anesthesia": "yes", "f_rf_bladder_dysfunction": "yes"},
        label="emergency panel",
        **htmx,
    )
    s.post(f"/patients/{patient.pk}/encounters/preview/", {**body, "duration_days": "x"}, label="bad panel", **htmx)
    draft = enc["draft"]
    s.get(f"/encounters/{draft.pk}/")
    s.post(f"/encounters/{draft.pk}/", {"visit_date": "2999-01-01", "duration_days": ""}, label="bad")
    s.get(f"/encounters/{draft.pk}/workup/")  # no workup yet

    # Each disposition: the workup, its print view, the finalize confirmation (or the finalized record).
    for kind, encounter in enc.items():
        if kind == "draft":
            continue
        s.get(f"/encounters/{encounter.pk}/")
        s.get(f"/encounters/{encounter.pk}/workup/")
        s.get(f"/encounters/{encounter.pk}/workup/print/")
        if not encounter.is_finalized:
            s.get(f"/encounters/{encounter.pk}/finalize/")
    emergency = enc["emergency"]
    s.post(f"/encounters/{emergency.pk}/finalize/", {"reason": " "}, label="no reason")
    s.post(f"/encounters/{enc['routine'].pk}/finalize/", {}, label="finalized already")

    # Decisions and additions by hand, with their refusals.
    item = enc["pregnant"].workups.first().items.first()
    referral_row = enc["pregnant"].workups.first().referrals.first()
    s.post(f"/workup-items/{item.pk}/decide/", {"decision": "maybe"}, label="bad decision", **htmx)
    s.post(f"/workup-items/{item.pk}/decide/", {"decision": "accepted"}, label="accepted", **htmx)
    s.post(f"/workup-referrals/{referral_row.pk}/decide/", {"decision": "declined", "reason": "Парестезия"}, **htmx)
    s.post(f"/workup-items/{item.pk}/decide/", {"decision": "maybe"}, label="bad decision, page")
    s.post(f"/encounters/{enc['pregnant'].pk}/workup/add-item/", {"code": "zz-nothing"}, label="bad item")
    s.post(f"/encounters/{enc['pregnant'].pk}/workup/add-referral/", {"specialty": ""}, label="bad referral")
    s.post(f"/encounters/{enc['unscreened'].pk}/workup/accept-all/", {}, label="accept all")
    s.post(f"/encounters/{enc['routine'].pk}/workup/add-item/", {"code": "lab_cbc"}, label="finalized")

    # Results: the flag as typed, refusals beside their fields, acknowledging without a note; the review.
    urgent = enc["urgent"]
    typed = (("res_hemoglobin", "95"), ("res_hemoglobin", "13,2"), ("res_wbc", "много"), ("zz-nothing", "1"))
    for code, value in typed:
        s.post(f"/encounters/{urgent.pk}/results/check/", {"code": code, code: value}, label=f"{code}={value}", **htmx)
    s.post(
        f"/encounters/{urgent.pk}/results/enter/",
        {"test": "lab_cbc", "res_hemoglobin": "zz-abc", "res_wbc": "13000", "performed_on": "2999-01-01"},
        label="bad results",
    )
    s.post(f"/encounters/{urgent.pk}/results/enter/", {"test": "zz-nothing"}, label="no test")
    s.post(f"/results/{record.results['res_hemoglobin'].pk}/acknowledge/", {"note": " "}, label="no note")
    s.post(f"/results/{record.results['res_crp'].pk}/acknowledge/", {"note": "x"}, label="acknowledged already")
    several = f"/encounters/{urgent.pk}/results/acknowledge/"
    s.post(several, {"note": "x"}, label="several, none ticked")
    ticked = [record.results["res_hemoglobin"].pk, record.results["res_crp"].pk]
    s.post(several, {"results": ticked, "note": "x"}, label="several, one acknowledged already")
    s.get(f"/encounters/{urgent.pk}/review/")
    s.get(f"/encounters/{enc['pregnant'].pk}/review/")  # no results yet
    s.post(f"/encounters/{enc['pregnant'].pk}/review/", {}, label="no results")

    # Letters: by hand (and its errors), each state, the confirmation, tracking refusals; the documents' status.
    s.get(f"/encounters/{urgent.pk}/referrals/new/")
    s.post(f"/encounters/{urgent.pk}/referrals/new/", {"specialty": "", "icd10": "ZZZ.99"}, label="bad")
    for letter in letters.values():
        s.get(f"/referrals/{letter.pk}/")
        s.get(f"/referrals/{letter.pk}/status/", **htmx)
    s.get(f"/referrals/{letters['draft'].pk}/issue/")
    s.post(
        f"/referrals/{letters['draft'].pk}/",
        {"urgency": "zz-soon", "reason": "", "icd10": "M5", "language": "de"},
        label="bad letter",
    )
    s.post(f"/referrals/{letters['issued'].pk}/tracking/", {"status": "booked"}, label="booked without a time")
    s.post(
        f"/referrals/{letters['issued'].pk}/tracking/",
        {"status": "booked", "appointment_at": "завтра"},
        label="booked at a bad time",
    )
    s.post(f"/referrals/{letters['issued'].pk}/tracking/", {"status": "lost"}, label="bad status")
    s.post(
        f"/referrals/{letters['completed'].pk}/tracking/", {"status": "booked", "appointment_at": "2024-03-10T10:00"}
    )
    s.post(f"/encounters/{urgent.pk}/requisition/", {}, label="requisition")
    s.post(f"/encounters/{urgent.pk}/leaflet/", {}, label="leaflet")
    s.get(f"/encounters/{urgent.pk}/requisition/status/", **htmx)
    s.get(f"/encounters/{urgent.pk}/leaflet/status/", **htmx)
    s.post(f"/encounters/{enc['routine'].pk}/referrals/new/", {"specialty": "neurology"}, label="finalized")

    # The worklist with overdue rows, and the navigation's badge.
    s.get("/worklist/")
    s.get("/worklist/badge/", **htmx)

    # Refusals of the whole request: another clinic's record, a form posted without its CSRF token.
    s.get("/patients/999999/", expected=(404,))
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(gp)
    refused = guarded.post("/", {"q": "x"}, HTTP_ACCEPT_LANGUAGE=language)
    assert refused.status_code == 403
    s.keep("POST / without a CSRF token", refused, (403,))

    sweep_successes(s, record)
    sweep_accounts(s, gp, language)
    return s


def sweep_successes(s: Sweep, record: Record) -> None:
    """What each write says when it works (the message on the page it leads to). Last: these change the record."""
    enc, letters = record.encounters, record.referrals
    registered = {"family_name": "Зайцева", "given_name": "Ирина", "birth_date": "1990-04-04", "sex": "female"}
    s.data += ["Зайцева Ирина", "Зайцева", "Ирина"]
    page = s.post("/patients/new/", registered, label="registered")
    patient = page.redirect_chain[-1][0].strip("/").split("/")[-1]
    s.post(f"/patients/{patient}/edit/", {**registered, "phone": "+7 900 000-00-00"}, label="saved")
    answers = {f"f_{code}": "yes" if value else "no" for code, value in screened(URINARY).items()}
    body = {"visit_date": "2024-03-01", "duration_days": "3", **answers}
    s.post(f"/patients/{patient}/encounters/new/", body, label="saved as a draft")
    s.post(f"/patients/{patient}/encounters/new/", {**body, "show_workup": "1"}, label="with its workup")
    draft = enc["draft"]
    s.post(f"/encounters/{draft.pk}/", {**body, "duration_days": "5"}, label="saved")
    s.post(f"/encounters/{draft.pk}/workup/generate/", {}, label="generated")
    s.post(
        f"/encounters/{draft.pk}/workup/add-item/",
        {"code": "lab_crp_esr", "urgency": "urgent", "rationale": "Парестезия"},
        label="added",
    )
    s.post(
        f"/encounters/{draft.pk}/workup/add-referral/",
        {"specialty": "rheumatology", "urgency": "routine", "reason": "Парестезия"},
        label="added",
    )
    urgent = enc["urgent"]
    s.post(
        f"/encounters/{urgent.pk}/results/enter/",
        {"test": "lab_crp_esr", "res_crp": "3", "performed_on": timezone.localdate().isoformat()},
        label="entered",
    )
    hb = record.results["res_hemoglobin_again"]
    s.post(f"/results/{hb.pk}/acknowledge/", {"note": "Повторный анализ через неделю, назначено лечение"})
    s.post(f"/encounters/{urgent.pk}/review/", {}, label="reviewed")
    s.post(f"/encounters/{urgent.pk}/review/", {}, label="nothing changed")
    draft_letter = letters["draft"]
    fields = {name: getattr(draft_letter, name) for name in ("urgency", "reason", "icd10", "diagnosis", "language")}
    s.post(f"/referrals/{draft_letter.pk}/", {**fields, "question": "Корешковый синдром под вопросом"}, label="saved")
    s.post(f"/referrals/{draft_letter.pk}/", {**fields, "question": "Корешковый синдром под вопросом"}, label="same")
    draft_letter.refresh_from_db()
    s.post(f"/referrals/{draft_letter.pk}/issue/", {"generation": "0"}, label="changed since seen")
    s.post(f"/referrals/{draft_letter.pk}/issue/", {"generation": draft_letter.pdf_generation}, label="issued")
    s.post(
        f"/referrals/{letters['issued'].pk}/tracking/",
        {"status": "booked", "appointment_at": "2030-03-10T10:00"},
        label="booked",
    )
    s.post(f"/referrals/{letters['issued'].pk}/rerender/", {}, label="rendered again")
    s.post(f"/encounters/{enc['emergency'].pk}/finalize/", {"reason": "Парестезия"}, label="finalized")
    s.post(f"/encounters/{enc['emergency'].pk}/finalize/", {"reason": "Парестезия"}, label="finalized already")
    s.post(f"/referrals/{letters['booked'].pk}/tracking/", {"status": "booked"}, label="after finalizing")


def _code(device) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sweep_accounts(s: Sweep, gp, language: str) -> None:
    """Login, the password reset, two-step login: anonymous pages and a second GP who turns it on."""
    anonymous = Sweep(Client(), language)
    anonymous.get("/accounts/login/")
    anonymous.post("/accounts/login/", {"username": "nobody", "password": "wrong"}, label="wrong password")
    anonymous.get("/accounts/password_reset/")
    anonymous.post("/accounts/password_reset/", {"email": "not an address"}, label="bad address", expected=(400,))
    anonymous.get("/accounts/password_reset/done/")
    uid, token = urlsafe_base64_encode(force_bytes(gp.pk)), default_token_generator.make_token(gp)
    anonymous.get(f"/accounts/reset/{uid}/{token}/", follow=True)
    set_password = f"/accounts/reset/{uid}/set-password/"
    anonymous.post(set_password, {"new_password1": "12345678", "new_password2": "1234"}, expected=(400,), label="bad")
    anonymous.get(f"/accounts/reset/{uid}/bad-token/")
    anonymous.get("/accounts/reset/done/")
    for attempt in range(6):
        anonymous.post(
            "/accounts/login/",
            {"username": gp.username, "password": "wrong"},
            expected=(200, 429),
            label="locked out" if attempt == 5 else "wrong password",
        )

    colleague = MembershipFactory(
        clinic=gp.membership.clinic, user__username="vrach2", user__first_name="Ирина", user__last_name="Орлова"
    ).user
    browser = Client()
    browser.force_login(colleague)
    mine = Sweep(browser, language)
    mine.get("/accounts/two-factor/")
    mine.get("/accounts/two-factor/setup/")
    device = TOTPDevice.objects.get(user=colleague, confirmed=False)
    secret = " ".join(re.findall(".{1,4}", b32encode(device.bin_key).decode()))
    mine.post("/accounts/two-factor/setup/", {"code": "000000x"}, expected=(400,), label="not a code")
    mine.post("/accounts/two-factor/setup/", {"code": "000000"}, expected=(400, 429), label="wrong code")
    mine.post("/accounts/two-factor/setup/", {"code": "000000"}, expected=(429,), label="throttled")
    device.refresh_from_db()
    device.throttle_reset()
    first = mine.post("/accounts/two-factor/setup/", {"code": _code(device)}, label="recovery codes")
    codes = re.findall(r"<li><code>(\w+)</code></li>", first.content.decode())
    codes += re.findall(
        r"<li><code>(\w+)</code></li>", browser.post("/accounts/two-factor/recovery-codes/").content.decode()
    )
    mine.get("/accounts/two-factor/")
    login = Client()
    assert login.post("/accounts/login/", {"username": colleague.username, "password": PASSWORD}).status_code == 302
    second = Sweep(login, language)
    second.get("/accounts/two-factor/verify/")
    second.post("/accounts/two-factor/verify/", {"code": "00000000"}, expected=(400,), label="wrong code")
    second.get("/", expected=(302,))
    for other in StaticDevice.objects.filter(user=colleague):
        other.throttle_reset()
    second.post("/accounts/two-factor/verify/", {"code": codes[-1]}, label="recovery code")
    second.post("/accounts/two-factor/off/", {}, label="turn off")
    s.data += [secret, secret.replace(" ", ""), *codes, colleague.username, "Ирина Орлова", "Орлова", "Ирина"]
    for other in (anonymous, mine, second):
        s.pages.update(
            {
                f"{other_label} ({colleague.username if other is not anonymous else 'anonymous'})": text
                for other_label, text in other.pages.items()
            }
        )
        s.visited |= other.visited
        s.wrong_language.update(other.wrong_language)


def _leftovers_by_page(record, sweep, *, language, allowed, pattern) -> dict:
    """Each page's words in the other script, once the record's data and the sources cited in `language` are out."""
    removed = sorted({*record.data, *sweep.data, *guideline_sources(language)} - {""}, key=len, reverse=True)
    found = {}
    for page, text in sweep.pages.items():
        words = leftovers(text, removed=removed, allowed=allowed, pattern=pattern)
        if words:
            found[page] = words
    return found


# -- the tests ----------------------------------------------------------------------------------------


@pytest.fixture
def russian_gp(db):
    clinic = ClinicFactory(**MOSCOW_POLYCLINIC)
    return MembershipFactory(
        clinic=clinic,
        user__username="vrach",
        user__first_name="Анна",
        user__last_name="Петрова",
        full_name="Петрова Анна Сергеевна",
        position="врач-терапевт участковый",
    ).user


def _route_names() -> dict[str, str]:
    return {
        pattern.name: module for module in ROUTE_FILES for pattern in import_module(module).urlpatterns if pattern.name
    }


def _assert_every_route_swept(sweep: Sweep, client: Client) -> None:
    missing = sorted(set(_route_names()) - sweep.visited - set(EXEMPT))
    assert not missing, f"routes never opened by the sweep (visit them, or exempt them with a reason): {missing}"
    stale = sorted(set(EXEMPT) - set(_route_names()))
    assert not stale, f"exempt routes that no longer exist: {stale}"
    # An exemption for "POST only" holds only while GET is refused: a page added to such a route is swept.
    for name, why in EXEMPT.items():
        if why.startswith(POST_ONLY):
            pattern = next(p for m in ROUTE_FILES for p in import_module(m).urlpatterns if p.name == name)
            args = [1] * len(pattern.pattern.converters)
            assert client.get(reverse(name, args=args)).status_code == 405, name


def _assert_every_allowance_needed(pages: dict[str, str], allowed: tuple[str, ...]) -> None:
    """The allow-list stays short: an allowance no page needs any more is taken off it."""
    unused = [fragment for fragment in allowed if not any(fragment in text for text in pages.values())]
    assert not unused, f"allowed but on no page (remove them from the allow-list): {unused}"


def _report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}:\n    " + "\n    ".join(dict.fromkeys(words)) for page, words in found.items())


def test_no_english_is_left_on_a_russian_page(russian_gp):
    record = build_record(russian_gp)
    sweep = sweep_pages(record, "ru")
    client = Client()
    client.force_login(russian_gp)
    _assert_every_route_swept(sweep, client)
    assert not sweep.wrong_language, f"pages that declare another language: {sweep.wrong_language}"
    found = _leftovers_by_page(record, sweep, language="ru", allowed=ALLOWED_IN_RUSSIAN, pattern=LATIN_WORD)
    assert not found, "English left on Russian pages:\n" + _report(found)
    _assert_every_allowance_needed(sweep.pages, ALLOWED_IN_RUSSIAN)
    # The unscreened red flags continue the warning's sentence: lower case, yet "ДТП" and "°C" as written.
    warning = sweep.pages[f"GET /encounters/{record.encounters['unscreened'].pk}/workup/"]
    assert "спросите о каждом из них: онемение" in warning and "38,0 °C" in warning and "(ДТП," in warning


def test_no_russian_is_shown_on_an_english_page(russian_gp):
    record = build_record(russian_gp)
    sweep = sweep_pages(record, "en")
    assert not sweep.wrong_language, f"pages that declare another language: {sweep.wrong_language}"
    found = _leftovers_by_page(record, sweep, language="en", allowed=ALLOWED_IN_ENGLISH, pattern=CYRILLIC_WORD)
    assert not found, "Russian on English pages:\n" + _report(found)
    _assert_every_allowance_needed(sweep.pages, ALLOWED_IN_ENGLISH)
