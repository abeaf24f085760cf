"""A recorded vital sign in NEWS2's red band (a single parameter scoring 3) warns first, naming each value, in the
engine, the evaluate endpoint, the stored workup and the live panel; it changes no disposition, item or referral
(the guidance has no rule on vital signs). A malformed screen is refused when the base loads.
"""

import pytest
import yaml
from django.utils import translation

from tests.cases import body, case, items, referrals
from tests.record_factories import URINARY, api_client_for, encounter_of, patient_of, screened, workup_for
from tests.test_knowledge_base_loading import edit, knowledge  # noqa: F401 (fixture)
from workups.engine import KnowledgeBaseError, evaluate, get_knowledge_base, load_knowledge_base

CALM = {"heart_rate": 80, "systolic_bp": 125, "diastolic_bp": 80, "resp_rate": 16, "spo2": 97, "temperature_c": 36.6}


def vital_warning(result):
    found = [row for row in result["warnings"] if row["code"] == "vital_signs_critical"]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("field", "danger", "safe"),
    [
        ("resp_rate", 8, 9),
        ("resp_rate", 25, 24),
        ("spo2", 91, 92),
        ("systolic_bp", 90, 91),
        ("systolic_bp", 220, 219),
        ("heart_rate", 40, 41),
        ("heart_rate", 131, 130),
        ("temperature_c", 35.0, 35.1),
    ],
)
def test_each_limit_of_the_red_band_is_inclusive_and_one_step_inside_is_silent(kb, field, danger, safe):
    warned = evaluate(kb, case(**{**CALM, field: danger}))
    assert vital_warning(warned)["findings"] == [field]
    assert vital_warning(evaluate(kb, case(**{**CALM, field: safe}))) is None


def test_the_warning_comes_first_and_names_every_value_in_the_base_language(kb):
    vitals = {**CALM, "spo2": 85, "systolic_bp": 80, "heart_rate": 135, "temperature_c": 34.5}
    result = evaluate(kb, case(findings={"loc_interscapular": True}, screen="", **vitals))
    assert [row["code"] for row in result["warnings"]][:2] == ["vital_signs_critical", "red_flags_not_screened"]
    warning = result["warnings"][0]
    assert warning["findings"] == ["spo2", "systolic_bp", "heart_rate", "temperature_c"]
    for shown in ("SpO₂ 85%", "systolic BP 80 mmHg", "heart rate 135/min", "temperature 34.5 °C", "ambulance"):
        assert shown in warning["message"], warning["message"]
    russian = evaluate(get_knowledge_base("ru"), case(findings={"loc_interscapular": True}, **vitals))
    message = vital_warning(russian)["message"]
    assert "температура 34,5 °C" in message and "систолическое АД 80 мм рт. ст." in message, message


def test_the_warning_changes_neither_disposition_nor_recommendations(kb):
    calm = evaluate(kb, case(findings=URINARY, **CALM))
    shocked = evaluate(kb, case(findings=URINARY, **{**CALM, "systolic_bp": 80, "spo2": 88}))
    assert vital_warning(shocked) and not vital_warning(calm)
    assert shocked["disposition"] == calm["disposition"]
    assert items(shocked) == items(calm) and referrals(shocked) == referrals(calm)


def test_no_vital_signs_recorded_means_no_warning(kb):
    assert vital_warning(evaluate(kb, case(findings=URINARY))) is None


def test_the_evaluate_endpoint_returns_the_warning(gp):
    client = api_client_for(gp)
    response = client.post(
        "/api/v1/workup/evaluate/", body(**{**CALM, "resp_rate": 30}), format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200, response.content
    warning = vital_warning(response.json())
    assert warning["findings"] == ["resp_rate"] and "respiratory rate 30/min" in warning["message"]


def test_the_stored_workup_and_its_page_show_the_warning(gp, client):
    encounter = encounter_of(gp, findings=screened(URINARY), spo2=88, heart_rate=140)
    workup = workup_for(gp, encounter)
    assert vital_warning(workup.result)["findings"] == ["spo2", "heart_rate"]
    client.force_login(gp)
    with translation.override("en"):
        page = client.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "SpO₂ 88%" in page and "heart rate 140/min" in page


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda screen: screen.update(warning="no_such_warning"), "unknown warning"),
        (lambda screen: screen["limits"][0].update(code="loc_lumbar"), "not a measured case field"),
        (lambda screen: screen["limits"][0].update(at_or_below="eight"), "give a number"),
        (lambda screen: screen["limits"][1].pop("at_or_below"), "give a number"),
        (lambda screen: screen["limits"][0].update(label={"en": "no value", "ru": "нет значения"}), "{value}"),
        (lambda screen: screen["message"].update(en="no values"), "{values}"),
        (lambda screen: screen.update(limits=[]), "non-empty list"),
    ],
)
def test_a_malformed_vital_signs_screen_is_refused_when_the_base_loads(knowledge, change, complaint):  # noqa: F811
    edit(knowledge / "base.yaml", lambda data: change(data["vital_signs_screen"]))
    with pytest.raises(KnowledgeBaseError, match="vital_signs_screen") as refused:
        load_knowledge_base(knowledge)
    assert complaint in str(refused.value)


def test_the_shipped_limits_are_news2_red_band(knowledge):  # noqa: F811
    screen = yaml.safe_load((knowledge / "base.yaml").read_text())["vital_signs_screen"]
    limits = {entry["code"]: (entry.get("at_or_below"), entry.get("at_or_above")) for entry in screen["limits"]}
    assert limits == {
        "resp_rate": (8, 25),
        "spo2": (91, None),
        "systolic_bp": (90, 220),
        "heart_rate": (40, 131),
        "temperature_c": (35.0, None),
    }


def test_the_live_panel_warns_and_its_summary_strip_says_so_in_a_word(gp, gp_web):
    patient = patient_of(gp, sex="male")
    data = {"visit_date": "2024-03-01", "duration_days": "3", "f_loc_lumbar": "yes", "spo2": "86"}
    with translation.override("en"):
        panel = gp_web.post(
            f"/patients/{patient.pk}/encounters/preview/", data, HTTP_ACCEPT_LANGUAGE="en"
        ).content.decode()
    assert 'data-warning="vital_signs_critical"' in panel and "SpO₂ 86%" in panel
    strip = panel[panel.index('<template id="panel-summary"') :].split("</template>", 1)[0]
    assert "· ⚠ vital signs in the danger range" in strip
