"""The API's JSON renderer (orjson) writes the bytes DRF's JSONRenderer writes, for what the API returns and for
what orjson would spell differently (times, decimals, lazy translations); what it cannot write is left to
DRF's renderer, errors included."""

import datetime
import decimal
import json
import uuid
import zoneinfo

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from clinic.renderers import FastJSONRenderer
from tests.cases import body

SETTINGS = settings(max_examples=300, deadline=None)
EVALUATE = "/api/v1/workup/evaluate/"


def both(data, media_type=None, context=None):
    return (
        FastJSONRenderer().render(data, media_type, context),
        JSONRenderer().render(data, media_type, context),
    )


# Floats under 1e-4 are spelled differently (1e-7, not 1e-07; see clinic.renderers): same value, other bytes.
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: value == 0 or abs(value) >= 1e-4)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | _floats
    | st.text()
    | st.datetimes(timezones=st.sampled_from([None, datetime.UTC, zoneinfo.ZoneInfo("Europe/Moscow")]))
    | st.dates()
    | st.times()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-(10**6))
    | st.uuids()
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(_json)
def test_any_answer_is_rendered_to_the_same_bytes_as_drfs(data):
    fast, drf = both(data)

    assert fast == drf


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_tiny_float_may_be_spelled_differently_but_reads_as_the_same_number(value):
    fast, drf = both({"value": value})

    assert json.loads(fast) == json.loads(drf)


@pytest.mark.parametrize(
    "data",
    [
        {"text": "line\u2028separator\u2029paragraph"},
        {"text": 'control \x00\x01\x1f\x7f \n\t\r\b\f quote " backslash \\ slash /'},
        {"text": "Русский текст, ё, №, — и «кавычки»", "emoji": "\U0001f600"},
        {"big": 2**63 - 1, "small": -(2**63)},
        [],
        {},
        "just text",
    ],
)
def test_awkward_text_and_limits_render_to_the_same_bytes(data):
    fast, drf = both(data)

    assert fast == drf


def test_a_lazy_translation_is_rendered_in_the_active_language():
    with translation.override("ru"):
        fast, drf = both({"message": gettext_lazy("Invalid token.")})

    assert fast == drf and "Invalid token." not in fast.decode()


@pytest.mark.parametrize(
    "data",
    [{1: "an integer key"}, {"huge": 2**64}, {"set": {1, 2}}, {"id": uuid.UUID(int=1), "at": datetime.timedelta(1)}],
)
def test_what_orjson_cannot_write_is_rendered_by_drfs_renderer(data):
    fast, drf = both(data)

    assert fast == drf


def test_a_lone_surrogate_fails_as_it_does_with_drfs_renderer():
    with pytest.raises(UnicodeEncodeError):
        JSONRenderer().render({"text": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        FastJSONRenderer().render({"text": "\ud800"})


def test_an_unserializable_object_fails_as_it_does_with_drfs_renderer():
    with pytest.raises(TypeError):
        JSONRenderer().render({"object": object()})
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"object": object()})


def test_an_indented_answer_is_drfs():
    data = {"a": [1, 2, {"b": None}], "when": datetime.date(2026, 11, 30), "amount": decimal.Decimal("1.50")}

    fast, drf = both(data, "application/json; indent=4")

    assert fast == drf and b"\n    " in fast


def test_nothing_renders_as_nothing():
    assert both(None) == (b"", b"")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_evaluate_answer_is_byte_for_byte_drfs(gp_api, language):
    case = body(temperature_c=37.2, results={"res_crp": 12.5, "res_wbc": 12.3, "res_ua_nitrite": True})
    response = gp_api.post(EVALUATE, case, format="json", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    assert response.content == JSONRenderer().render(response.json())
