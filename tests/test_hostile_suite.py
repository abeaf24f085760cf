"""Hostile input against every endpoint, generated from the OpenAPI schema and the URL configuration rather
than a hand list: for each operation that takes a body, every string carries a NUL, every bounded string is
one character too long, every field has the wrong type, and the JSON is NaN or nested absurdly deep. Each
answer is a 4xx naming the fields (never a 5xx), and nothing already saved changes. The web forms are found
on the pages themselves (every page of the URL configuration, as the GP) and posted with NUL and overlong
text. On PostgreSQL, which refuses NUL, so a miss would be a 500."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from tests.record_factories import actor_for, encounter_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
STATE_APPS = ("clinic", "workups", "referrals", "ehr")
# Append-only trails: they grow with every request (that is their job), so they are not "saved data".
TRAILS = {"auditevent"}


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if isinstance(node, dict) and "allOf" in node:
        merged = {"properties": {}}
        for part in node["allOf"]:
            merged["properties"].update(resolve(part).get("properties", {}))
        return merged
    return node


def writable_properties(operation) -> dict:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return {}
    schema = resolve(content["application/json"]["schema"])
    return {
        name: resolve(prop)
        for name, prop in (schema.get("properties") or {}).items()
        if not resolve(prop).get("readOnly")
    }


def kind_of(prop) -> str:
    if "enum" in prop or "oneOf" in prop:
        return "string"
    return prop.get("type", "string")


OPERATIONS = [
    (method, path, writable_properties(operation))
    for path, methods in SCHEMA["paths"].items()
    for method, operation in methods.items()
    if method in ("post", "put", "patch") and writable_properties(operation) and "/auth/" not in path
]
DEPENDENT = {"/api/v1/encounters/{id}/results/": {"value"}}
OPERATION_IDS = [f"{method.upper()} {path}" for method, path, _ in OPERATIONS]


@pytest.fixture
def record(gp, gp_api):
    """The GP's own record, so every `{id}` reaches a real row: a patient, an encounter with its workup
    (everything accepted), a letter and a result."""
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    for row in [*workup.items.all(), *workup.referrals.all()]:
        recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    letter = gp_api.post("/api/v1/referrals/", {"recommendation": workup.referrals.first().pk}, format="json")
    result = gp_api.post(f"/api/v1/encounters/{encounter.pk}/results/", {"code": "res_crp", "value": 30}, format="json")
    assert letter.status_code == 201 and result.status_code == 201, (letter.content, result.content)
    return {
        "patients": encounter.patient_id,
        "encounters": encounter.pk,
        "referrals": letter.json()["id"],
        "results": result.json()["id"],
        "workup-items": workup.items.first().pk,
        "workup-referrals": workup.referrals.first().pk,
        "workup": workup.pk,
    }


def url_for(path, record) -> str:
    def identify(match):
        collection = path[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        return str(record[collection])

    return re.sub(r"\{[^}]+\}", identify, path)


def saved_state():
    """Every row of the record's apps, in order: what must not change when a request is refused."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for app in STATE_APPS
        for model in apps.get_app_config(app).get_models()
        if model._meta.model_name not in TRAILS
    }


def send(client, method, url, body):
    return client.generic(method.upper(), url, json.dumps(body), content_type="application/json")


def error_fields(answer) -> set[str]:
    """The field names an error answer speaks of, at any depth."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                found.add(key)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(answer)
    return found


def refused_naming(response, fields):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    named = error_fields(response.json()) & set(fields)
    assert named, f"{response.status_code} names none of {sorted(fields)}: {response.content[:300]!r}"
    return named


@pytest.mark.parametrize(("method", "path", "properties"), OPERATIONS, ids=OPERATION_IDS)
def test_a_nul_in_every_string_is_refused_by_name_and_changes_nothing(gp_api, record, method, path, properties):
    strings = {name: "x\x00y" for name, prop in properties.items() if kind_of(prop) == "string"}
    if not strings:
        pytest.fail(f"{path} takes no string: choose another hostile value for it")
    before = saved_state()

    named = refused_naming(send(gp_api, method, url_for(path, record), strings), strings)

    # Each string is named; a result's value only once its code is known (the code says what a value is).
    assert named == set(strings) - DEPENDENT.get(path, set())
    assert saved_state() == before


@pytest.mark.parametrize(("method", "path", "properties"), OPERATIONS, ids=OPERATION_IDS)
def test_every_field_of_the_wrong_type_is_refused_by_name_and_changes_nothing(gp_api, record, method, path, properties):
    wrong = {"string": {"a": ["b"]}, "integer": "many", "number": "lots", "boolean": "perhaps", "array": "x"}
    body = {name: wrong.get(kind_of(prop), [1, 2]) for name, prop in properties.items()}
    before = saved_state()

    named = refused_naming(send(gp_api, method, url_for(path, record), body), body)

    assert named
    assert saved_state() == before


BOUNDED = [
    (method, path, {name: prop for name, prop in props.items() if prop.get("maxLength")})
    for method, path, props in OPERATIONS
    if any(prop.get("maxLength") for prop in props.values())
]


@pytest.mark.parametrize(("method", "path", "bounded"), BOUNDED, ids=[f"{m.upper()} {p}" for m, p, _ in BOUNDED])
def test_a_string_one_character_over_its_length_is_refused_by_name_and_changes_nothing(
    gp_api, record, method, path, bounded
):
    body = {name: "я" * (prop["maxLength"] + 1) for name, prop in bounded.items()}
    before = saved_state()

    named = refused_naming(send(gp_api, method, url_for(path, record), body), body)

    assert named
    assert saved_state() == before


@pytest.mark.parametrize(("method", "path", "properties"), OPERATIONS, ids=OPERATION_IDS)
@pytest.mark.parametrize(
    ("text", "said"), [('{"value": NaN}', "NaN"), ('{"value": 1e400}', "too large"), ("[" * 5000, "nested")]
)
def test_nan_huge_numbers_and_deep_nesting_are_refused_before_anything_is_read(
    gp_api, anonymous, record, method, path, properties, text, said
):
    before = saved_state()
    url = url_for(path, record)

    as_gp = gp_api.generic(method.upper(), url, text, content_type="application/json")
    as_nobody = anonymous.generic(method.upper(), url, text, content_type="application/json")

    assert as_gp.status_code == 400 and said in as_gp.json()["detail"]
    assert as_nobody.status_code in (400, 401)
    assert saved_state() == before


LISTS = [
    (path, [parameter["name"] for parameter in methods["get"].get("parameters", []) if parameter["in"] == "query"])
    for path, methods in SCHEMA["paths"].items()
    if "get" in methods and any(p["in"] == "query" for p in methods["get"].get("parameters", []))
]


@pytest.mark.parametrize(("path", "names"), LISTS, ids=[path for path, _ in LISTS])
def test_a_nul_in_any_query_parameter_is_never_a_server_error(gp_api, record, path, names):
    for name in names:
        response = gp_api.get(url_for(path, record), {name: "a\x00b"})
        assert response.status_code < 500, (name, response.content[:300])
        if response.status_code >= 400:
            assert name in error_fields(response.json()) or "detail" in response.json(), name


# The web: every page of the URL configuration the GP can open, and every form on it.


def web_paths():
    """Every URL pattern outside the API, FHIR, CDS Hooks, the admin and the docs, as a path template."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return sorted({route.lstrip("^").rstrip("$") for route in walk(get_resolver().url_patterns)})


class Forms(HTMLParser):
    """The POST forms of a page: action and text fields (with their maxlength)."""

    def __init__(self):
        super().__init__()
        self.forms, self._current = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._current = {"action": attrs.get("action") or "", "text": {}, "hidden": {}}
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "textarea") and attrs.get("name"):
            kind = (attrs.get("type") or "text").lower() if tag == "input" else "textarea"
            if kind == "hidden":
                self._current["hidden"][attrs["name"]] = attrs.get("value") or ""
            elif kind in ("text", "textarea", "search", "email", "tel", "date", "number", "password"):
                self._current["text"][attrs["name"]] = int(attrs["maxlength"]) if attrs.get("maxlength") else None

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def page_urls(record):
    """The GP's pages with their ids filled from the record (a path with an id the record lacks is left out)."""
    ids = {
        "patients": record["patients"],
        "encounters": record["encounters"],
        "referrals": record["referrals"],
        "results": record["results"],
        "workup-items": record["workup-items"],
        "workup-referrals": record["workup-referrals"],
    }
    skipped = ("api/", "fhir", "cds-services", "admin/", ".well-known", "static/", "media/", "accounts/logout")
    urls = set()
    for template in web_paths():
        if template.startswith(skipped) or "(?P" in template:
            continue
        filled, ok = template, True
        for match in re.finditer(r"<(?:\w+:)?(\w+)>", template):
            collection = template[: match.start()].rstrip("/").rsplit("/", 1)[-1]
            if collection not in ids:
                ok = False
                break
            filled = filled.replace(match.group(0), str(ids[collection]), 1)
        if ok:
            urls.add("/" + filled)
    return sorted(urls)


def test_every_web_form_refuses_nul_and_overlong_text_without_a_server_error_or_a_change(gp, client, record):
    client.force_login(gp)
    posted = 0
    for url in page_urls(record):
        page = client.get(url)
        assert page.status_code < 500, url
        if page.status_code != 200 or "text/html" not in page.get("Content-Type", ""):
            continue
        parser = Forms()
        parser.feed(page.content.decode())
        for form in parser.forms:
            if not form["text"]:
                continue
            action = form["action"] or url
            for hostile in ("nul", "overlong"):
                data = dict(form["hidden"])
                for name, limit in form["text"].items():
                    data[name] = "x\x00y" if hostile == "nul" else "я" * ((limit or 10_000) + 1)
                before = saved_state()
                response = client.post(action, data)
                assert response.status_code < 500, (action, hostile, response.content[:300])
                # A refused form is shown again (200) or answered 4xx; it never saves the hostile text.
                after = saved_state()
                assert "\x00" not in json.dumps(after, default=str), (action, hostile)
                if response.status_code in (200, 400, 422):
                    assert after == before, (action, hostile)
                posted += 1
    # The walk reaches the record's forms: patient search and registration, the encounter, the letter...
    assert posted >= 10, posted
