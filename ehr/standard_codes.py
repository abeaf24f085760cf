"""Standard codes (LOINC, SNOMED CT) exported beside the project's own, each verified against a public
source recorded in ehr/standard_codes.yaml. A code not listed there goes out with the
project's code only. Validated once, at first use."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from workups.engine import KnowledgeBaseError, get_knowledge_base

PATH = Path(__file__).resolve().parent / "standard_codes.yaml"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def _coding(entry, system, where):
    if not isinstance(entry, dict) or not entry.get("code") or not entry.get("display") or not entry.get("source"):
        raise KnowledgeBaseError(f"standard_codes.yaml {where}: needs code, display and source")
    return {"system": system, "code": str(entry["code"]), "display": str(entry["display"])}


def _unconfirmed(entry, where) -> bool:
    """True for an entry marked `verified: false` (kept on record, never sent or recognised); it must say why."""
    if not isinstance(entry, dict) or "verified" not in entry:
        return False
    if entry["verified"] is not False:
        raise KnowledgeBaseError(f"standard_codes.yaml {where}: verified may only be false (omit it when confirmed)")
    if not entry.get("note"):
        raise KnowledgeBaseError(f"standard_codes.yaml {where}: an unconfirmed code needs a note saying what was tried")
    return True


def _system_coding(entry, where):
    systems = {"loinc": LOINC, "snomed": SNOMED}
    if not isinstance(entry, dict) or entry.get("system") not in systems:
        raise KnowledgeBaseError(f"standard_codes.yaml {where}: system must be loinc or snomed")
    return _coding(entry, systems[entry["system"]], where)


@functools.cache
def standard_codes() -> dict:
    """{"items": {item: [codings, one per test]}, "imaging": {item: [equivalent codings of one study]},
    "unconfirmed": [entries marked verified: false], "specialties": {specialty: coding}, "categories": ...}."""
    data = yaml.safe_load(PATH.read_text(encoding="utf-8")) if PATH.exists() else {}
    vocabulary = get_knowledge_base().vocabulary
    items = {}
    for code, entries in ((data or {}).get("loinc") or {}).items():
        if code not in vocabulary.items:
            raise KnowledgeBaseError(f"standard_codes.yaml loinc: unknown item code {code!r}")
        entries = entries if isinstance(entries, list) else [entries]
        items[code] = [_coding(entry, LOINC, f"loinc {code}") for entry in entries]
    snomed = (data or {}).get("snomed") or {}
    specialties = {}
    for code, entry in (snomed.get("specialties") or {}).items():
        if code not in vocabulary.specialties:
            raise KnowledgeBaseError(f"standard_codes.yaml snomed: unknown specialty {code!r}")
        specialties[code] = _coding(entry, SNOMED, f"snomed specialty {code}")
    categories = {
        name: _coding(entry, SNOMED, f"snomed category {name}")
        for name, entry in (snomed.get("categories") or {}).items()
    }
    vital_signs = {
        name: _coding(entry, LOINC, f"vital_signs {name}")
        for name, entry in ((data or {}).get("vital_signs") or {}).items()
    }
    unknown = sorted(set(vital_signs) - set(vocabulary.case_fields) - {"blood_pressure"})
    if unknown:
        raise KnowledgeBaseError(f"standard_codes.yaml vital_signs: unknown case field(s) {unknown!r}")
    documents = {
        name: _coding(entry, LOINC, f"documents {name}")
        for name, entry in ((data or {}).get("documents") or {}).items()
    }
    imaging, unconfirmed = {}, []
    for code, entries in ((data or {}).get("imaging") or {}).items():
        if code not in vocabulary.items or vocabulary.items[code]["category"] != "imaging":
            raise KnowledgeBaseError(f"standard_codes.yaml imaging: unknown imaging item {code!r}")
        for entry in entries if isinstance(entries, list) else [entries]:
            if _unconfirmed(entry, f"imaging {code}"):
                unconfirmed.append({"item": code, **entry})
                continue
            imaging.setdefault(code, []).append(_system_coding(entry, f"imaging {code}"))
    orders_in = {}
    for code, entries in ((data or {}).get("orders_in") or {}).items():
        if code not in vocabulary.items:
            raise KnowledgeBaseError(f"standard_codes.yaml orders_in: unknown item code {code!r}")
        for entry in entries if isinstance(entries, list) else [entries]:
            if _unconfirmed(entry, f"orders_in {code}"):
                unconfirmed.append({"item": code, **entry})
                continue
            orders_in.setdefault(code, []).append(_system_coding(entry, f"orders_in {code}"))
    return {
        "items": items,
        "imaging": imaging,
        "unconfirmed": unconfirmed,
        "specialties": specialties,
        "categories": categories,
        "vital_signs": vital_signs,
        "documents": documents,
        "orders_in": orders_in,
    }


def item_for_coding(system: str, code: str) -> str | None:
    """The project's item code for a standard coding the project exports, if any."""
    table = standard_codes()
    for item, codings in [*table["items"].items(), *table["imaging"].items()]:
        if any(coding["system"] == system and coding["code"] == code for coding in codings):
            return item
    return None


def order_item_for_coding(system: str, code: str) -> str | None:
    """The item an incoming order coded this way stands for (orders_in: recognised, never exported)."""
    for item, codings in standard_codes()["orders_in"].items():
        if any(coding["system"] == system and coding["code"] == code for coding in codings):
            return item
    return None
