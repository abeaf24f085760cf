"""The settings' environment readers fail at start-up naming the variable and what was wrong with it, so a
typo in a deployment stops the app before the first patient rather than changing its behaviour."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str, env_time_zone, env_url


def test_an_unset_or_empty_variable_gives_the_default_and_a_required_one_stops_start_up(monkeypatch):
    monkeypatch.delenv("X_SETTING", raising=False)
    assert env_str("X_SETTING", "fallback") == "fallback"
    monkeypatch.setenv("X_SETTING", "")
    assert env_str("X_SETTING", "fallback") == "fallback"
    with pytest.raises(ImproperlyConfigured, match="X_SETTING must be set"):
        env_str("X_SETTING", required=True)


@pytest.mark.parametrize(("text", "value"), [("1", True), (" Yes ", True), ("on", True), ("0", False), ("off", False)])
def test_a_boolean_reads_the_usual_words(monkeypatch, text, value):
    monkeypatch.setenv("X_FLAG", text)
    assert env_bool("X_FLAG", not value) is value


def test_a_boolean_that_is_neither_stops_start_up_and_an_unset_one_is_the_default(monkeypatch):
    monkeypatch.delenv("X_FLAG", raising=False)
    assert env_bool("X_FLAG", True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env_bool("X_FLAG")


def test_a_whole_number_is_checked_for_its_form_and_its_range(monkeypatch):
    monkeypatch.delenv("X_NUMBER", raising=False)
    assert env_int("X_NUMBER", 7) == 7
    monkeypatch.setenv("X_NUMBER", "12")
    assert env_int("X_NUMBER", 7, minimum=1, maximum=60) == 12
    monkeypatch.setenv("X_NUMBER", "1.5")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("X_NUMBER", 7)
    monkeypatch.setenv("X_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured, match="X_NUMBER=0 is outside 1..60"):
        env_int("X_NUMBER", 7, minimum=1, maximum=60)
    monkeypatch.setenv("X_NUMBER", "61")
    with pytest.raises(ImproperlyConfigured, match="outside 1..60"):
        env_int("X_NUMBER", 7, minimum=1, maximum=60)


def test_a_list_is_comma_separated_without_blanks(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example , ,b.example,")
    assert env_list("X_LIST") == ["a.example", "b.example"]
    monkeypatch.setenv("X_LIST", "  ")
    assert env_list("X_LIST", ["default"]) == ["default"]


def test_a_url_needs_one_of_its_schemes(monkeypatch):
    monkeypatch.delenv("X_URL", raising=False)
    assert env_url("X_URL", schemes={"https"}) is None
    monkeypatch.setenv("X_URL", "https://gp.example.org")
    assert env_url("X_URL", schemes={"https"}) == "https://gp.example.org"
    monkeypatch.setenv("X_URL", "ftp://gp.example.org")
    with pytest.raises(ImproperlyConfigured, match="got 'ftp'"):
        env_url("X_URL", schemes={"https"})
    monkeypatch.setenv("X_URL", "gp.example.org")
    with pytest.raises(ImproperlyConfigured, match="got 'none'"):
        env_url("X_URL", schemes={"https"})


def test_a_choice_and_a_time_zone_must_be_known(monkeypatch):
    monkeypatch.setenv("X_CHOICE", "de")
    with pytest.raises(ImproperlyConfigured, match="X_CHOICE='de' is not one of ru, en"):
        env_choice("X_CHOICE", "ru", choices=("ru", "en"))
    monkeypatch.setenv("X_ZONE", "Europe/Moscow")
    assert env_time_zone("X_ZONE", "UTC") == "Europe/Moscow"
    monkeypatch.setenv("X_ZONE", "Mars/Olympus")
    with pytest.raises(ImproperlyConfigured, match="is not a time zone"):
        env_time_zone("X_ZONE", "UTC")
