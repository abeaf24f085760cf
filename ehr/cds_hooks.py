"""CDS Hooks 2.0 services: the back-numbness workup (patient-view) and imaging appropriateness (order-select).

Pure translation between CDS Hooks JSON and the engine: the case is read from the Patient, the
ICD-10 / SNOMED CT Conditions and the LOINC Observations (ehr/terminology_in.yaml) and from findings in
the project's own code system; cards are built from the engine's answer. No network, no writes: the
view fetches what the prefetch lacks and records the cards it issues.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import date

from django.conf import settings
from django.utils.translation import get_language, gettext, gettext_lazy, gettext_noop

from ehr import terminology_in
from ehr.standard_codes import LOINC, SNOMED, item_for_coding, order_item_for_coding, standard_codes
from workups.engine import Case, evaluate, get_knowledge_base, order_check, why_not_indicated
from workups.localized import current_kb

WORKUP_SERVICE = "back-numbness-workup"
IMAGING_SERVICE = "imaging-appropriateness"
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
# What each prefetch key holds, as a GP reads it in the "Not available from the EHR" note.
CHART_PARTS = {
    "conditions": gettext_lazy("diagnoses (Conditions)"),
    "vitals": gettext_lazy("vital signs"),
    "labs": gettext_lazy("laboratory results"),
}
URGENCY_WORDS = {
    "emergency": gettext_noop("emergency"),
    "urgent": gettext_noop("urgent"),
    "routine": gettext_noop("routine"),
}
_translations: dict[tuple[str | None, str], str] = {}


def _(message: str) -> str:
    """gettext, remembered per language: the cards of one call ask for some thirty messages, and each
    look-up through Django's per-request translation state cost about as much as building the card text.
    The messages are this module's literals, so what is remembered stays small."""
    key = (get_language(), message)
    text = _translations.get(key)
    if text is None:
        text = _translations[key] = gettext(message)
    return text


def _urgency(code: str) -> str:
    return _(URGENCY_WORDS[code]) if code in URGENCY_WORDS else code


class MalformedRequest(Exception):
    """400: the request is not a CDS Hooks call this service understands."""


class DataUnavailable(Exception):
    """The chart could not be had, or does not hold enough to run the workup: answered with a card
    that says so (CDS Hooks 2.0 lets a service answer when data is missing; a 412 helps no one)."""


PREFETCH_KEYS = ("patient", "conditions", "vitals", "labs", "findings")
# FHIR's date: a year, a year and month, or a full date.
FHIR_DATE = re.compile(r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?")
MAX_DEPTH = 40
# The oldest age the workup takes (the API's limit too).
MAX_AGE = 120


def prefetch_templates() -> dict:
    """Standard FHIR R4 searches an EHR can answer, plus the project's own code system for findings."""
    code_system = settings.FHIR_CODE_SYSTEM_URL
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "vitals": "Observation?patient={{context.patientId}}&category=vital-signs",
        "labs": "Observation?patient={{context.patientId}}&category=laboratory",
        "findings": f"Observation?patient={{{{context.patientId}}}}&code={code_system}|",
    }


def discovery() -> dict:
    code_system = settings.FHIR_CODE_SYSTEM_URL
    prefetch = prefetch_templates()
    kb = get_knowledge_base()
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": WORKUP_SERVICE,
                "title": "Back numbness workup",
                "description": (
                    "Triage and the recommended tests and referrals for numbness in the back, from the "
                    "patient's ICD-10 / SNOMED CT Conditions, LOINC vital signs and results, and findings "
                    f"coded in {code_system} (knowledge base {kb.version})."
                ),
                "prefetch": prefetch,
            },
            {
                "hook": "order-select",
                "id": IMAGING_SERVICE,
                "title": "Spine imaging appropriateness",
                "description": (
                    "Warns when a selected imaging order is not indicated by the guidance for this patient, "
                    "and stops ionising imaging in pregnancy where a safe alternative exists."
                ),
                "prefetch": prefetch,
            },
        ]
    }


# -- reading the request ---------------------------------------------------------------------------


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """True when JSON nests deeper than `limit` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _require(body, hook) -> dict:
    """The call's context, once the body is a call of `hook`. Its nesting the view checked on the text."""
    if not isinstance(body, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    problems = []
    if body.get("hook") != hook:
        problems.append(f"hook must be {hook!r}")
    if not isinstance(body.get("hookInstance"), str) or not body.get("hookInstance"):
        problems.append("hookInstance is required")
    context = body.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str) or not context.get("patientId"):
        problems.append("context.patientId is required")
    elif not FHIR_ID.fullmatch(context["patientId"]):
        # It is echoed into every suggested resource: an id FHIR would refuse (or a megabyte of one) stops here.
        problems.append("context.patientId must be a FHIR id: letters, digits, '-' and '.', at most 64")
    prefetch = body.get("prefetch", {})
    if prefetch is not None and not isinstance(prefetch, dict):
        problems.append("prefetch must be an object")
    for name in ("fhirServer",):
        if name in body and body[name] is not None and not isinstance(body[name], str):
            problems.append(f"{name} must be a string")
    authorization = body.get("fhirAuthorization")
    if authorization is not None and (
        not isinstance(authorization, dict) or not isinstance(authorization.get("access_token", ""), str)
    ):
        problems.append("fhirAuthorization must be an object with an access_token")
    if problems:
        raise MalformedRequest("; ".join(problems))
    return context


def check_prefetch(prefetch) -> dict:
    """The prefetch with each known key either a resource/Bundle or None (missing, null, or an
    OperationOutcome the EHR sent in its place). Anything else is junk: MalformedRequest."""
    prefetch = prefetch or {}
    chart = {}
    for key in PREFETCH_KEYS:
        value = prefetch.get(key)
        if value is None:
            chart[key] = None
            continue
        if not isinstance(value, dict):
            raise MalformedRequest(f"prefetch.{key} must be an object or null")
        kind = value.get("resourceType")
        if kind == "OperationOutcome":
            chart[key] = None
            continue
        if key == "patient":
            if kind != "Patient":
                raise MalformedRequest("prefetch.patient must be a Patient")
        else:
            check_bundle(value, f"prefetch.{key}")
        chart[key] = value
    return chart


def check_bundle(value, where: str) -> None:
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise MalformedRequest(f"{where} must be a Bundle")
    entries = value.get("entry", [])
    if entries is None:
        return
    if not isinstance(entries, list):
        raise MalformedRequest(f"{where}.entry must be a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MalformedRequest(f"{where}.entry[{index}] must be an object")
        resource = entry.get("resource")
        if resource is not None and (
            not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str)
        ):
            raise MalformedRequest(f"{where}.entry[{index}].resource must be a resource")


def _age(birth: str, today: date) -> int:
    born = date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _own_codes(observations, vocabulary) -> tuple[dict, dict, dict, list]:
    """Findings, case fields and results from Observations in the project's own code system."""
    system = settings.FHIR_CODE_SYSTEM_URL
    findings, values, results, notes = {}, {}, {}, []
    for resource in observations:
        if resource.get("status") in ("entered-in-error", "cancelled"):
            continue
        code_concept = resource.get("code") if isinstance(resource.get("code"), dict) else {}
        codings = code_concept.get("coding") if isinstance(code_concept.get("coding"), list) else []
        for coding in codings:
            if (
                not isinstance(coding, dict)
                or coding.get("system") != system
                or not isinstance(coding.get("code"), str)
            ):
                continue
            code = coding["code"]
            quantity = resource.get("valueQuantity") if isinstance(resource.get("valueQuantity"), dict) else {}
            number = quantity.get("value")
            if code in vocabulary.findings and isinstance(resource.get("valueBoolean"), bool):
                findings[code] = resource["valueBoolean"]
            elif code == "pregnant" and isinstance(resource.get("valueBoolean"), bool):
                values["pregnant"] = resource["valueBoolean"]
            elif (
                code in vocabulary.case_fields
                and isinstance(number, (int, float))
                and not isinstance(number, bool)
                and math.isfinite(number)
            ):
                problem = _case_field_problem(code, number, quantity)
                if problem:
                    notes.append(_("%(code)s not used: %(problem)s.") % {"code": code, "problem": problem})
                else:
                    values[code] = number
            elif code in vocabulary.results:
                value, problem = _result_value(vocabulary.results[code], resource)
                if problem:
                    notes.append(_("Result %(code)s not used: %(problem)s.") % {"code": code, "problem": problem})
                else:
                    results[code] = value
    return findings, values, results, notes


def _case_field_problem(code: str, number, quantity: dict) -> str | None:
    """Why a case field in the project's code can't be read: a unit outside UCUM, or a value outside the range
    the same field is held to when it comes LOINC-coded (a temperature of 390 is not a fever to act on)."""
    problem = terminology_in.unit_system_problem(quantity)
    if problem:
        return problem
    low, high = terminology_in.case_field_plausible().get(code, (-math.inf, math.inf))
    if not low <= number <= high:
        unit = (
            quantity.get("code")
            or quantity.get("unit")
            or get_knowledge_base().vocabulary.case_fields[code].get("unit")
        )
        return _("%(value)s %(unit)s is implausible") % {"value": number, "unit": str(unit or "")[:40]}
    return None


def case_from_chart(chart: dict, *, patient_id: str, today: date) -> tuple[Case, list[str]]:
    """The engine's case from the chart (Patient, Conditions, Observations); notes say what was left out
    or assumed. DataUnavailable when there is no Patient or nothing says where the numbness is."""
    patient = chart.get("patient")
    if not isinstance(patient, dict):
        raise DataUnavailable(_("The patient's record could not be read from the EHR."))
    if patient.get("id") != patient_id:
        raise MalformedRequest("the prefetched Patient is not context.patientId")
    # A Patient without them is valid FHIR: the clinician gets a card that says what the workup lacks, not the
    # EHR an error (sex and age decide rules and tests: a pregnancy test, an ectopic pregnancy, age thresholds).
    gender, birth_date = patient.get("gender"), patient.get("birthDate")
    if gender is not None and gender not in ("female", "male", "other", "unknown"):
        raise MalformedRequest("Patient.gender must be male, female, other or unknown")
    if birth_date is not None and not (isinstance(birth_date, str) and FHIR_DATE.fullmatch(birth_date)):
        raise MalformedRequest("Patient.birthDate must be a FHIR date")
    if gender not in ("female", "male"):
        raise DataUnavailable(
            _("The patient's sex is not recorded as female or male in the EHR, and the workup needs it.")
        )
    if birth_date is None or len(birth_date) < len("YYYY-MM-DD"):
        raise DataUnavailable(_("The patient's full date of birth is not in the EHR, and the workup needs the age."))
    try:
        age = _age(birth_date, today)
    except ValueError:
        raise MalformedRequest("Patient.birthDate must be a real date") from None
    if not 0 <= age <= MAX_AGE:
        # 9999-12-31 is no newborn and 1800-01-01 no 226-year-old: the age rules must not run on either.
        raise DataUnavailable(
            _("The patient's date of birth in the EHR (%(date)s) gives no possible age, and the workup needs the age.")
            % {"date": birth_date}
        )
    vocabulary = get_knowledge_base().vocabulary
    observations, seen = [], set()
    for key in ("findings", "vitals", "labs"):
        for resource in terminology_in.resources_of(chart.get(key), "Observation"):
            identity = resource.get("id") if isinstance(resource.get("id"), str) else id(resource)
            if identity not in seen:
                seen.add(identity)
                observations.append(resource)
    findings, values, results, notes = _own_codes(observations, vocabulary)
    standard, standard_notes = terminology_in.read_observations(observations, today=today)
    condition_findings, condition_notes = terminology_in.read_conditions(
        terminology_in.resources_of(chart.get("conditions"), "Condition"), today=today
    )
    notes += standard_notes + condition_notes
    for code, present in condition_findings.items():
        findings[code] = findings.get(code) or present  # a recorded diagnosis counts even if a form said no
    for target, value in standard.items():
        (results if target in vocabulary.results else values)[target] = value
    for key in ("conditions", "vitals", "labs"):
        if chart.get(key) is None:
            notes.append(_("Not available from the EHR: %(what)s.") % {"what": CHART_PARTS[key]})
    if not any(findings.get(code) for code in vocabulary.findings_in_group("loc")):
        raise DataUnavailable(
            _(
                "The chart does not say where the numbness is (no current M54/R20 Condition "
                "with a body site, and no location finding)."
            )
        )
    if "duration_days" not in values:
        notes.append(_("Duration not recorded: taken as 0 days."))
    sex = patient["gender"]
    pregnant = values.get("pregnant") if sex == "female" else None
    case = Case(
        sex=sex,
        age=max(age, 0),
        duration_days=max(int(values.get("duration_days", 0)), 0),
        findings=findings,
        pregnant=pregnant,
        temperature_c=values.get("temperature_c"),
        vitals={
            name: values[name]
            for name in ("heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")
            if name in values
        },
        results={code: value for code, value in results.items() if code != "res_hcg" or sex == "female"},
    )
    return case, notes


def case_from_prefetch(prefetch: dict, *, today: date, patient_id: str | None = None) -> tuple[Case, list[str]]:
    """The case from a prefetch alone (no fetching): kept for callers that have one."""
    chart = check_prefetch(prefetch)
    if patient_id is None:
        patient_id = (chart.get("patient") or {}).get("id")
    return case_from_chart(chart, patient_id=patient_id, today=today)


def _result_value(meta: dict, resource: dict):
    """(value, None) for a usable result Observation, or (None, why not): a true/false result needs
    valueBoolean; a numeric one a valueQuantity in the code's plausible range (a value outside it is in
    another unit, so it is left out rather than misread)."""
    if meta["type"] == "boolean":
        if isinstance(resource.get("valueBoolean"), bool):
            return resource["valueBoolean"], None
        return None, _("valueBoolean expected")
    quantity = resource.get("valueQuantity") or {}
    number = quantity.get("value") if isinstance(quantity, dict) else None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number != number:
        return None, _("valueQuantity expected")
    problem = terminology_in.unit_system_problem(quantity)
    if problem:
        return None, problem
    low, high = meta["plausible"]
    if not low <= number <= high:
        return None, _("%(value)s is outside %(low)s–%(high)s %(unit)s") % {
            "value": number,
            "low": low,
            "high": high,
            "unit": meta["unit"],
        }
    return number, None


# -- cards -----------------------------------------------------------------------------------------


def _draft_service_request(patient_id: str, code: str, urgency: str, reason: str) -> dict:
    vocabulary = current_kb().vocabulary
    coding = [
        {"system": settings.FHIR_CODE_SYSTEM_URL, "code": code, "display": vocabulary.items[code]["name"]},
        *standard_codes()["items"].get(code, []),
        *standard_codes()["imaging"].get(code, []),
    ]
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "priority": PRIORITY[urgency],
        "code": {"coding": coding, "text": vocabulary.items[code]["name"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": reason}],
    }


def _draft_referral(patient_id: str, specialty: str, urgency: str, reason: str) -> dict:
    vocabulary = current_kb().vocabulary
    performer = [
        {"system": settings.FHIR_CODE_SYSTEM_URL, "code": specialty, "display": vocabulary.specialties[specialty]}
    ]
    if specialty in standard_codes()["specialties"]:
        performer.append(standard_codes()["specialties"][specialty])
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "priority": PRIORITY[urgency],
        "category": [
            {"coding": [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": "referral", "display": "Referral"}]}
        ],
        "code": {"text": _("Referral to %(specialty)s") % {"specialty": vocabulary.specialties[specialty]}},
        "performerType": {"coding": performer, "text": vocabulary.specialties[specialty]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": reason}],
    }


def _suggestion(label, patient_id, items, referrals) -> dict:
    actions = [
        {
            "type": "create",
            "description": _("Order %(name)s (%(urgency)s)")
            % {"name": row["name"], "urgency": _urgency(row["urgency"])},
            "resource": _draft_service_request(patient_id, row["code"], row["urgency"], row["rationale"]),
        }
        for row in items
    ]
    actions += [
        {
            "type": "create",
            "description": _("Refer to %(name)s (%(urgency)s)")
            % {"name": row["name"], "urgency": _urgency(row["urgency"])},
            "resource": _draft_referral(patient_id, row["specialty"], row["urgency"], row["reason"]),
        }
        for row in referrals
    ]
    return {"label": label, "uuid": str(uuid.uuid4()), "isRecommended": True, "actions": actions}


def _bullets(items, referrals, *, why=True) -> str:
    lines = [
        f"- **{row['name']}** ({_urgency(row['urgency'])})" + (f": {row['rationale']}" if why else "") for row in items
    ]
    lines += [
        _("- Refer to **%(name)s** (%(urgency)s)") % {"name": row["name"], "urgency": _urgency(row["urgency"])}
        + (f": {row['reason']}" if why else "")
        for row in referrals
    ]
    return "\n".join(lines)


def _unique(rows, key, taken: set) -> list[dict]:
    """Rows whose key is not taken yet (and not repeated): each item is suggested once per response."""
    fresh = []
    for row in rows:
        if (key, row[key]) not in taken:
            taken.add((key, row[key]))
            fresh.append(row)
    return fresh


def workup_cards(case: Case, *, patient_id: str, notes: list[str], link: dict, home: str | None = None) -> list[dict]:
    """Cards for patient-view. Each card carries its rule id under "_rule" (the view records and strips
    it). No item or referral is suggested twice: the emergency cards, then the urgent ones, then the
    info card each suggest only what no card before them suggested."""
    kb = current_kb()
    result = evaluate(kb, case)
    cards, taken = [], set()
    fired = [rule for rule in kb.rules if rule.tier in ("emergency", "urgent") and rule.id in result["fired_rules"]]
    fired.sort(key=lambda rule: 0 if rule.tier == "emergency" else 1)
    for rule in fired:
        items = [row for row in result["items"] if rule.id in row["rules"]]
        referrals = [row for row in result["referrals"] if rule.id in row["rules"]]
        if not items and not referrals:
            continue  # deferred behind an emergency: the emergency card says what to do now
        card = {
            "uuid": str(uuid.uuid4()),
            "summary": (
                (_("Emergency: %(title)s") if rule.tier == "emergency" else _("Urgent: %(title)s"))
                % {"title": rule.title}
            )[:140],
            "detail": f"{rule.rationale}.\n\n{_bullets(items, referrals, why=False)}",
            "indicator": "critical" if rule.tier == "emergency" else "warning",
            "source": {
                "label": rule.sources[0],
                "topic": {"system": settings.FHIR_CODE_SYSTEM_URL, "code": rule.id, "display": rule.title},
            },
            "links": [link],
            "_rule": rule.id,
        }
        new_items, new_referrals = _unique(items, "code", taken), _unique(referrals, "specialty", taken)
        if new_items or new_referrals:
            card["suggestions"] = [
                _suggestion(
                    (
                        _("Order the emergency workup for %(title)s")
                        if rule.tier == "emergency"
                        else _("Order the urgent workup for %(title)s")
                    )
                    % {"title": rule.title.lower()},
                    patient_id,
                    new_items,
                    new_referrals,
                )
            ]
            card["selectionBehavior"] = "at-most-one"
        cards.append(card)
    summary = kb.vocabulary.dispositions[result["disposition"]]
    detail = [_bullets(result["items"], result["referrals"]) or _("No tests or referrals now.")]
    detail += [_("Advice: %(advice)s.") % {"advice": line} for line in result["advice"]]
    if result["review"]:
        detail.append(result["review"] + ".")
    detail += [_("Not indicated: %(name)s (%(reason)s).") % row for row in result["not_indicated"]]
    detail += [_("Withheld: %(name)s (%(reason)s).") % row for row in result["withheld"]]
    # The red flags not asked, by name in the card's language (a GP reads "Saddle anaesthesia", not a code).
    detail += [
        f"⚠ {row['message']}"
        + (
            f": {', '.join(kb.vocabulary.name_of(code) for code in row['findings'])}"
            if row.get("findings") and row["code"] == "red_flags_not_screened"
            else ""
        )
        for row in result["warnings"]
    ]
    detail += notes
    source = {"label": _("%(title)s (knowledge base %(version)s)") % {"title": kb.title, "version": kb.version}}
    if home:
        source["url"] = home
    info = {
        "uuid": str(uuid.uuid4()),
        "summary": (_("Back numbness: %(summary)s") % {"summary": summary})[:140],
        "detail": "\n\n".join(detail),
        "indicator": "info",
        "source": source,
        "links": [link],
        "_rule": f"disposition:{result['disposition']}",
    }
    items, referrals = _unique(result["items"], "code", taken), _unique(result["referrals"], "specialty", taken)
    if items or referrals:
        info["suggestions"] = [_suggestion(_("Order the recommended workup"), patient_id, items, referrals)]
        info["selectionBehavior"] = "any"
    cards.append(info)
    return cards


def unavailable_card(reason: str, *, link: dict, home: str | None = None, notes=()) -> dict:
    """The answer when the chart cannot be had or holds too little: say so, and where to go instead."""
    source = {"label": _("Back numbness workup")}
    if home:
        source["url"] = home
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _("Back numbness workup: not enough data in the chart")[:140],
        "detail": "\n\n".join([reason, *notes, _("Record the findings in the workup app to get its advice.")]),
        "indicator": "warning",
        "source": source,
        "links": [link],
        "_rule": "data-unavailable",
    }


def _item_of_order(resource: dict) -> str | None:
    """The project's item for a draft order coded in the project's system, LOINC or SNOMED CT."""
    vocabulary = get_knowledge_base().vocabulary
    concept = resource.get("code") if isinstance(resource.get("code"), dict) else {}
    codings = concept.get("coding") if isinstance(concept.get("coding"), list) else []
    for coding in codings:
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        system, code = coding.get("system"), coding["code"]
        if system == settings.FHIR_CODE_SYSTEM_URL and code in vocabulary.items:
            return code
        if system in (LOINC, SNOMED) and (item := item_for_coding(system, code) or order_item_for_coding(system, code)):
            return item
    return None


def selected_orders(context: dict) -> list[tuple[str, dict]]:
    """(reference, ServiceRequest) for each selected draft order."""
    selections = context.get("selections")
    draft_orders = context.get("draftOrders")
    if not isinstance(selections, list) or not isinstance(draft_orders, dict):
        raise MalformedRequest("order-select needs context.selections (a list) and context.draftOrders (a Bundle)")
    check_bundle(draft_orders, "context.draftOrders")
    if not all(isinstance(reference, str) for reference in selections):
        raise MalformedRequest("context.selections must be a list of references")
    by_reference = {}
    for resource in (entry.get("resource") for entry in draft_orders.get("entry") or []):
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            by_reference[f"{resource['resourceType']}/{resource['id']}"] = resource
    return [
        (reference, by_reference[reference]) for reference in dict.fromkeys(selections) if reference in by_reference
    ]


OVERRIDE_REASONS = [
    {
        "code": "override-clinical-judgement",
        "display": gettext_lazy("Clinical judgement: indicated for reasons not recorded here"),
    },
    {"code": "override-red-flag", "display": gettext_lazy("A red flag not recorded in the EHR")},
    {"code": "override-specialist-request", "display": gettext_lazy("Requested by a specialist")},
]


def _drafted_items(context: dict) -> set[str]:
    """The items already among the draft orders (selected or not): an alternative there is not suggested again."""
    entries = (context.get("draftOrders") or {}).get("entry") or []
    resources = (entry.get("resource") for entry in entries if isinstance(entry, dict))
    return {code for code in (_item_of_order(r) for r in resources if isinstance(r, dict)) if code}


def _unsafe_card(kb, check, *, code, reference, order, context, link, result, offered, drafted) -> dict:
    """An order a safety rule stops. Its alternatives are suggested only where the workup itself recommends
    them, each once in the response, and not when already among the draft orders; an order the workup would not
    have recommended anyway is only removed, with the reason it is not indicated either."""
    vocabulary = kb.vocabulary
    name = vocabulary.items[code]["name"]
    issued = {row["code"] for row in result["items"]}
    issued |= {row["code"] for row in result["deferred"] if row["kind"] == "item"}
    recommended = issued | {row["code"] for row in result["withheld"]}
    why = None if code in recommended else why_not_indicated(kb, result, code)
    not_indicated = why["reason"] if why else None
    alternatives = [] if not_indicated else [alt for alt in dict.fromkeys(check["alternatives"]) if alt in issued]
    fresh = [alt for alt in alternatives if alt not in offered and alt not in drafted]
    offered.update(fresh)
    if not_indicated:
        detail = check["reason"] + _(". Not indicated now either: %(reason)s.") % {"reason": not_indicated}
    elif fresh:
        detail = check["reason"] + _(". Order instead: %(names)s.") % {
            "names": ", ".join(vocabulary.items[alt]["name"] for alt in fresh)
        }
    elif alternatives:
        detail = check["reason"] + _(". Its alternative is already ordered or suggested: %(names)s.") % {
            "names": ", ".join(vocabulary.items[alt]["name"] for alt in alternatives)
        }
    else:
        detail = check["reason"] + _(". No safe alternative: let the specialist decide on imaging.")
    remove = {
        "type": "delete",
        "description": _("Remove the %(name)s order") % {"name": name},
        "resourceId": reference,
    }
    creates = [
        {
            "type": "create",
            "description": _("Order %(name)s") % {"name": vocabulary.items[alt]["name"]},
            "resource": _draft_service_request(context["patientId"], alt, _urgency_of(order), check["reason"]),
        }
        for alt in fresh
    ]
    label = (
        _("Order %(names)s instead") % {"names": _(" and ").join(vocabulary.items[alt]["name"] for alt in fresh)}
        if fresh
        else _("Remove the %(name)s order") % {"name": name}
    )
    return {
        "uuid": str(uuid.uuid4()),
        "summary": (_("%(name)s: not for this patient") % {"name": name})[:140],
        "detail": detail,
        "indicator": "critical",
        "source": {"label": check["sources"][0]},
        "links": [link],
        "suggestions": [
            {"label": label, "uuid": str(uuid.uuid4()), "isRecommended": True, "actions": [remove, *creates]}
        ],
        "selectionBehavior": "at-most-one",
        "_rule": f"order-unsafe:{code}",
    }


def imaging_cards(case: Case, *, context: dict, link: dict) -> list[dict]:
    kb = current_kb()
    vocabulary = kb.vocabulary
    cards = []
    result, offered, drafted = None, set(), _drafted_items(context)
    for reference, order in selected_orders(context):
        code = _item_of_order(order)
        if code is None or vocabulary.items[code]["category"] != "imaging":
            continue
        check = order_check(kb, case, code)
        name = vocabulary.items[code]["name"]
        if check["verdict"] == "unsafe":
            result = result or evaluate(kb, case)
            cards.append(
                _unsafe_card(
                    kb,
                    check,
                    code=code,
                    reference=reference,
                    order=order,
                    context=context,
                    link=link,
                    result=result,
                    offered=offered,
                    drafted=drafted,
                )
            )
        elif check["verdict"] == "not_indicated":
            card = {
                "uuid": str(uuid.uuid4()),
                "summary": (_("%(name)s is not indicated now") % {"name": name})[:140],
                "detail": f"{check['reason']}.\n\n"
                + _("Sources: %(sources)s") % {"sources": "; ".join(check["sources"])},
                "indicator": "warning",
                "source": {"label": check["sources"][0]},
                "overrideReasons": [
                    {
                        "system": settings.FHIR_CODE_SYSTEM_URL,
                        "code": reason["code"],
                        "display": str(reason["display"]),
                    }
                    for reason in OVERRIDE_REASONS
                ],
                "links": [link],
                "_rule": f"order-not-indicated:{code}",
            }
            # The workup recommends another spine study: offered in its place, once in the response.
            fresh = [alt for alt in check["alternatives"] if alt not in offered and alt not in drafted]
            if fresh:
                offered.update(fresh)
                result = result or evaluate(kb, case)
                card["suggestions"] = [_instead(kb, result, context, reference, name, fresh, check["reason"])]
                card["selectionBehavior"] = "at-most-one"
            cards.append(card)
    return cards


def _instead(kb, result: dict, context: dict, reference: str, name: str, codes: list[str], reason: str) -> dict:
    """Replace the order at `reference` with the studies the workup recommends, at the urgency it gives them and
    with its reason for each (the order the workup's own card drafts): `reason`, why the order at `reference` is
    not indicated, is no reason for the study put in its place."""
    planned = {row["code"]: row for row in (*result["items"], *result["deferred"]) if "code" in row}
    names = _(" and ").join(kb.vocabulary.items[code]["name"] for code in codes)
    return {
        "label": _("Order %(names)s instead") % {"names": names},
        "uuid": str(uuid.uuid4()),
        "isRecommended": True,
        "actions": [
            {"type": "delete", "description": _("Remove the %(name)s order") % {"name": name}, "resourceId": reference},
            *(
                {
                    "type": "create",
                    "description": _("Order %(name)s") % {"name": kb.vocabulary.items[code]["name"]},
                    "resource": _draft_service_request(
                        context["patientId"],
                        code,
                        planned.get(code, {}).get("urgency", "routine"),
                        planned.get(code, {}).get("rationale") or reason,
                    ),
                }
                for code in codes
            ),
        ],
    }


def _urgency_of(order: dict) -> str:
    if not isinstance(order.get("priority"), str):
        return "routine"
    return {"stat": "emergency", "asap": "urgent", "urgent": "urgent"}.get(order.get("priority"), "routine")
