"""The stateless evaluate endpoint: answers, and a clear 400 for every kind of bad input."""

import json

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from tests.cases import body
from workups.engine import get_knowledge_base
from workups.serializers import WorkupEvaluateSerializer

URL = "/api/v1/workup/evaluate/"


def post(client, data, **kwargs):
    return client.post(URL, data, format="json", **kwargs)


def test_a_valid_case_gets_the_whole_workup_shape(gp_api, kb):
    response = post(
        gp_api,
        body(
            findings={"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True},
            sex="female",
            age=38,
            pregnant=False,
            temperature_c=37.0,
            heart_rate=80,
            systolic_bp=120,
            diastolic_bp=80,
            resp_rate=14,
            spo2=98,
        ),
    )
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {
        "disposition",
        "red_flags",
        "items",
        "referrals",
        "deferred",
        "withheld",
        "not_indicated",
        "warnings",
        "knowledge_base_version",
    }
    assert data["knowledge_base_version"] == kb.version
    for item in data["items"]:
        assert set(item) >= {"code", "name", "category", "urgency", "rationale", "triggered_by", "sources"}
        assert item["sources"] and item["rationale"]
    nephrology = next(row for row in data["referrals"] if row["specialty"] == "nephrology")
    assert set(nephrology) >= {"specialty", "name", "urgency", "reason", "triggered_by", "sources"}
    assert "ex_cva_tenderness" in nephrology["triggered_by"]


def test_a_measured_fever_counts_as_the_fever_red_flag(gp_api):
    response = post(gp_api, body(findings={"loc_interscapular": True, "sx_cough": True}, temperature_c=38.4))
    data = response.json()
    assert "rf_fever" in data["red_flags"]
    assert data["disposition"] == "urgent"


def test_the_caller_is_told_which_red_flags_were_not_asked(gp_api):
    response = post(gp_api, body(findings={"loc_lumbar": True, "rf_fever": False}, screen=None))
    warning = next(row for row in response.json()["warnings"] if row["code"] == "red_flags_not_screened")
    assert "rf_saddle_anesthesia" in warning["findings"] and "rf_fever" not in warning["findings"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"age": 121}, "age"),
        ({"age": -1}, "age"),
        ({"age": "40"}, "age"),
        ({"age": 40.5}, "age"),
        ({"age": True}, "age"),
        ({"sex": "other"}, "sex"),
        ({"sex": 1}, "sex"),
        ({"duration_days": -1}, "duration_days"),
        ({"duration_days": "ten"}, "duration_days"),
        ({"temperature_c": 29.9}, "temperature_c"),
        ({"temperature_c": 45.1}, "temperature_c"),
        ({"temperature_c": "38"}, "temperature_c"),
        ({"pregnant": "yes"}, "pregnant"),
        ({"heart_rate": 400}, "heart_rate"),
        ({"spo2": 101}, "spo2"),
        ({"systolic_bp": 80, "diastolic_bp": 90}, "diastolic_bp"),
        ({"duration_days": 20000, "age": 30}, "duration_days"),
        ({"findings": ["loc_lumbar"]}, "findings"),
        ({"temprature_c": 37.0}, "temprature_c"),
    ],
)
def test_an_impossible_or_mistyped_value_is_refused_by_name(gp_api, change, field):
    response = post(gp_api, {**body(), **change})
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    "typed, language, said",
    [
        (3.7, "en", "37.2, not 3.72"),
        (372, "ru", "37,2, а не 372"),
        # A reading in Fahrenheit is the other usual slip: the message names the unit too.
        (99.5, "en", "99.5 °F is 37.5 °C"),
        (99.5, "ru", "99,5 °F — это 37,5 °C"),
    ],
)
def test_a_temperature_with_the_decimal_point_slipped_or_in_fahrenheit_says_where_to_look(
    gp_api, typed, language, said
):
    response = post(gp_api, {**body(), "temperature_c": typed}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 400
    assert said in " ".join(response.json()["temperature_c"])


@pytest.mark.parametrize("missing", ["sex", "age", "duration_days", "findings"])
def test_a_missing_required_field_is_named(gp_api, missing):
    data = body()
    del data[missing]
    response = post(gp_api, data)
    assert response.status_code == 400
    assert missing in response.json()


def test_a_pregnant_man_is_refused(gp_api):
    response = post(gp_api, body(sex="male", pregnant=True))
    assert response.status_code == 400
    assert response.json()["pregnant"] == ["A male patient cannot be pregnant."]


def test_unknown_finding_codes_and_non_boolean_values_are_named_by_code(gp_api):
    response = post(gp_api, body(findings={"loc_lumbar": True, "rf_fevr": True, "sx_cough": "yes", "sx_tingling": 1}))
    assert response.status_code == 400
    problems = response.json()["findings"]
    assert set(problems) == {"rf_fevr", "sx_cough", "sx_tingling"}


@pytest.mark.parametrize("field", ["findings", "results"])
def test_an_overlong_unknown_code_is_named_by_its_start_without_echoing_it(gp_api, field):
    code = "x" * 500_000
    data = body(findings={"loc_lumbar": True, code: True}) if field == "findings" else {**body(), "results": {code: 1}}
    response = post(gp_api, data)
    assert response.status_code == 400
    assert set(response.json()[field]) == {"x" * 64 + "…"}
    assert len(response.content) < 2_000


def test_a_case_without_a_location_is_refused(gp_api):
    response = post(gp_api, body(findings={"loc_lumbar": False, "sx_tingling": True}))
    assert response.status_code == 400
    assert "loc" in response.json()["findings"]


def test_a_finding_of_the_other_sex_is_refused(gp_api):
    response = post(gp_api, body(sex="male", findings={"loc_lumbar": True, "sx_missed_period": True}))
    assert response.status_code == 400
    assert "sx_missed_period" in response.json()["findings"]


def test_a_finding_of_the_other_sex_may_be_recorded_absent(gp_api):
    response = post(gp_api, body(sex="male", findings={"loc_lumbar": True, "sx_missed_period": False}))
    assert response.status_code == 200


def test_every_problem_in_one_body_is_reported_together(gp_api):
    response = post(
        gp_api,
        {
            "sex": "male",
            "age": 500,
            "pregnant": True,
            "duration_days": -3,
            "temperature_c": 50,
            "findings": {"nope": True, "hx_gyn_disease": True},
            "extra": 1,
        },
    )
    assert response.status_code == 400
    problems = response.json()
    assert {"age", "pregnant", "duration_days", "temperature_c", "findings", "extra"} <= set(problems)
    assert {"nope", "hx_gyn_disease", "loc"} <= set(problems["findings"])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b"42",
        b'"text"',
        b"{",
        b'{"age": NaN}',
        b'{"findings": {"loc_lumbar": true}}',
        b'{"sex": "male", "age": 1e999, "duration_days": 1, "findings": {"loc_lumbar": true}}',
        b'{"sex": "male", "age": 40, "duration_days": 1, "temperature_c": 1e400, "findings": {"loc_lumbar": true}}',
        b'{"sex": "male", "age": 40, "duration_days": 99999999999999999999999, "findings": {"loc_lumbar": true}}',
        b'{"sex": "male", "age": 40, "duration_days": 1, "findings": {"loc_lumbar": {"nested": true}}}',
    ],
)
def test_no_body_ever_causes_a_server_error(gp_api, raw):
    response = gp_api.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400


def test_a_form_encoded_body_is_refused_not_crashed(gp_api):
    response = gp_api.post(URL, {"sex": "male"})
    assert response.status_code == 415


# -- the validation's fast path (WorkupEvaluateSerializer.validated_values) against the serializer's -------

_KB = get_knowledge_base()
_junk = (
    st.none() | st.booleans() | st.integers(-5, 400) | st.floats(allow_nan=False) | st.text(max_size=3) | st.just([])
)


def _mostly(valid):
    """Three times in four a value of `valid`, else junk (so that a good share of bodies is valid)."""
    return st.integers(0, 3).flatmap(lambda draw: valid if draw else _junk)


_findings = _mostly(
    st.dictionaries(
        st.sampled_from([*sorted(_KB.vocabulary.findings), "rf_fevr", "sx_missed_period", "loc"]),
        _mostly(st.booleans()),
        max_size=10,
    ).map(lambda found: {"loc_lumbar": True, **found})
)
_results = _mostly(
    st.dictionaries(
        st.sampled_from([*sorted(_KB.vocabulary.results), "res_nope"]),
        _mostly(st.booleans() | st.integers(-10, 10_000) | st.floats(0, 500)),
        max_size=4,
    )
)
_bodies = _mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "sex": _mostly(st.sampled_from(["female", "male"])),
            "age": _mostly(st.integers(0, 120)),
            "pregnant": _mostly(st.booleans()),
            "duration_days": _mostly(st.integers(0, 400)),
            "temperature_c": _mostly(st.floats(30, 45)),
            "heart_rate": _mostly(st.integers(20, 300)),
            "systolic_bp": _mostly(st.integers(40, 300)),
            "diastolic_bp": _mostly(st.integers(20, 200)),
            "resp_rate": _mostly(st.integers(4, 80)),
            "spo2": _mostly(st.integers(50, 100)),
            "findings": _findings,
            "results": _results,
            "temprature_c": _junk,
        },
    )
)


def _through_the_serializer(data):
    serializer = WorkupEvaluateSerializer(data=data)
    return json.dumps(serializer.validated_data if serializer.is_valid() else serializer.errors)


def _through_validated_values(data):
    try:
        return json.dumps(WorkupEvaluateSerializer.validated_values(data))
    except ValidationError as exc:
        return json.dumps(exc.detail)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([body(), body(sex="female", age=30, pregnant=False), None]), _bodies)
def test_validation_gives_the_serializers_values_and_problems_for_any_body(base, change):
    # A valid body with some of its fields changed (most of them valid too), or any body.
    data = {**base, **change} if isinstance(base, dict) and isinstance(change, dict) else change

    assert _through_validated_values(data) == _through_the_serializer(data)


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_valid_body_is_validated_to_the_serializers_values(language):
    data = body(sex="female", age=30, pregnant=False, temperature_c=37.5, spo2=97, results={"res_crp": 12.5})

    with translation.override(language):
        assert WorkupEvaluateSerializer.validated_values(data) == _through_the_serializer_values(data)


def _through_the_serializer_values(data):
    serializer = WorkupEvaluateSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
