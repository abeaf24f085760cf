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


@functools.cache
def standard_codes() -> dict:
    """{"items": {item: [codings]}, "specialties": {specialty: coding}, "categories": {name: coding}}."""
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
    orders_in = {}
    systems = {"loinc": LOINC, "snomed": SNOMED}
    for code, entries in ((data or {}).get("orders_in") or {}).items():
        if code not in vocabulary.items:
            raise KnowledgeBaseError(f"standard_codes.yaml orders_in: unknown item code {code!r}")
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, dict) or entry.get("system") not in systems:
                raise KnowledgeBaseError(f"standard_codes.yaml orders_in {code}: system must be loinc or snomed")
            orders_in.setdefault(code, []).append(_coding(entry, systems[entry["system"]], f"orders_in {code}"))
    return {
        "items": items,
        "specialties": specialties,
        "categories": categories,
        "vital_signs": vital_signs,
        "documents": documents,
        "orders_in": orders_in,
    }


def item_for_coding(system: str, code: str) -> str | None:
    """The project's item code for a standard coding the project exports, if any."""
    for item, codings in standard_codes()["items"].items():
        if any(coding["system"] == system and coding["code"] == code for coding in codings):
            return item
    return None


def order_item_for_coding(system: str, code: str) -> str | None:
    """The item an incoming order coded this way stands for (orders_in: recognised, never exported)."""
    for item, codings in standard_codes()["orders_in"].items():
        if any(coding["system"] == system and coding["code"] == code for coding in codings):
            return item
    return None
