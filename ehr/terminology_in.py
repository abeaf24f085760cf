"""Terminology In: an EHR's standard-coded Conditions and Observations read into the workup vocabulary.

The mapping is data (ehr/terminology_in.yaml, each entry with its source), validated at first use:
an unknown vocabulary code, a missing source or an unknown unit refuses to load. Pure functions: no
queries, no network. `read_chart` returns what it could read and notes on what it left out.
"""

from __future__ import annotations

import functools
import math
from datetime import date, datetime
from pathlib import Path

import yaml
from django.utils.translation import gettext as _

from workups.engine import KnowledgeBaseError, get_knowledge_base

PATH = Path(__file__).resolve().parent / "terminology_in.yaml"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_STATUSES = {"final", "amended", "corrected", "preliminary"}
CURRENT_CLINICAL = {"active", "recurrence", "relapse"}
VITAL_FIELDS = ("temperature_c", "heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")
WHEN = {"history", "current", "recent"}
# Days since the numbness began: none before today (as the API refuses), none longer than a lifetime.
DURATION_PLAUSIBLE = (0, 120 * 366)


class TerminologyError(KnowledgeBaseError):
    pass


def _icd_key(code) -> str:
    return str(code).replace(".", "").replace(" ", "").upper()


def _need(entry, keys, where):
    if not isinstance(entry, dict):
        raise TerminologyError(f"terminology_in.yaml {where}: an entry must be a mapping")
    missing = [key for key in keys if entry.get(key) in (None, "")]
    if missing:
        raise TerminologyError(f"terminology_in.yaml {where}: needs {', '.join(missing)}")


@functools.cache
def terminology_in() -> dict:
    """The validated table: {"icd10_systems", "icd10": [...], "snomed": {code: entry}, "location": {...},
    "observations": {loinc: entry}, "panels": {loinc: [component codes]}}."""
    data = yaml.safe_load(PATH.read_text(encoding="utf-8")) or {}
    vocabulary = get_knowledge_base().vocabulary
    findings = set(vocabulary.findings)
    conditions = data.get("conditions") or {}
    icd10 = []
    for index, entry in enumerate(conditions.get("icd10") or []):
        where = f"conditions.icd10[{index}]"
        _need(entry, ("from", "to", "finding", "when", "source"), where)
        if entry["finding"] not in findings or entry["finding"][:3] not in ("hx_", "rf_"):
            raise TerminologyError(f"terminology_in.yaml {where}: unknown hx_/rf_ finding {entry['finding']!r}")
        if entry["when"] not in WHEN or (entry["when"] != "history" and not isinstance(entry.get("within_days"), int)):
            raise TerminologyError(
                f"terminology_in.yaml {where}: when must be history, or current/recent with within_days"
            )
        low, high = _icd_key(entry["from"]), _icd_key(entry["to"])
        if len(low) != len(high) or low > high:
            raise TerminologyError(f"terminology_in.yaml {where}: from and to must be a range of one length")
        icd10.append({**entry, "from": low, "to": high})
    snomed = {}
    for index, entry in enumerate(conditions.get("snomed") or []):
        where = f"conditions.snomed[{index}]"
        _need(entry, ("code", "finding", "when", "source"), where)
        if entry["finding"] not in findings:
            raise TerminologyError(f"terminology_in.yaml {where}: unknown finding {entry['finding']!r}")
        if entry["when"] not in WHEN or (entry["when"] != "history" and not isinstance(entry.get("within_days"), int)):
            raise TerminologyError(f"terminology_in.yaml {where}: bad when")
        snomed[str(entry["code"])] = entry
    location = data.get("location") or {}
    locations = set(vocabulary.findings_in_group("loc"))
    body_sites = {}
    for index, entry in enumerate(location.get("body_sites") or []):
        _need(entry, ("code", "finding", "source"), f"location.body_sites[{index}]")
        if entry["finding"] not in locations:
            raise TerminologyError(f"terminology_in.yaml location: {entry['finding']!r} is not a loc_ code")
        body_sites[str(entry["code"])] = entry["finding"]
    prefixes = []
    for index, entry in enumerate(location.get("icd10_prefixes") or []):
        _need(entry, ("code", "source"), f"location.icd10_prefixes[{index}]")
        prefixes.append(_icd_key(entry["code"]))
    code_sites = []
    for index, entry in enumerate(location.get("icd10_sites") or []):
        _need(entry, ("code", "finding", "source"), f"location.icd10_sites[{index}]")
        if entry["finding"] not in locations:
            raise TerminologyError(f"terminology_in.yaml location: {entry['finding']!r} is not a loc_ code")
        code_sites.append((_icd_key(entry["code"]), entry["finding"]))
    targets = set(vocabulary.case_fields) | set(vocabulary.results)
    observations = {}
    for index, entry in enumerate(data.get("observations") or []):
        where = f"observations[{index}]"
        _need(entry, ("code", "target", "source", "max_age_days"), where)
        target = entry["target"]
        if target not in targets or target == "duration_days":
            raise TerminologyError(f"terminology_in.yaml {where}: unknown target {target!r}")
        kind = _kind(vocabulary, target)
        if kind == "quantity":
            units = entry.get("units")
            if (
                not isinstance(units, dict)
                or not units
                or not all(
                    value == "degF" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)
                    for value in units.values()
                )
            ):
                raise TerminologyError(f"terminology_in.yaml {where}: units must map UCUM codes to a factor or degF")
            plausible = entry.get("plausible") or (vocabulary.results.get(target) or {}).get("plausible")
            if not (isinstance(plausible, (list, tuple)) and len(plausible) == 2):
                raise TerminologyError(f"terminology_in.yaml {where}: needs a plausible range")
            entry = {**entry, "plausible": tuple(plausible)}
        elif kind == "answer" and not isinstance(entry.get("answers"), dict):
            raise TerminologyError(f"terminology_in.yaml {where}: pregnancy status needs answers")
        observations[str(entry["code"])] = {**entry, "kind": kind}
    panels = {}
    for index, entry in enumerate(data.get("panels") or []):
        _need(entry, ("code", "components", "source"), f"panels[{index}]")
        unknown = [code for code in entry["components"] if str(code) not in observations]
        if unknown:
            raise TerminologyError(f"terminology_in.yaml panels[{index}]: components not mapped: {unknown}")
        panels[str(entry["code"])] = [str(code) for code in entry["components"]]
    systems = data.get("icd10_systems") or []
    if not systems:
        raise TerminologyError("terminology_in.yaml: icd10_systems is required")
    return {
        "icd10_systems": set(systems),
        "icd10": icd10,
        "snomed": snomed,
        "location": {
            "prefixes": prefixes,
            "within_days": int(location.get("within_days") or 365),
            "body_sites": body_sites,
            "icd10_sites": code_sites,
        },
        "observations": observations,
        "panels": panels,
    }


def case_field_plausible() -> dict[str, tuple]:
    """The plausible range of each numeric case field in the vocabulary's unit: a vital sign's as its LOINC
    entries give it (the same range a LOINC Observation is held to), the duration's DURATION_PLAUSIBLE."""
    ranges = {"duration_days": DURATION_PLAUSIBLE}
    for entry in terminology_in()["observations"].values():
        if entry["kind"] == "quantity" and entry["target"] in VITAL_FIELDS:
            low, high = entry["plausible"]
            known = ranges.get(entry["target"], (low, high))
            ranges[entry["target"]] = (min(low, known[0]), max(high, known[1]))
    return ranges


def unit_system_problem(quantity) -> str | None:
    """Why a Quantity's unit can't be read: its `system` is given and is not UCUM (its code means something
    else there). None when the system is UCUM or left out."""
    system = quantity.get("system") if isinstance(quantity, dict) else None
    if system is None or system == UCUM:
        return None
    return _("the unit's system %(system)s is not UCUM") % {"system": str(system)[:100]}


def _kind(vocabulary, target) -> str:
    if target == "pregnant":
        return "answer"
    if target in vocabulary.case_fields:
        return "quantity"
    return "quantity" if vocabulary.results[target]["type"] == "numeric" else "boolean"


# -- reading resources -----------------------------------------------------------------------------


def _parse_when(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone().replace(tzinfo=None)


def observation_time(resource: dict) -> datetime | None:
    """When the Observation was made: effective[x], else issued."""
    period = resource.get("effectivePeriod")
    candidates = [
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("end") if isinstance(period, dict) else None,
        period.get("start") if isinstance(period, dict) else None,
        resource.get("issued"),
    ]
    for value in candidates:
        moment = _parse_when(value)
        if moment is not None:
            return moment
    return None


def condition_time(resource: dict) -> datetime | None:
    period = resource.get("onsetPeriod")
    for value in (
        resource.get("onsetDateTime"),
        period.get("start") if isinstance(period, dict) else None,
        resource.get("recordedDate"),
    ):
        moment = _parse_when(value)
        if moment is not None:
            return moment
    return None


def _codings(concept) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    return [coding for coding in codings if isinstance(coding, dict)] if isinstance(codings, list) else []


def _status_code(concept) -> str | None:
    for coding in _codings(concept):
        if isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def resources_of(bundle, resource_type: str) -> list[dict]:
    """The resources of one type in a searchset Bundle (a non-Bundle or a malformed entry is skipped)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return []
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
            found.append(resource)
    return found


def _quantity(value) -> tuple[float | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        return None, None
    unit = value.get("code") if isinstance(value.get("code"), str) else value.get("unit")
    return number, unit if isinstance(unit, str) else None


def _read_value(entry: dict, carrier: dict):
    """(value, problem) for one Observation (or component) against its table entry. The problem is shown on
    a CDS card, so it is translated (in the language active for the request)."""
    kind = entry["kind"]
    if kind == "quantity":
        number, unit = _quantity(carrier.get("valueQuantity"))
        if number is None:
            return None, _("valueQuantity expected")
        problem = unit_system_problem(carrier.get("valueQuantity"))
        if problem:
            return None, problem
        factor = entry["units"].get(unit) if unit else None
        if factor is None:
            return None, _("unit %(unit)s not understood") % {"unit": unit or _("(none)")}
        value = (number - 32) * 5 / 9 if factor == "degF" else number * factor
        value = round(value, 2)
        low, high = entry["plausible"]
        if not low <= value <= high:
            return None, _("%(value)s %(unit)s is implausible") % {"value": number, "unit": unit}
        return value, None
    if kind == "answer":
        for coding in _codings(carrier.get("valueCodeableConcept")):
            if coding.get("code") in entry["answers"]:
                return bool(entry["answers"][coding["code"]]), None
        if isinstance(carrier.get("valueBoolean"), bool):
            return carrier["valueBoolean"], None
        return None, _("answer not understood")
    if isinstance(carrier.get("valueBoolean"), bool):
        return carrier["valueBoolean"], None
    for coding in _codings(carrier.get("valueCodeableConcept")):
        if coding.get("system") == SNOMED and coding.get("code") in entry.get("positive", ()):
            return True, None
    return None, _("valueBoolean or a positive coded answer expected")


def read_observations(observations: list[dict], *, today: date) -> tuple[dict, list[str]]:
    """{target: value} from LOINC-coded Observations (most recent per target), and notes."""
    table = terminology_in()
    candidates = {}  # target -> [(time, entry, carrier, label)]
    for resource in observations:
        if resource.get("status") not in OBSERVATION_STATUSES:
            continue
        when = observation_time(resource)
        carriers = [resource]
        components = resource.get("component")
        if isinstance(components, list):
            carriers += [component for component in components[:20] if isinstance(component, dict)]
        for carrier in carriers:
            for coding in _codings(carrier.get("code")):
                if coding.get("system") != LOINC or not isinstance(coding.get("code"), str):
                    continue
                entry = table["observations"].get(coding["code"])
                if entry is None:
                    continue
                candidates.setdefault(entry["target"], []).append((when, entry, carrier, coding["code"]))
                break
    values, notes = {}, []
    for target, rows in candidates.items():
        rows.sort(key=lambda row: row[0] or datetime.min, reverse=True)
        when, entry, carrier, code = rows[0]
        if when is None:
            notes.append(_("LOINC %(code)s not used: the Observation has no date.") % {"code": code})
            continue
        if (today - when.date()).days > entry["max_age_days"]:
            notes.append(
                _("LOINC %(code)s not used: the latest is from %(date)s, older than %(days)s days.")
                % {"code": code, "date": when.date().isoformat(), "days": entry["max_age_days"]}
            )
            continue
        value, problem = _read_value(entry, carrier)
        if problem:
            notes.append(
                _("LOINC %(code)s (%(target)s) not used: %(problem)s.")
                % {"code": code, "target": target, "problem": problem}
            )
            continue
        values[target] = value
    return values, notes


def _condition_counts(resource: dict, when: str, within_days, today: date) -> bool:
    moment = condition_time(resource)
    clinical = _status_code(resource.get("clinicalStatus"))
    if when == "history":
        return True
    if moment is None or (today - moment.date()).days > within_days:
        return False
    return when == "recent" or clinical is None or clinical in CURRENT_CLINICAL


def read_conditions(conditions: list[dict], *, today: date) -> tuple[dict, list[str]]:
    """{finding: True} from ICD-10 and SNOMED CT coded Conditions (confirmed or unstated only)."""
    table = terminology_in()
    findings, notes = {}, []
    for resource in conditions:
        verification = _status_code(resource.get("verificationStatus"))
        if verification not in (None, "confirmed"):
            continue
        for coding in _codings(resource.get("code")):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(code, str) or len(code) > 20:
                continue
            matches = []
            if system in table["icd10_systems"]:
                key = _icd_key(code)
                matches = [
                    entry for entry in table["icd10"] if entry["from"] <= key[: len(entry["from"])] <= entry["to"]
                ]
                if any(key.startswith(prefix) for prefix in table["location"]["prefixes"]):
                    site = _location(resource, today, key)
                    if site:
                        findings[site] = True
            elif system == SNOMED and code in table["snomed"]:
                matches = [table["snomed"][code]]
            for entry in matches:
                if _condition_counts(resource, entry["when"], entry.get("within_days"), today):
                    findings[entry["finding"]] = True
    return findings, notes


def _location(resource: dict, today: date, icd_key: str) -> str | None:
    """The loc_ finding of a current M54/R20 Condition: its bodySite first (the EHR said where), else the site
    its ICD-10 code states (M54.5 low back pain, M54.16 lumbar radiculopathy)."""
    from django.conf import settings

    table = terminology_in()["location"]
    if not _condition_counts(resource, "current", table["within_days"], today):
        return None
    sites = resource.get("bodySite")
    locations = set(get_knowledge_base().vocabulary.findings_in_group("loc"))
    for site in sites[:10] if isinstance(sites, list) else ():
        for coding in _codings(site):
            code = coding.get("code")
            if coding.get("system") == SNOMED and code in table["body_sites"]:
                return table["body_sites"][code]
            if coding.get("system") == settings.FHIR_CODE_SYSTEM_URL and code in locations:
                return code
    for pattern, finding in table["icd10_sites"]:
        if len(icd_key) >= len(pattern) and all(
            want in ("?", got) for want, got in zip(pattern, icd_key[: len(pattern)], strict=True)
        ):
            return finding
    return None
