"""CDS Hooks 2.0 services: the back-numbness workup (patient-view) and imaging appropriateness (order-select).

Pure translation between CDS Hooks JSON and the engine: the case is read from the prefetched
Patient and Observations (coded in the project's code system), cards are built from the engine's
answer. No rendering, no writes; the only queries are the caller's (EHR client, patient link).
"""
from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings

from django.utils.translation import gettext as _, gettext_lazy

from workups.engine import Case, evaluate, get_knowledge_base, order_check
from workups.localized import current_kb
from ehr.standard_codes import LOINC, item_for_coding, standard_codes

WORKUP_SERVICE = "back-numbness-workup"
IMAGING_SERVICE = "imaging-appropriateness"
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
URGENCY_WORDS = {"emergency": gettext_lazy("emergency"), "urgent": gettext_lazy("urgent"),
                 "routine": gettext_lazy("routine")}


def _urgency(code: str) -> str:
    return str(URGENCY_WORDS.get(code, code))


class MalformedRequest(Exception):
    """400: the request is not a CDS Hooks call this service understands."""


class PrefetchMissing(Exception):
    """412: prefetched data the service needs is missing (CDS Hooks 2.0, prefetch)."""


def discovery() -> dict:
    code_system = settings.FHIR_CODE_SYSTEM_URL
    prefetch = {
        "patient": "Patient/{{context.patientId}}",
        "findings": f"Observation?patient={{{{context.patientId}}}}&code={code_system}|",
    }
    kb = get_knowledge_base()
    return {"services": [
        {
            "hook": "patient-view",
            "id": WORKUP_SERVICE,
            "title": "Back numbness workup",
            "description": ("Triage and the recommended tests and referrals for numbness in the back, from the "
                            f"patient's findings coded in {code_system} (knowledge base {kb.version})."),
            "prefetch": prefetch,
        },
        {
            "hook": "order-select",
            "id": IMAGING_SERVICE,
            "title": "Spine imaging appropriateness",
            "description": ("Warns when a selected imaging order is not indicated by the guidance for this patient, "
                            "and stops ionising imaging in pregnancy where a safe alternative exists."),
            "prefetch": prefetch,
        },
    ]}


# -- reading the request ---------------------------------------------------------------------------

def _require(body, hook) -> dict:
    if not isinstance(body, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    problems = []
    if body.get("hook") != hook:
        problems.append(f"hook must be {hook!r}")
    if not isinstance(body.get("hookInstance"), str) or not body.get("hookInstance"):
        problems.append("hookInstance is required")
    context = body.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
        problems.append("context.patientId is required")
    prefetch = body.get("prefetch", {})
    if not isinstance(prefetch, dict):
        problems.append("prefetch must be an object")
    if problems:
        raise MalformedRequest("; ".join(problems))
    return context


def _age(birth: str, today: date) -> int:
    born = date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def case_from_prefetch(prefetch: dict, *, today: date) -> tuple[Case, list[str]]:
    """The engine's case from the prefetched Patient and Observations; notes say what had to be assumed."""
    patient = prefetch.get("patient")
    findings_bundle = prefetch.get("findings")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise PrefetchMissing("prefetch.patient (the Patient) is required")
    if not isinstance(findings_bundle, dict) or findings_bundle.get("resourceType") != "Bundle":
        raise PrefetchMissing("prefetch.findings (a Bundle of Observations) is required")
    if patient.get("gender") not in ("female", "male"):
        raise MalformedRequest("Patient.gender must be female or male")
    try:
        age = _age(patient["birthDate"], today)
    except (KeyError, TypeError, ValueError):
        raise MalformedRequest("Patient.birthDate must be a full date") from None
    vocabulary = get_knowledge_base().vocabulary
    system = settings.FHIR_CODE_SYSTEM_URL
    findings, values, results, notes = {}, {}, {}, []
    for entry in findings_bundle.get("entry") or []:
        resource = (entry or {}).get("resource") or {}
        if resource.get("resourceType") != "Observation" or resource.get("status") in ("entered-in-error", "cancelled"):
            continue
        for coding in (resource.get("code") or {}).get("coding") or []:
            if coding.get("system") != system:
                continue
            code = coding.get("code")
            if code in vocabulary.findings and isinstance(resource.get("valueBoolean"), bool):
                findings[code] = resource["valueBoolean"]
            elif code == "pregnant" and isinstance(resource.get("valueBoolean"), bool):
                values["pregnant"] = resource["valueBoolean"]
            elif code in vocabulary.case_fields and isinstance((resource.get("valueQuantity") or {}).get("value"),
                                                               (int, float)):
                values[code] = resource["valueQuantity"]["value"]
            elif code in vocabulary.results:
                value, problem = _result_value(vocabulary.results[code], resource)
                if problem:
                    notes.append(_("Result %(code)s not used: %(problem)s.") % {"code": code, "problem": problem})
                else:
                    results[code] = value
    if not any(findings.get(code) for code in vocabulary.findings_in_group("loc")):
        raise PrefetchMissing("no Observation records where the numbness is (a loc_* code, valueBoolean true)")
    if "duration_days" not in values:
        notes.append("Duration not recorded: taken as 0 days.")
    sex = patient["gender"]
    pregnant = values.get("pregnant") if sex == "female" else None
    case = Case(
        sex=sex, age=max(age, 0), duration_days=max(int(values.get("duration_days", 0)), 0), findings=findings,
        pregnant=pregnant, temperature_c=values.get("temperature_c"),
        vitals={name: values[name] for name in ("heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")
                if name in values},
        results={code: value for code, value in results.items() if code != "res_hcg" or sex == "female"},
    )
    return case, notes


def _result_value(meta: dict, resource: dict):
    """(value, None) for a usable result Observation, or (None, why not): a true/false result needs
    valueBoolean; a numeric one a valueQuantity in the code's plausible range (a value outside it is in
    another unit, so it is left out rather than misread)."""
    if meta["type"] == "boolean":
        if isinstance(resource.get("valueBoolean"), bool):
            return resource["valueBoolean"], None
        return None, "valueBoolean expected"
    quantity = resource.get("valueQuantity") or {}
    number = quantity.get("value") if isinstance(quantity, dict) else None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number != number:
        return None, "valueQuantity expected"
    low, high = meta["plausible"]
    if not low <= number <= high:
        return None, f"{number} is outside {low}–{high} {meta['unit']}"
    return number, None


# -- cards -----------------------------------------------------------------------------------------

def _draft_service_request(patient_id: str, code: str, urgency: str, reason: str) -> dict:
    vocabulary = current_kb().vocabulary
    coding = [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": code, "display": vocabulary.items[code]["name"]},
              *standard_codes()["items"].get(code, [])]
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
    performer = [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": specialty,
                  "display": vocabulary.specialties[specialty]}]
    if specialty in standard_codes()["specialties"]:
        performer.append(standard_codes()["specialties"][specialty])
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "priority": PRIORITY[urgency],
        "category": [{"coding": [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": "referral",
                                  "display": "Referral"}]}],
        "code": {"text": _("Referral to %(specialty)s") % {"specialty": vocabulary.specialties[specialty]}},
        "performerType": {"coding": performer, "text": vocabulary.specialties[specialty]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": reason}],
    }


def _suggestion(label, patient_id, items, referrals) -> dict:
    actions = [{"type": "create", "description": _("Order %(name)s (%(urgency)s)") % {
                    "name": row["name"], "urgency": _urgency(row["urgency"])},
                "resource": _draft_service_request(patient_id, row["code"], row["urgency"], row["rationale"])}
               for row in items]
    actions += [{"type": "create", "description": _("Refer to %(name)s (%(urgency)s)") % {
                     "name": row["name"], "urgency": _urgency(row["urgency"])},
                 "resource": _draft_referral(patient_id, row["specialty"], row["urgency"], row["reason"])}
                for row in referrals]
    return {"label": label, "uuid": str(uuid.uuid4()), "isRecommended": True, "actions": actions}


def _bullets(items, referrals, *, why=True) -> str:
    lines = [f"- **{row['name']}** ({_urgency(row['urgency'])})" + (f": {row['rationale']}" if why else "")
             for row in items]
    lines += [_("- Refer to **%(name)s** (%(urgency)s)") % {"name": row["name"], "urgency": _urgency(row["urgency"])}
              + (f": {row['reason']}" if why else "") for row in referrals]
    return "\n".join(lines)


def workup_cards(case: Case, *, patient_id: str, notes: list[str], link: dict) -> list[dict]:
    kb = current_kb()
    result = evaluate(kb, case)
    cards = []
    for rule in kb.rules:
        if rule.tier not in ("emergency", "urgent") or rule.id not in result["fired_rules"]:
            continue
        items = [row for row in result["items"] if rule.id in row["rules"]]
        referrals = [row for row in result["referrals"] if rule.id in row["rules"]]
        if not items and not referrals:
            continue  # deferred behind an emergency: the emergency card says what to do now
        cards.append({
            "uuid": str(uuid.uuid4()),
            "summary": ((_("Emergency: %(title)s") if rule.tier == "emergency" else _("Urgent: %(title)s"))
                        % {"title": rule.title})[:140],
            "detail": f"{rule.rationale}.\n\n{_bullets(items, referrals, why=False)}",
            "indicator": "critical" if rule.tier == "emergency" else "warning",
            "source": {"label": rule.sources[0], "topic": {"system": settings.FHIR_CODE_SYSTEM_URL, "code": rule.id,
                                                           "display": rule.title}},
            "suggestions": [_suggestion(
                (_("Order the emergency workup for %(title)s") if rule.tier == "emergency"
                 else _("Order the urgent workup for %(title)s")) % {"title": rule.title.lower()},
                patient_id, items, referrals)],
            "selectionBehavior": "at-most-one",
            "links": [link],
        })
    summary = kb.vocabulary.dispositions[result["disposition"]]
    detail = [_bullets(result["items"], result["referrals"]) or _("No tests or referrals now.")]
    detail += [_("Advice: %(advice)s.") % {"advice": line} for line in result["advice"]]
    if result["review"]:
        detail.append(result["review"] + ".")
    detail += [_("Not indicated: %(name)s (%(reason)s).") % row for row in result["not_indicated"]]
    detail += [_("Withheld: %(name)s (%(reason)s).") % row for row in result["withheld"]]
    detail += [f"⚠ {row['message']}" + (f": {', '.join(row['findings'])}" if row.get("findings") and
                                         row["code"] == "red_flags_not_screened" else "") for row in result["warnings"]]
    detail += notes
    info = {
        "uuid": str(uuid.uuid4()),
        "summary": (_("Back numbness: %(summary)s") % {"summary": summary})[:140],
        "detail": "\n\n".join(detail),
        "indicator": "info",
        "source": {"label": _("%(title)s (knowledge base %(version)s)") % {"title": kb.title, "version": kb.version},
                   "url": link["url"]},
        "links": [link],
    }
    if result["items"] or result["referrals"]:
        info["suggestions"] = [_suggestion(_("Order the recommended workup"), patient_id, result["items"],
                                           result["referrals"])]
        info["selectionBehavior"] = "any"
    cards.append(info)
    return cards


def _item_of_order(resource: dict) -> str | None:
    vocabulary = get_knowledge_base().vocabulary
    for coding in (resource.get("code") or {}).get("coding") or []:
        if coding.get("system") == settings.FHIR_CODE_SYSTEM_URL and coding.get("code") in vocabulary.items:
            return coding["code"]
        if coding.get("system") == LOINC and (item := item_for_coding(LOINC, coding.get("code"))):
            return item
    return None


def selected_orders(context: dict) -> list[tuple[str, dict]]:
    """(reference, ServiceRequest) for each selected draft order."""
    selections = context.get("selections")
    draft_orders = context.get("draftOrders")
    if not isinstance(selections, list) or not isinstance(draft_orders, dict):
        raise MalformedRequest("order-select needs context.selections (a list) and context.draftOrders (a Bundle)")
    by_reference = {}
    for entry in draft_orders.get("entry") or []:
        resource = (entry or {}).get("resource") or {}
        if resource.get("resourceType") and resource.get("id"):
            by_reference[f"{resource['resourceType']}/{resource['id']}"] = resource
    return [(reference, by_reference[reference]) for reference in selections if reference in by_reference]


OVERRIDE_REASONS = [
    {"code": "override-clinical-judgement", "display": gettext_lazy("Clinical judgement: indicated for reasons not recorded here")},
    {"code": "override-red-flag", "display": gettext_lazy("A red flag not recorded in the EHR")},
    {"code": "override-specialist-request", "display": gettext_lazy("Requested by a specialist")},
]


def imaging_cards(case: Case, *, context: dict, link: dict) -> list[dict]:
    kb = current_kb()
    vocabulary = kb.vocabulary
    cards = []
    for reference, order in selected_orders(context):
        code = _item_of_order(order)
        if code is None or vocabulary.items[code]["category"] != "imaging":
            continue
        check = order_check(kb, case, code)
        name = vocabulary.items[code]["name"]
        if check["verdict"] == "unsafe":
            alternatives = check["alternatives"]
            card = {
                "uuid": str(uuid.uuid4()),
                "summary": (_("%(name)s: not for this patient") % {"name": name})[:140],
                "detail": check["reason"] + (
                    _(". Order instead: %(names)s.") % {"names": ", ".join(vocabulary.items[alt]["name"] for alt in alternatives)}
                    if alternatives else _(". No safe alternative: let the specialist decide on imaging.")),
                "indicator": "critical",
                "source": {"label": check["sources"][0]},
                "links": [link],
            }
            if alternatives:
                patient_id = context["patientId"]
                card["suggestions"] = [{
                    "label": _("Order %(names)s instead") % {
                        "names": _(" and ").join(vocabulary.items[alt]["name"] for alt in alternatives)},
                    "uuid": str(uuid.uuid4()),
                    "isRecommended": True,
                    "actions": [{"type": "delete", "description": _("Remove the %(name)s order") % {"name": name},
                                 "resourceId": [reference]}]
                    + [{"type": "create", "description": _("Order %(name)s") % {"name": vocabulary.items[alt]["name"]},
                        "resource": _draft_service_request(patient_id, alt, _urgency_of(order), check["reason"])}
                       for alt in alternatives],
                }]
                card["selectionBehavior"] = "at-most-one"
            cards.append(card)
        elif check["verdict"] == "not_indicated":
            cards.append({
                "uuid": str(uuid.uuid4()),
                "summary": (_("%(name)s is not indicated now") % {"name": name})[:140],
                "detail": f"{check['reason']}.\n\n" + _("Sources: %(sources)s") % {"sources": "; ".join(check["sources"])},
                "indicator": "warning",
                "source": {"label": check["sources"][0]},
                "overrideReasons": [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": reason["code"],
                                     "display": str(reason["display"])} for reason in OVERRIDE_REASONS],
                "links": [link],
            })
    return cards


def _urgency_of(order: dict) -> str:
    return {"stat": "emergency", "asap": "urgent", "urgent": "urgent"}.get(order.get("priority"), "routine")
