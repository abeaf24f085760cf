"""ehr/standard_codes.yaml is checked when it is first used: a table that would send a code nobody verified,
or name an item, specialty or case field the knowledge base lacks, refuses to load and says where."""

import pytest
import yaml

from ehr import standard_codes as module
from ehr.standard_codes import standard_codes
from workups.engine import KnowledgeBaseError


def _first(mapping):
    return next(iter(mapping))


def _unconfirmed(data, **entry):
    data["imaging"][_first(data["imaging"])].append(
        {"system": "loinc", "code": "1-1", "display": "x", "source": "s", **entry}
    )


CHANGES = {
    "an unknown test code": (
        lambda data: data["loinc"].update({"lab_made_up": [{"code": "1", "display": "x"}]}),
        "loinc: unknown item code",
    ),
    "a code without its source": (
        lambda data: data["loinc"][_first(data["loinc"])][0].pop("source"),
        "needs code, display and source",
    ),
    "a single entry instead of a list": (
        lambda data: data["loinc"].update({"lab_cbc": {"code": "58410-2", "display": "CBC"}}),
        "loinc lab_cbc: needs code, display and source",
    ),
    "an unknown specialty": (
        lambda data: data["snomed"]["specialties"].update({"astrology": {"code": "1", "display": "x", "source": "s"}}),
        "unknown specialty",
    ),
    "a vital sign the case does not have": (
        lambda data: data["vital_signs"].update({"aura": {"code": "1-1", "display": "x", "source": "s"}}),
        "vital_signs: unknown case field",
    ),
    "an imaging code for a laboratory test": (
        lambda data: data["imaging"].update(
            {"lab_cbc": [{"system": "loinc", "code": "1", "display": "x", "source": "s"}]}
        ),
        "imaging: unknown imaging item",
    ),
    "an imaging code of another system": (
        lambda data: data["imaging"][_first(data["imaging"])].append(
            {"system": "icd10", "code": "M54", "display": "x", "source": "s"}
        ),
        "system must be loinc or snomed",
    ),
    "verified: true written out": (lambda data: _unconfirmed(data, verified=True), "verified may only be false"),
    "an unconfirmed code without a note": (lambda data: _unconfirmed(data, verified=False), "needs a note"),
    "an incoming order for an unknown test": (
        lambda data: data["orders_in"].update(
            {"mri_made_up": [{"system": "snomed", "code": "1", "display": "x", "source": "s"}]}
        ),
        "orders_in: unknown item code",
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_bad_table_refuses_to_load_and_says_where(tmp_path, monkeypatch, change):
    edit, message = CHANGES[change]
    data = yaml.safe_load(module.PATH.read_text(encoding="utf-8"))
    edit(data)
    bad = tmp_path / "standard_codes.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(module, "PATH", bad)
    standard_codes.cache_clear()
    try:
        with pytest.raises(KnowledgeBaseError, match=message):
            standard_codes()
    finally:
        monkeypatch.undo()
        standard_codes.cache_clear()


def test_an_unconfirmed_code_with_its_note_is_kept_on_record_and_never_sent(tmp_path, monkeypatch):
    data = yaml.safe_load(module.PATH.read_text(encoding="utf-8"))
    item = _first(data["imaging"])
    _unconfirmed(data, verified=False, note="Not found in the LOINC release we checked")
    data["orders_in"][item] = [
        {"system": "snomed", "code": "2-2", "display": "y", "source": "s", "verified": False, "note": "n"}
    ]
    bad = tmp_path / "standard_codes.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(module, "PATH", bad)
    standard_codes.cache_clear()
    try:
        table = standard_codes()
        assert {(row["item"], row["code"]) for row in table["unconfirmed"]} >= {(item, "1-1"), (item, "2-2")}
        assert "1-1" not in {coding["code"] for coding in table["imaging"][item]}
        assert module.item_for_coding(module.LOINC, "1-1") is None
        assert module.order_item_for_coding(module.SNOMED, "2-2") is None
    finally:
        monkeypatch.undo()
        standard_codes.cache_clear()


def test_without_the_table_only_the_projects_own_codes_go_out(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "PATH", tmp_path / "absent.yaml")
    standard_codes.cache_clear()
    try:
        assert standard_codes() == {
            "items": {},
            "imaging": {},
            "unconfirmed": [],
            "specialties": {},
            "categories": {},
            "vital_signs": {},
            "documents": {},
            "orders_in": {},
        }
        assert module.item_for_coding(module.LOINC, "58410-2") is None
    finally:
        monkeypatch.undo()
        standard_codes.cache_clear()
