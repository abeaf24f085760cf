"""Russian and English, both first-class: the knowledge base's texts, the API's answers, the GP's
interface language and the clinic's time zone. Codes and clinical answers never depend on the language."""

import datetime
import shutil
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.utils import translation
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clinic.models import Encounter
from tests.cases import body as case_body
from tests.cases import case as make_case
from tests.record_factories import EncounterFactory, PatientFactory, api_client_for, clinic_of, screened
from workups.engine import KnowledgeBaseError, evaluate, get_knowledge_base, load_knowledge_base
from workups.engine.loader import KNOWLEDGE_DIR

TERMS = yaml.safe_load((Path(__file__).parent / "data" / "terms-ru.yaml").read_text(encoding="utf-8"))
EVALUATE = "/api/v1/workup/evaluate/"
# Texts in an answer; everything else (codes, urgencies, triggers, rule ids) must be the same in any language.
TEXT_KEYS = {"name", "rationale", "reason", "message", "sources", "advice", "review"}
RADICULAR = {
    "loc_lumbar": True,
    "sx_leg_pain": True,
    "ex_straight_leg_raise_positive": True,
    "ex_reflexes_reduced": True,
}


def without_texts(value):
    if isinstance(value, dict):
        return {key: without_texts(inner) for key, inner in value.items() if key not in TEXT_KEYS}
    if isinstance(value, list):
        return [without_texts(inner) for inner in value]
    return value


# -- the knowledge base ----------------------------------------------------------------------------


def test_the_russian_name_of_every_code_is_the_one_a_russian_gp_expects():
    vocabulary = get_knowledge_base("ru").vocabulary
    tables = {
        "findings": {code: meta["name"] for code, meta in vocabulary.findings.items()},
        "items": {code: meta["name"] for code, meta in vocabulary.items.items()},
        "specialties": vocabulary.specialties,
        "dispositions": vocabulary.dispositions,
        "warnings": vocabulary.warnings,
    }
    mismatches = [
        (table, code, ours, TERMS[table][code])
        for table, names in tables.items()
        for code, ours in names.items()
        if code in TERMS.get(table, {}) and ours != TERMS[table][code]
    ]
    assert mismatches == []


def test_every_code_of_the_vocabulary_has_a_russian_name_that_is_not_the_english_one():
    english, russian = get_knowledge_base("en").vocabulary, get_knowledge_base("ru").vocabulary
    assert set(english.findings) == set(russian.findings)
    same = [code for code in english.findings if english.findings[code]["name"] == russian.findings[code]["name"]]
    same += [code for code in english.items if english.items[code]["name"] == russian.items[code]["name"]]
    same += [code for code in english.specialties if english.specialties[code] == russian.specialties[code]]
    assert same == []


def test_every_rule_has_its_texts_and_sources_in_both_languages_and_names_its_icd10_code():
    english, russian = get_knowledge_base("en"), get_knowledge_base("ru")
    for ours, theirs in zip(english.rules, russian.rules, strict=True):
        assert ours.id == theirs.id and ours.icd10 == theirs.icd10 and ours.icd10
        assert ours.rationale != theirs.rationale, ours.id
        assert len(ours.sources) == len(theirs.sources)
    assert "Seed article" not in " ".join(source for rule in english.rules for source in rule.sources)


def test_russian_guidelines_are_cited_for_low_back_pain_and_radiculopathy():
    sources = " ".join(source for rule in get_knowledge_base("ru").rules for source in rule.sources)
    assert "Скелетно-мышечные (неспецифические) боли в нижней части спины" in sources
    assert "Дискогенная пояснично-крестцовая радикулопатия" in sources


@pytest.fixture
def knowledge_copy(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


def test_a_text_missing_its_russian_stops_the_knowledge_base_from_loading(knowledge_copy):
    path = knowledge_copy / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["items"]["lab_nechiporenko"]["name"]["ru"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    with pytest.raises(KnowledgeBaseError, match=r"lab_nechiporenko.*missing translation\(s\) ru"):
        load_knowledge_base(knowledge_copy)


def test_a_rule_without_a_valid_icd10_code_stops_the_knowledge_base_from_loading(knowledge_copy):
    path = knowledge_copy / "rules" / "urgent.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rules"][0]["icd10"] = "M99.99"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    with pytest.raises(KnowledgeBaseError, match="not a WHO ICD-10 code"):
        load_knowledge_base(knowledge_copy)


def test_an_english_only_text_stops_the_knowledge_base_from_loading(knowledge_copy):
    path = knowledge_copy / "base.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["stewardship"]["reason"] = "Only in English"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    with pytest.raises(KnowledgeBaseError, match="stewardship reason"):
        load_knowledge_base(knowledge_copy)


FINDINGS = sorted(get_knowledge_base().vocabulary.findings)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    present=st.sets(st.sampled_from(FINDINGS), max_size=8),
    absent=st.sets(st.sampled_from(FINDINGS), max_size=8),
    sex=st.sampled_from(["female", "male"]),
    age=st.integers(min_value=16, max_value=90),
    pregnant=st.sampled_from([None, True, False]),
    temperature=st.sampled_from([None, 36.6, 37.5, 38.4]),
)
def test_the_clinical_answer_is_the_same_in_russian_and_english(present, absent, sex, age, pregnant, temperature):
    meta = get_knowledge_base().vocabulary.findings
    findings = {code: True for code in present if meta[code].get("sex") in (None, sex)}
    findings.update({code: False for code in absent - present})
    findings["loc_lumbar"] = True
    case = make_case(
        sex=sex,
        age=age,
        findings=findings,
        screen="asked",
        pregnant=pregnant if sex == "female" else None,
        temperature_c=temperature,
    )

    english, russian = evaluate(get_knowledge_base("en"), case), evaluate(get_knowledge_base("ru"), case)

    assert without_texts(russian) == without_texts(english)


# -- the API answers in the language asked for ----------------------------------------------------


def test_the_evaluate_endpoint_answers_in_the_accept_language_with_the_same_codes(gp_api):
    request = case_body(findings=RADICULAR)

    russian = gp_api.post(EVALUATE, request, format="json", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9").json()
    english = gp_api.post(EVALUATE, request, format="json", HTTP_ACCEPT_LANGUAGE="en").json()

    assert without_texts(russian) == without_texts(english)
    names = {row["specialty"]: row["name"] for row in russian["referrals"]}
    assert names["neurology"] == "Невролог"
    assert {row["specialty"]: row["name"] for row in english["referrals"]}["neurology"] == "Neurology"


def test_validation_errors_come_in_russian_too(gp_api):
    response = gp_api.post(
        EVALUATE, {**case_body(), "age": 130, "pregnant": True}, format="json", HTTP_ACCEPT_LANGUAGE="ru"
    )

    assert response.status_code == 400
    errors = response.json()
    with translation.override("ru"):
        expected = translation.gettext("A male patient cannot be pregnant.")
    assert errors["pregnant"] == [expected] and expected != "A male patient cannot be pregnant."
    # DRF's own messages come from its Russian catalogue.
    assert "120" in errors["age"][0] and "Убедитесь" in errors["age"][0]


def test_the_vocabulary_names_follow_the_accept_language(gp_api):
    codes = {
        row["code"]: row["name"] for row in gp_api.get("/api/v1/vocabulary/", HTTP_ACCEPT_LANGUAGE="ru").json()["codes"]
    }

    assert codes["lab_nechiporenko"] == "Анализ мочи по Нечипоренко"
    assert codes["ex_cva_tenderness"].startswith("Болезненность в рёберно-позвоночном углу")


def test_a_gp_who_chose_russian_gets_russian_from_the_api_unless_the_caller_asks_otherwise(gp):
    gp.membership.language = "ru"
    gp.membership.save()
    api = api_client_for(gp)

    default = api.post(EVALUATE, case_body(findings=RADICULAR), format="json").json()
    asked = api.post(EVALUATE, case_body(findings=RADICULAR), format="json", HTTP_ACCEPT_LANGUAGE="en").json()

    assert default["referrals"][0]["name"] == "Невролог"
    assert asked["referrals"][0]["name"] == "Neurology"


def test_a_stored_workup_reads_in_either_language(gp):
    encounter = EncounterFactory(
        patient=PatientFactory(clinic=clinic_of(gp), sex="female"), clinician=gp, findings=screened(RADICULAR)
    )
    api = api_client_for(gp)
    url = f"/api/v1/encounters/{encounter.pk}/workup/"
    api.post(url, format="json")

    russian = api.get(url, HTTP_ACCEPT_LANGUAGE="ru").json()
    english = api.get(url, HTTP_ACCEPT_LANGUAGE="en").json()

    assert [row["id"] for row in russian["items"]] == [row["id"] for row in english["items"]]
    neurology_ru = next(row for row in russian["referrals"] if row["specialty"] == "neurology")
    neurology_en = next(row for row in english["referrals"] if row["specialty"] == "neurology")
    assert neurology_ru["name"] == "Невролог" and neurology_en["name"] == "Neurology"
    assert neurology_ru["reason"] != neurology_en["reason"]
    assert any("а" <= char <= "я" for char in neurology_ru["reason"].lower())


# -- the GP's interface language ------------------------------------------------------------------


def test_the_interface_follows_the_clinics_default_language_then_the_browser(client, gp):
    clinic = clinic_of(gp)
    clinic.language = "ru"
    clinic.save()
    client.force_login(gp)

    russian = client.get("/")
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    assert '<html lang="ru">' in russian.content.decode()
    assert '<html lang="en">' in english.content.decode()


def test_the_gps_own_choice_outranks_the_browser_and_is_remembered(client, gp):
    client.force_login(gp)

    response = client.post("/language/", {"language": "ru", "next": "/"}, HTTP_ACCEPT_LANGUAGE="en")
    gp.membership.refresh_from_db()
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302 and response.url == "/"
    assert gp.membership.language == "ru"
    assert '<html lang="ru">' in page.content.decode()


def test_the_language_chosen_before_login_is_kept_in_an_httponly_same_site_cookie(client, db):
    response = client.post("/language/", {"language": "en", "next": "/accounts/login/"})

    cookie = response.cookies["django_language"]
    assert cookie.value == "en"
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"


def test_the_language_switch_never_redirects_off_site(client, gp):
    client.force_login(gp)

    response = client.post("/language/", {"language": "en", "next": "https://evil.example/"})

    assert response.status_code == 302 and response.url == "/"


def test_the_language_switch_ignores_an_unknown_language(client, gp):
    client.force_login(gp)

    client.post("/language/", {"language": "de", "next": "/"})
    gp.membership.refresh_from_db()

    assert gp.membership.language == ""


def test_before_login_the_switch_is_carried_by_a_cookie(client):
    client.post("/language/", {"language": "ru", "next": "/accounts/login/"})

    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")

    assert '<html lang="ru">' in page.content.decode()


# -- the clinic's time zone ------------------------------------------------------------------------


def test_a_visit_at_0130_moscow_time_is_dated_today_not_yesterday(gp):
    clinic = clinic_of(gp)
    clinic.time_zone = "Europe/Moscow"
    clinic.save()
    patient = PatientFactory(clinic=clinic)
    # 01:30 in Moscow on 1 December is still 30 November in UTC.
    moment = datetime.datetime(2026, 11, 30, 22, 30, tzinfo=datetime.UTC)

    with mock.patch("django.utils.timezone.now", return_value=moment):
        response = api_client_for(gp).post(
            "/api/v1/encounters/", {"patient": patient.pk, "duration_days": 3, "findings": screened()}, format="json"
        )

    assert response.status_code == 201, response.json()
    assert Encounter.objects.get(pk=response.json()["id"]).visit_date == datetime.date(2026, 12, 1)
