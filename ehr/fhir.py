"""FHIR R4 for EHRs: an encounter exported as a Bundle, a Patient imported.

Resources are built as plain dicts and validated with fhir.resources' R4B models (the R4 line)
before they leave. Every coded element carries the project's code system
(settings.FHIR_CODE_SYSTEM_URL); a LOINC or SNOMED CT coding is added beside it only where
workups/knowledge/standard_codes.yaml records a verified one.
"""

from __future__ import annotations

import operator
import re
import uuid
from datetime import date
from functools import reduce

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhirclient.models import observation as fhirclient_observation
from fhirclient.models import patient as fhirclient_patient
from fhirclient.models import task as fhirclient_task
from fhirclient.models.fhirabstractbase import FHIRValidationError
from pydantic import ValidationError as PydanticValidationError

from clinic.audit import Actor, audit_record
from clinic.identifiers import validate_oms_policy, validate_snils
from clinic.models import Encounter, Patient
from clinic.numbers import whole_number
from clinic.parsers import MAX_DEPTH as JSON_MAX_DEPTH
from clinic.services import patient_create
from ehr.identifier_systems import (
    CORE_PATIENT_PROFILE,
    DIGITS,
    LABELS,
    field_of,
    identifier_q_of_key,
    national_digits,
    record_identifiers,
)
from ehr.standard_codes import standard_codes
from workups.engine import get_knowledge_base
from workups.models import ItemOrder, WorkupItem

PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def system() -> str:
    return settings.FHIR_CODE_SYSTEM_URL


def coding(code: str, display: str | None = None) -> dict:
    vocabulary = get_knowledge_base().vocabulary
    return {"system": system(), "code": code, "display": display or vocabulary.name_of(code)}


def concept(code: str, *, extra=(), text: str | None = None) -> dict:
    result = {"coding": [coding(code), *extra]}
    if text:
        result["text"] = text
    return result


def full_url(resource_type: str, pk) -> str:
    """A stable urn:uuid for one of our rows: the same row is the same resource in every export."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system()}/{resource_type}/{pk}')}"


# -- export ------------------------------------------------------------------------------------------


def patient_resource(patient: Patient) -> dict:
    """The patient on the HL7 FHIR Russia Core_Patient profile (ehr.identifier_systems): the patronymic is the
    second given name, SNILS and the OMS policy are identifiers of the guide's systems and types."""
    resource = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": {
            "versionId": str(patient.version),
            "lastUpdated": patient.updated_at.isoformat(),
            "profile": [CORE_PATIENT_PROFILE],
        },
        "name": [
            {
                "use": "official",
                "family": patient.family_name,
                "given": [patient.given_name, *([patient.middle_name] if patient.middle_name else [])],
                "text": patient.full_name,
            }
        ],
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
    }
    identifiers = record_identifiers(patient)
    if identifiers:
        resource["identifier"] = identifiers
    if patient.phone:
        resource["telecom"] = [{"system": "phone", "value": patient.phone}]
    return resource


def _observation(encounter, patient_ref, encounter_ref, code, key, value: dict) -> tuple[str, dict]:
    resource_id = f"{encounter.pk}-{key.replace('_', '-')}"  # FHIR ids allow letters, digits, - and .
    url = full_url("Observation", resource_id)
    return url, {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": "exam"
                        if code.startswith("ex_")
                        else "vital-signs"
                        if code in VITALS or code == "blood_pressure"
                        else "survey",
                    },
                    coding(_group_of(code), get_knowledge_base().vocabulary.groups[_group_of(code)]),
                ]
            }
        ],
        "code": concept(code),
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "effectiveDateTime": encounter.visit_date.isoformat(),
        **value,
    }


def _group_of(code: str) -> str:
    """The vocabulary group of a finding (loc, sx, rf, ...), or "case" for a case field."""
    return get_knowledge_base().vocabulary.findings.get(code, {}).get("group", "case")


VITALS = ("temperature_c", "heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")


def _quantity(value, unit) -> dict:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _service_request_item(item, *, encounter, patient_ref, encounter_ref, observation_urls, resource_id) -> dict:
    vocabulary = get_knowledge_base().vocabulary
    standard = standard_codes()
    category_key = {"lab": "laboratory", "imaging": "imaging"}.get(item.category)
    category = concept(item.category, text=vocabulary.categories[item.category])
    if category_key and category_key in standard["categories"]:
        category["coding"].append(standard["categories"][category_key])
    triggers = [code for code in item.triggered_by if code in vocabulary.findings]
    resource = {
        "resourceType": "ServiceRequest",
        "id": resource_id,
        "status": "active",
        "intent": "order",
        "priority": PRIORITY[item.urgency],
        "category": [category],
        "code": concept(
            item.code,
            extra=[*standard["items"].get(item.code, []), *standard["imaging"].get(item.code, [])],
            text=vocabulary.items[item.code]["name"],
        ),
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "authoredOn": encounter.visit_date.isoformat(),
        "requester": {"display": encounter.clinician.get_full_name() or encounter.clinician.get_username()},
    }
    if item.rationale or triggers:
        resource["reasonCode"] = [{"coding": [coding(code) for code in triggers], "text": item.rationale}]
    support = [{"reference": observation_urls[code]} for code in triggers if code in observation_urls]
    if support:
        resource["supportingInfo"] = support
    return resource


def _answering_codes(item_code: str, standard_coding: dict | None) -> set[str]:
    """The result codes that answer one exported order: those the vocabulary ties to the test, narrowed, for
    one of the orders a test is split into (CRP of CRP and ESR), to those its LOINC code is read as."""
    from workups.services import result_codes_by_test

    codes = set(result_codes_by_test().get(item_code, ()))
    if standard_coding is None:
        return codes
    loinc = result_loinc_table().get(standard_coding["code"])
    narrowed = {loinc["target"]} & codes if loinc else set()
    # No result code of its own (amylase): answered as the app counts the test answered, by any of them.
    return narrowed or codes


def _order_id(origin: int, round_: int) -> str:
    """A test's order: `item-<origin>` first, then `item-<origin>-r<round>` for each placed again."""
    return f"item-{origin}" if round_ == 1 else f"item-{origin}-r{round_}"


def _service_requests_item(
    item,
    *,
    order,
    encounter,
    patient_ref,
    encounter_ref,
    observation_urls,
    answered=frozenset(),
    origin=None,
) -> list[tuple[str, dict, set[str]]]:
    """The ServiceRequests of one order of a test (`order`: a workups ItemOrder; `item`: the test's row, in the
    current workup or the last one that had it). One per test the item orders: CRP and ESR, amylase and lipase
    are two orders each (a receiver that took them as alternative codings would order only one), grouped by a
    shared requisition. Each with the result codes that answer it; `completed` once one of them has a current
    result (`answered`), as the app stops awaiting the test (workups.services.awaiting_refresh), else `active`;
    `on-hold` while the workup asks the GP again (a result raised its urgency, or the GP set it back to pending):
    nobody took it back. `revoked` when the GP took it back or a later workup no longer has it, with the GP's
    reason; final, so the test accepted again is the next order (round), which `replaces` it. Named
    `item-<origin>` (`item-<origin>-r<round>` from the second round): the first row of the test in the encounter,
    so that the order keeps its id through the workups a review or an edit stores after it."""
    standard = standard_codes()["items"].get(item.code, [])
    origin = item.pk if origin is None else origin
    name = _order_id(origin, order.round)
    replaced = _order_id(origin, order.round - 1) if order.round > 1 else None
    base = _service_request_item(
        item,
        encounter=encounter,
        patient_ref=patient_ref,
        encounter_ref=encounter_ref,
        observation_urls=observation_urls,
        resource_id=name,
    )
    base["authoredOn"] = order.ordered_at.isoformat()
    if order.ordered_by is not None:
        base["requester"] = {"display": order.ordered_by.get_full_name() or order.ordered_by.get_username()}
    revoked = order.revoked_at is not None
    if revoked and order.revoked_reason:
        base["note"] = [{"text": order.revoked_reason}]

    def status(codes):
        if revoked:
            return "revoked"
        if codes & answered:
            return "completed"
        return "active" if item.decision == "accepted" else "on-hold"

    def replaces(suffix):
        return {"replaces": [{"reference": full_url("ServiceRequest", f"{replaced}{suffix}")}]} if replaced else {}

    if len(standard) <= 1:
        codes = _answering_codes(item.code, None)
        return [("", {**base, "status": status(codes), **replaces("")}, codes)]
    requests = []
    for index, standard_coding in enumerate(standard, start=1):
        codes = _answering_codes(item.code, standard_coding)
        request = {
            **base,
            "id": f"{name}-{index}",
            "status": status(codes),
            **replaces(f"-{index}"),
            "code": concept(item.code, extra=[standard_coding], text=standard_coding["display"]),
            "requisition": {"system": f"{system()}/requisition", "value": name},
        }
        requests.append((f"-{index}", request, codes))
    return requests


def _condition(referral, *, patient_ref, encounter_ref) -> dict:
    """The referral's provisional diagnosis (ICD-10), as the reason for the referral."""
    return {
        "resourceType": "Condition",
        "id": f"referral-{referral.pk}",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "verificationStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "provisional"}]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                        "display": "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": ICD10,
                    "code": referral.icd10,
                    **({"display": referral.diagnosis} if referral.diagnosis else {}),
                }
            ],
            "text": referral.diagnosis or referral.icd10,
        },
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
    }


VITAL_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"


def _vital_signs(encounter, patient_ref, encounter_ref) -> list[tuple[str, dict]]:
    """Vital signs on the R4 vital-signs profile: LOINC beside the project's code, UCUM units, and the
    blood pressure as the 85354-9 panel with its systolic and diastolic components."""
    vocabulary = get_knowledge_base().vocabulary
    loinc = standard_codes()["vital_signs"]
    entries = []
    for name in ("temperature_c", "heart_rate", "resp_rate", "spo2"):
        value = getattr(encounter, name)
        if value is None:
            continue
        url, resource = _observation(
            encounter, patient_ref, encounter_ref, name, name, _quantity(value, vocabulary.case_fields[name]["unit"])
        )
        if name in loinc:
            resource["code"]["coding"].append(loinc[name])
            resource["meta"] = {"profile": [VITAL_PROFILE]}
        entries.append((url, resource))
    systolic, diastolic = encounter.systolic_bp, encounter.diastolic_bp
    if systolic is not None or diastolic is not None:
        url, resource = _observation(encounter, patient_ref, encounter_ref, "blood_pressure", "blood_pressure", {})
        resource["code"] = {"coding": [coding("blood_pressure", "Blood pressure")], "text": "Blood pressure"}
        if "blood_pressure" in loinc:
            resource["code"]["coding"].append(loinc["blood_pressure"])
            resource["meta"] = {"profile": [VITAL_PROFILE]}
        resource["component"] = [
            {
                "code": {"coding": [coding(name), *([loinc[name]] if name in loinc else [])]},
                **_quantity(value, vocabulary.case_fields[name]["unit"]),
            }
            for name, value in (("systolic_bp", systolic), ("diastolic_bp", diastolic))
            if value is not None
        ]
        entries.append((url, resource))
    return entries


def _referral_category() -> dict:
    return {"coding": [{"system": system(), "code": "referral", "display": "Referral"}], "text": "Referral"}


def _service_request_referral(referral, *, encounter, patient_ref, encounter_ref, observation_urls) -> dict:
    vocabulary = get_knowledge_base().vocabulary
    standard = standard_codes()
    category = _referral_category()
    if "referral" in standard["categories"]:
        category["coding"].append(standard["categories"]["referral"])
    specialty_extra = (
        [standard["specialties"][referral.specialty]] if referral.specialty in standard["specialties"] else []
    )
    name = vocabulary.specialties[referral.specialty]
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"referral-{referral.pk}",
        # FHIR request status: open while issued or booked, completed with the specialist's answer,
        # revoked when cancelled or declined by the patient.
        "status": {"completed": "completed", "cancelled": "revoked", "declined_by_patient": "revoked"}.get(
            referral.status, "active"
        ),
        "intent": "order",
        "priority": PRIORITY[referral.urgency],
        "category": [category],
        "code": {"coding": [coding(referral.specialty, name)], "text": f"Referral to {name}"},
        "performerType": concept(referral.specialty, extra=specialty_extra, text=name),
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "authoredOn": (referral.issued_at or referral.created_at).isoformat(),
        "requester": {"display": encounter.clinician.get_full_name() or encounter.clinician.get_username()},
        "reasonCode": [{"text": referral.reason}],
    }
    if referral.question:
        resource["note"] = [{"text": referral.question}]
    triggers = referral.recommendation.triggered_by if referral.recommendation_id else []
    support = [{"reference": observation_urls[code]} for code in triggers if code in observation_urls]
    if support:
        resource["supportingInfo"] = support
    return resource


def _document_reference(
    document, *, resource_id, title, url, patient_ref, encounter_ref, related=None, final=True
) -> dict:
    type_coding = [{"system": system(), "code": title[0], "display": title[1]}]
    if title[0] in standard_codes()["documents"]:
        type_coding.append(standard_codes()["documents"][title[0]])
    resource = {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "status": "current",
        # A draft letter is preliminary: it may still change, and it is not what the specialist receives.
        "docStatus": "final" if final else "preliminary",
        "type": {"coding": type_coding, "text": title[1]},
        "subject": {"reference": patient_ref},
        "date": document.pdf_rendered_at.isoformat(),
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": url,
                    "title": title[1],
                    "creation": document.pdf_rendered_at.isoformat(),
                }
            }
        ],
        "context": {"encounter": [{"reference": encounter_ref}]},
    }
    if related:
        resource["context"]["related"] = [{"reference": related}]
    return resource


INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
FLAG_INTERPRETATION = {
    "low": ("L", "Low"),
    "normal": ("N", "Normal"),
    "high": ("H", "High"),
    "positive": ("POS", "Positive"),
    "negative": ("NEG", "Negative"),
    "present": ("DET", "Detected"),
    "absent": ("ND", "Not detected"),
}


# The reference as workups/engine/results.py writes it ("≥ 130 g/L", "≤ 5 mg/L", "4,0–11,0 ×10⁹/л"): the
# engine's own words, with a decimal comma in Russian.
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_BOUND = re.compile(rf"^\s*(≥|≤)\s*{_NUMBER}(?:\s|$)")
_RANGE = re.compile(rf"^\s*{_NUMBER}\s*[–-]\s*{_NUMBER}(?:\s|$)")


def _reference_bounds(reference: str, meta: dict) -> dict:
    """referenceRange low/high (UCUM Quantities) of a numeric reference. FHIR's bounds are inclusive, so
    "< 3.0 cm" (an aorta of 3.0 cm is an aneurysm) gets none and stays text only, as does a yes/no result's."""
    if meta["type"] != "numeric" or not meta.get("ucum"):
        return {}

    def quantity(text):
        number = float(text.replace(",", "."))
        return {
            "value": int(number) if number.is_integer() else number,
            "unit": meta["unit"],
            "system": UCUM,
            "code": meta["ucum"],
        }

    match = _RANGE.match(reference)
    if match:
        return {"low": quantity(match[1]), "high": quantity(match[2])}
    match = _BOUND.match(reference)
    if match:
        return {"low" if match[1] == "≥" else "high": quantity(match[2])}
    return {}


def _result_observation(result, *, encounter, patient_ref, encounter_ref, based_on=(), chain=None) -> tuple[str, dict]:
    """A result that came back, as a final Observation: laboratory, or imaging for a study's conclusion,
    with its value, the reference it was judged by and its interpretation. `chain`: (the first result of its
    code in the encounter, how many there have been): a value entered again replaces the one before under the
    same id, `amended`, so an EHR that holds the Observation reads the current value where it left it."""
    meta = get_knowledge_base().vocabulary.results[result.code]
    first, count = chain or (result.pk, 1)
    resource_id = f"result-{first}"
    url = full_url("Observation", resource_id)
    laboratory = result.code.startswith("res_") and result.code != "res_aorta_diameter_cm"
    code, display = FLAG_INTERPRETATION[result.flag]
    if meta["type"] == "numeric":
        value = {
            "valueQuantity": {"value": result.value_number, "unit": meta["unit"], "system": UCUM, "code": meta["ucum"]}
        }
    else:
        value = {"valueBoolean": bool(result.value_bool)}
    resource = {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "amended" if count > 1 else "final",
        "category": [
            {
                "coding": [
                    {"system": OBSERVATION_CATEGORY, "code": "laboratory" if laboratory else "imaging"},
                    coding("result", get_knowledge_base().vocabulary.groups["result"]),
                ]
            }
        ],
        "code": concept(result.code),
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "effectiveDateTime": (result.performed_on or encounter.visit_date).isoformat(),
        "issued": result.entered_at.isoformat(),
        **value,
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": code, "display": display}]}],
    }
    if result.reference:
        resource["referenceRange"] = [{"text": result.reference, **_reference_bounds(result.reference, meta)}]
    if result.note:
        resource["note"] = [{"text": result.note}]
    if based_on:
        resource["basedOn"] = [{"reference": reference} for reference in based_on]
    return url, resource


def _request_group(
    workup, *, items, patient_ref, encounter_ref, order_urls: dict, referral_urls: dict
) -> tuple[str, dict]:
    """The stored workup as a RequestGroup (`workup-<encounter>`, the encounter's current workup, whatever review
    stored it): its disposition, and each recommendation as an action in the workup's order, with its urgency
    and why. An action names the order it became (the ServiceRequest of a test accepted, even if taken back
    since, or of an issued letter); one never ordered is a contained ServiceRequest: a `proposal`, `draft` while
    pending and `revoked` when the GP declined it (with the reason), or an `order` still `draft` when the referral
    is accepted and its letter is not issued yet."""
    vocabulary = get_knowledge_base().vocabulary
    contained, actions = [], []

    def local(row, kind, code_concept, category, why) -> str:
        accepted = row.decision == "accepted"
        resource = {
            "resourceType": "ServiceRequest",
            "id": f"{kind}-{row.pk}",
            "status": "revoked" if row.decision == "declined" else "draft",
            "intent": "order" if accepted else "proposal",
            "priority": PRIORITY[row.urgency],
            "category": [category],
            "code": code_concept,
            "subject": {"reference": patient_ref},
            "encounter": {"reference": encounter_ref},
        }
        if why:
            resource["reasonCode"] = [{"text": why}]
        if row.decision == "declined" and row.decision_reason:
            resource["note"] = [{"text": row.decision_reason}]
        contained.append(resource)
        return f"#{kind}-{row.pk}"

    def action(title, why, row, code_concept, references):
        entry = {"title": title, "priority": PRIORITY[row.urgency], "code": [code_concept]}
        if why:
            entry["description"] = why
        if len(references) == 1:
            entry["resource"] = {"reference": references[0]}
        else:  # a test ordered as two (CRP and ESR): one sub-action per order
            entry["action"] = [{"resource": {"reference": reference}} for reference in references]
        actions.append(entry)

    for item in items:
        name = vocabulary.items[item.code]["name"]
        code_concept = concept(item.code, text=name)
        references = order_urls.get(item.code) or [
            local(item, "proposal-item", code_concept, concept(item.category), item.rationale)
        ]
        action(name, item.rationale, item, code_concept, references)
    for row in workup.referrals.all():
        name = vocabulary.specialties[row.specialty]
        code_concept = concept(row.specialty, text=name)
        issued = referral_urls.get(row.specialty) if row.decision == "accepted" else None
        category = _referral_category()
        references = [issued] if issued else [local(row, "proposal-referral", code_concept, category, row.reason)]
        action(name, row.reason, row, code_concept, references)
    resource = {
        "resourceType": "RequestGroup",
        "id": f"workup-{workup.encounter_id}",
        "identifier": [{"system": f"{system()}/workup", "value": str(workup.pk)}],
        "status": "active",
        "intent": "proposal",
        "priority": PRIORITY.get(workup.disposition, "routine"),
        "code": concept(workup.disposition, text=vocabulary.dispositions[workup.disposition]),
        "subject": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "authoredOn": workup.created_at.isoformat(),
        "note": [{"text": f"Knowledge base {workup.knowledge_base_version}"}],
    }
    if contained:
        resource["contained"] = contained
    if actions:
        resource["action"] = actions
    return full_url("RequestGroup", f"workup-{workup.encounter_id}"), resource


def encounter_bundle(
    *,
    encounter: Encounter,
    workup,
    referrals,
    requisition,
    absolute,
    results=(),
    leaflet=None,
    binary_url=None,
    item_rows=None,
    item_orders=(),
    result_chains=None,
) -> dict:
    """The encounter as a FHIR R4 collection Bundle. `absolute(path)` makes a link absolute;
    `binary_url(resource_id)`, when given, is where a document's PDF is (the FHIR server's Binary).
    `item_rows`: every test row of the encounter's workups, oldest first (the current workup's by default);
    `item_orders`: the tests ordered in the encounter (workups ItemOrder), revoked ones too;
    `result_chains`: {result code: (first result id, how many)} (each result its own by default)."""
    vocabulary = get_knowledge_base().vocabulary
    patient = encounter.patient
    patient_url, encounter_url = full_url("Patient", patient.pk), full_url("Encounter", encounter.pk)
    entries = [(patient_url, patient_resource(patient))]
    encounter_resource = {
        "resourceType": "Encounter",
        "id": str(encounter.pk),
        "status": "finished" if encounter.is_finalized else "in-progress",
        "class": {"system": V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": patient_url},
        "period": {"start": encounter.visit_date.isoformat()},
        "participant": [
            {"individual": {"display": encounter.clinician.get_full_name() or encounter.clinician.get_username()}}
        ],
    }
    if encounter.chief_complaint:
        encounter_resource["reasonCode"] = [{"text": encounter.chief_complaint}]
    entries.append((encounter_url, encounter_resource))

    observation_urls = {}
    for code, present in (encounter.findings or {}).items():
        if code in vocabulary.findings:
            url, resource = _observation(encounter, patient_url, encounter_url, code, code, {"valueBoolean": present})
            observation_urls[code] = url
            entries.append((url, resource))
    if patient.sex == "female" and encounter.pregnant is not None:
        entries.append(
            _observation(
                encounter, patient_url, encounter_url, "pregnant", "pregnant", {"valueBoolean": encounter.pregnant}
            )
        )
    entries.append(
        _observation(
            encounter,
            patient_url,
            encounter_url,
            "duration_days",
            "duration_days",
            _quantity(encounter.duration_days, "d"),
        )
    )
    entries += _vital_signs(encounter, patient_url, encounter_url)

    # The orders first, so a result can name the order it answers; listed after the results as before.
    orders, orders_of_code, every_order_of_code, asked_again = [], {}, {}, set()
    answered = {result.code for result in results}
    if workup is None:
        current = []
    elif item_rows is None:
        current = list(workup.items.all())
    else:
        current = sorted(
            (row for row in item_rows if row.workup_id == workup.pk), key=lambda row: (row.position, row.pk)
        )
    rows = current if item_rows is None else item_rows
    origin, code_of, last_row = {}, {}, {}
    for row in rows:
        origin.setdefault(row.code, row.pk)
        code_of[row.pk] = row.code
        last_row[row.code] = row
    current_of = {item.code: item for item in current}
    rounds = {}
    for order in sorted(item_orders, key=lambda order: order.round):
        rounds.setdefault(order.code, []).append(order)
    # Every order ever placed, revoked ones too (the EHR holds them): the current workup's tests in its order first.
    codes = [item.code for item in current if item.code in rounds]
    codes += sorted((code for code in rounds if code not in current_of and code in last_row), key=origin.get)
    by_round = {}  # {(code, round): [(request url, answering codes)]}
    for code in codes:
        row = current_of.get(code) or last_row[code]
        for order in rounds[code]:
            placed = []
            for _suffix, request, answering in _service_requests_item(
                # A revoked order says what it said when it was placed; the order in force, what the workup says.
                (order.item or row) if order.revoked_at is not None else row,
                order=order,
                encounter=encounter,
                patient_ref=patient_url,
                encounter_ref=encounter_url,
                observation_urls=observation_urls,
                answered=answered,
                origin=origin[code],
            ):
                request_url = full_url("ServiceRequest", f"{request['id']}")
                orders.append((request_url, request))
                if request["status"] != "revoked":
                    orders_of_code.setdefault(code, []).append((request_url, answering))
                placed.append((request_url, answering))
            by_round[code, order.round] = placed
            every_order_of_code[code] = placed  # the latest order of the test
        last = rounds[code][-1]
        declined_it = row.decision == "declined" and row.decided_at == last.revoked_at
        if last.revoked_at is not None and code in current_of and not declined_it:
            # Taken back, and proposed again (or declined again as a proposal): not the order revoked.
            asked_again.add(code)

    for result in results:
        code = code_of.get(result.item_id)
        # The order in force when the result was entered (a result is not moved to an order placed after it).
        in_force = [order for order in rounds.get(code, []) if order.ordered_at <= result.entered_at]
        of_code = (by_round.get((code, in_force[-1].round)) if in_force else None) or (
            orders_of_code.get(code) or every_order_of_code.get(code, [])
        )
        # The order of its own test when the item is split (ESR of CRP and ESR), else every order of the item.
        based_on = [url for url, codes in of_code if result.code in codes] or [url for url, _codes in of_code]
        entries.append(
            _result_observation(
                result,
                encounter=encounter,
                patient_ref=patient_url,
                encounter_ref=encounter_url,
                based_on=based_on,
                chain=(result_chains or {}).get(result.code),
            )
        )
    entries += orders
    for referral in referrals:
        request_url = full_url("ServiceRequest", f"referral-{referral.pk}")
        if referral.status != "draft":
            condition_url = None
            if referral.icd10:
                condition_url = full_url("Condition", f"referral-{referral.pk}")
                entries.append(
                    (condition_url, _condition(referral, patient_ref=patient_url, encounter_ref=encounter_url))
                )
            request = _service_request_referral(
                referral,
                encounter=encounter,
                patient_ref=patient_url,
                encounter_ref=encounter_url,
                observation_urls=observation_urls,
            )
            if condition_url:
                request["reasonReference"] = [{"reference": condition_url}]
            entries.append((request_url, request))
            entries.append(
                (
                    full_url("Task", f"referral-{referral.pk}"),
                    task_resource(
                        referral, request_ref=request_url, patient_ref=patient_url, encounter_ref=encounter_url
                    ),
                )
            )
        if referral.pdf_status == "ready":
            entries.append(
                (
                    full_url("DocumentReference", f"referral-{referral.pk}"),
                    _document_reference(
                        referral,
                        resource_id=f"referral-{referral.pk}",
                        title=("referral-letter", f"Referral letter to {vocabulary.specialties[referral.specialty]}"),
                        url=binary_url(f"referral-{referral.pk}")
                        if binary_url
                        else absolute(reverse("api-referral-pdf", args=[referral.pk])),
                        patient_ref=patient_url,
                        encounter_ref=encounter_url,
                        related=request_url if referral.status != "draft" else None,
                        final=referral.status != "draft",
                    ),
                )
            )
    if workup is not None:
        entries.append(
            _request_group(
                workup,
                items=current,
                patient_ref=patient_url,
                encounter_ref=encounter_url,
                # A test ordered names its latest order whatever became of it (active, on hold, revoked): the one
                # resource the EHR holds for it, not a second, contained copy. Unless, taken back, it is proposed
                # again: then it is a proposal, as a test never ordered.
                order_urls={
                    code: [url for url, _codes in urls]
                    for code, urls in every_order_of_code.items()
                    if code not in asked_again
                },
                referral_urls={
                    referral.specialty: full_url("ServiceRequest", f"referral-{referral.pk}")
                    for referral in referrals
                    if referral.status != "draft"
                },
            )
        )
    for kind, document, title, route in (
        ("requisition", requisition, "Laboratory and imaging requisition", "api-encounter-requisition-pdf"),
        ("leaflet", leaflet, "Patient leaflet", "api-encounter-leaflet-pdf"),
    ):
        if document is None or document.pdf_status != "ready":
            continue
        entries.append(
            (
                full_url("DocumentReference", f"{kind}-{document.pk}"),
                _document_reference(
                    document,
                    resource_id=f"{kind}-{document.pk}",
                    title=(kind, title),
                    url=binary_url(f"{kind}-{document.pk}")
                    if binary_url
                    else absolute(reverse(route, args=[encounter.pk])),
                    patient_ref=patient_url,
                    encounter_ref=encounter_url,
                ),
            )
        )

    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{system()}/Bundle/encounter-{encounter.pk}")),
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
    Bundle.model_validate(bundle)  # R4B models: a resource that does not validate never leaves
    return bundle


def code_system_resource() -> dict:
    """Every code of the vocabulary, as the FHIR CodeSystem the exports refer to."""
    kb = get_knowledge_base()
    vocabulary = kb.vocabulary
    concepts = [{"code": code, "display": meta["name"]} for code, meta in vocabulary.findings.items()]
    concepts += [{"code": code, "display": meta["name"]} for code, meta in vocabulary.items.items()]
    for table in (
        vocabulary.specialties,
        vocabulary.categories,
        vocabulary.urgencies,
        vocabulary.dispositions,
        vocabulary.warnings,
    ):
        concepts += [{"code": code, "display": name} for code, name in table.items()]
    concepts += [{"code": code, "display": meta["name"]} for code, meta in vocabulary.case_fields.items()]
    concepts += [{"code": code, "display": meta["name"]} for code, meta in vocabulary.results.items()]
    concepts += [{"code": code, "display": display} for code, display in EXTRA_CONCEPTS.items()]
    concepts += [{"code": code, "display": name} for code, name in vocabulary.groups.items()]
    seen, unique = set(), []
    for entry in concepts:
        if entry["code"] not in seen:
            seen.add(entry["code"])
            unique.append(entry)
    resource = {
        "resourceType": "CodeSystem",
        "url": system(),
        "version": kb.version,
        "name": "BackNumbnessWorkup",
        "title": "Back numbness workup vocabulary",
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
        "count": len(unique),
        "concept": unique,
    }
    CodeSystem.model_validate(resource)
    return resource


# Codes the FHIR and CDS Hooks layers use beyond the vocabulary.
EXTRA_CONCEPTS = {
    "referral": "Referral",
    "blood_pressure": "Blood pressure",
    "referral-letter": "Referral letter",
    "requisition": "Laboratory and imaging requisition",
    "leaflet": "Patient leaflet",
    "conclusion": "Specialist's conclusion",
    "override-clinical-judgement": "Clinical judgement: indicated for reasons not recorded here",
    "override-red-flag": "A red flag not recorded in the EHR",
    "override-specialist-request": "Requested by a specialist",
}


# -- import ------------------------------------------------------------------------------------------


# How deep a resource written to the server may nest its JSON (the API's limit for any JSON body): far deeper
# than any real resource (a Patient's extension within an extension is a handful of levels), and shallow
# enough that parsing and the models' recursive validation never come near Python's recursion limit.
MAX_DEPTH = JSON_MAX_DEPTH


class FhirInvalid(Exception):
    """A FHIR resource that cannot be accepted; `issues` are OperationOutcome issues."""

    def __init__(self, issues: list[dict], status: int = 400):
        super().__init__("; ".join(issue["diagnostics"] for issue in issues))
        self.issues, self.status = issues, status


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def _issue(diagnostics, expression=None, code="invalid"):
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return issue


def _too_deep(resource_type: str) -> dict:
    return _issue(f"The resource nests deeper than {MAX_DEPTH} levels.", resource_type, code="structure")


# What the record can hold, and what a FHIR string may never carry into it.
FIELD_LIMITS = {
    "given_name": 150,
    "family_name": 150,
    "middle_name": 150,
    "phone": 32,
    "identifier": 64,
    "identifier_system": 255,
}


def _modifier_extensions(value, path="Patient") -> list[str]:
    """Where the resource carries a modifierExtension: one the app does not understand changes the meaning
    of what it modifies, so the resource must be refused, never read without it."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "modifierExtension" and inner:
                found.append(f"{path}.modifierExtension")
            else:
                found += _modifier_extensions(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _modifier_extensions(inner, f"{path}[{index}]")
    return found


def _text_problems(fields: dict) -> list[dict]:
    expressions = {
        "given_name": "Patient.name.given",
        "family_name": "Patient.name.family",
        "middle_name": "Patient.name.given",
        "phone": "Patient.telecom.value",
        "identifier": "Patient.identifier.value",
        "identifier_system": "Patient.identifier.system",
    }
    issues = []
    for name, limit in FIELD_LIMITS.items():
        value = fields.get(name) or ""
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            issues.append(_issue("Must not contain control characters.", expressions[name]))
        elif len(value) > limit:
            issues.append(_issue(f"At most {limit} characters.", expressions[name]))
    return issues


def _national_identifiers(entries) -> tuple[dict, dict, list[dict]]:
    """SNILS and the OMS policy from the Patient's identifiers (RuCoreIG's systems or their synonyms):
    ({field: digits}, {field: the identifier's path}, issues). Each is validated as the record validates it
    (the SNILS checksum, the policy's 16 digits); an issue names the identifier."""
    found, where, issues = {}, {}, []
    for index, entry in enumerate(entries):
        field = field_of(entry.system)
        if field is None or not entry.value:
            continue
        path = f"Patient.identifier[{index}].value"
        label = f"{LABELS[field]} ({entry.system})"
        try:
            (validate_snils if field == "snils" else validate_oms_policy)(entry.value)
        except ValidationError as error:
            issues.append(_issue(f"{label}: " + " ".join(error.messages), path))
            continue
        digits = national_digits(field, entry.value)
        if digits is None:
            issues.append(_issue(f"{label}: {DIGITS[field]} digits are expected.", path))
        elif found.get(field, digits) != digits:
            issues.append(_issue(f"{label}: a patient has one; this is another.", path))
        else:
            found[field] = digits
            where.setdefault(field, f"Patient.identifier[{index}]")
    return found, where, issues


def _patient_fields(data) -> tuple[dict, tuple[str, str] | None, dict]:
    """Validate a FHIR R4 Patient and take what the record needs from it: (fields, the EHR's own identifier as
    (system, value), where each field came from for an error to name it). SNILS and the OMS policy are
    fields; a resource on RuCoreIG's Core_Patient profile gives the patronymic as its second given name."""
    if not isinstance(data, dict) or data.get("resourceType") != "Patient":
        raise FhirInvalid([_issue("Expected a FHIR Patient resource (resourceType Patient).", "Patient")])
    modifiers = _modifier_extensions(data)
    if modifiers:
        raise FhirInvalid(
            [
                _issue(
                    "An unknown modifierExtension changes the meaning of the resource: refused.",
                    path,
                    code="not-supported",
                )
                for path in modifiers
            ]
        )
    try:
        patient = FhirPatient.model_validate(data)
    except RecursionError:
        raise FhirInvalid([_too_deep("Patient")]) from None
    except PydanticValidationError as error:
        raise FhirInvalid(
            [
                _issue(
                    problem["msg"], "Patient." + ".".join(str(part) for part in problem["loc"] if part != "__root__")
                )
                for problem in error.errors()
            ]
        ) from None
    # fhir.resources coerces ("yes" becomes true); FHIR JSON does not, and fhirclient's R4 models check the
    # JSON types strictly, so a resource passes only when both agree it is valid.
    try:
        fhirclient_patient.Patient(data, strict=True)
    except RecursionError:
        raise FhirInvalid([_too_deep("Patient")]) from None
    except FHIRValidationError as error:
        raise FhirInvalid([_issue(" ".join(str(error).split()), "Patient." + _fhirclient_path(error))]) from None
    issues = []
    name = next((entry for entry in (patient.name or []) if entry.family and entry.given), None)
    if name is None:
        issues.append(_issue("A name with family and given parts is required.", "Patient.name"))
    if patient.gender not in ("female", "male"):
        issues.append(_issue("gender must be female or male (sex recorded for clinical purposes).", "Patient.gender"))
    if patient.birthDate is None:
        issues.append(_issue("birthDate is required.", "Patient.birthDate"))
    elif not isinstance(patient.birthDate, date):
        issues.append(_issue("birthDate must be a full date (YYYY-MM-DD).", "Patient.birthDate"))
    elif patient.birthDate > timezone.localdate() or patient.birthDate.year < 1900:
        issues.append(_issue("birthDate must be between 1900 and today.", "Patient.birthDate"))
    # An identifier is matched by system and value: without a system it would match anybody's number.
    for index, entry in enumerate(patient.identifier or []):
        if entry.value and not entry.system:
            issues.append(
                _issue(
                    "An identifier needs its system (the namespace of the value).",
                    f"Patient.identifier[{index}].system",
                )
            )
    # The EHR's own number: the first identifier with a system that is not SNILS or the OMS policy.
    identifier = next(
        (entry for entry in (patient.identifier or []) if entry.system and entry.value and not field_of(entry.system)),
        None,
    )
    national, where, national_issues = _national_identifiers(patient.identifier or [])
    issues += national_issues
    if issues:
        raise FhirInvalid(issues)
    phone = next((entry.value for entry in (patient.telecom or []) if entry.system == "phone" and entry.value), "")
    profiles = [str(profile).split("|")[0] for profile in ((patient.meta.profile or []) if patient.meta else [])]
    if CORE_PATIENT_PROFILE in profiles:
        # Core_Patient: "the first element is the given name, the second the patronymic".
        given, middle = name.given[0], " ".join(name.given[1:])
    else:
        given, middle = " ".join(name.given), None
    fields = {
        "given_name": given,
        "family_name": name.family,
        "birth_date": patient.birthDate,
        "sex": patient.gender,
        "phone": phone or "",
        **national,
    }
    if middle is not None:
        fields["middle_name"] = middle
    problems = _text_problems(
        {
            **fields,
            "identifier": identifier.value if identifier else "",
            "identifier_system": identifier.system if identifier else "",
        }
    )
    if problems:
        raise FhirInvalid(problems)
    return fields, ((identifier.system, identifier.value) if identifier else None), where


def _fhirclient_path(error) -> str:
    """The first property path fhirclient names (`active`, `name.0.family`)."""
    parts = []
    while getattr(error, "errors", None):
        if getattr(error, "path", None):
            parts.append(str(error.path))
        error = error.errors[0]
    if getattr(error, "path", None):
        parts.append(str(error.path))
    return ".".join(part for part in parts if part and part != "{root}")


def _service_problems(error: ValidationError, where: dict) -> list[dict]:
    """The record's refusal as OperationOutcome issues, each naming the element it came from."""
    return [
        _issue(" ".join(messages), where.get(field) or f"Patient.{PATIENT_EXPRESSIONS.get(field, field)}")
        for field, messages in error.message_dict.items()
    ]


@transaction.atomic
def patient_import(*, actor: Actor, data) -> tuple[Patient, bool]:
    """Create the patient in the actor's clinic, unless one with the same identifier is already there: the
    EHR's number (system and value), the SNILS or the OMS policy. Then that one is returned as it is (FHIR
    conditional create); identifiers naming two different patients are a 409. A POST never modifies a
    patient: the record of a finalized encounter keeps the name and sex it was seen with. Returns
    (patient, created). All or nothing."""
    fields, identifier, where = _patient_fields(data)
    keys = [(field, fields[field]) for field in ("snils", "oms_policy") if fields.get(field)]
    if identifier:
        system_, value = identifier
        fields |= {
            "identifier_system": "" if system_ == settings.FHIR_IDENTIFIER_SYSTEM else system_,
            "identifier": value,
        }
        keys.insert(0, ("identifier", fields["identifier_system"], value))
    matches = []
    if keys:
        match = reduce(operator.or_, (identifier_q_of_key(key) for key in keys))
        matches = list(Patient.objects.select_for_update().filter(match, clinic=actor.clinic).order_by("pk")[:2])
    if len(matches) > 1:
        raise FhirInvalid(
            [
                _issue(
                    "The identifiers (the EHR's number, SNILS, OMS policy) name different patients of this clinic.",
                    "Patient.identifier",
                    code="multiple-matches",
                )
            ],
            status=409,
        )
    if matches:
        existing = matches[0]
        audit_record(actor=actor, action="view", object_type="patient", object_id=existing.pk, patient_id=existing.pk)
        return existing, False
    try:
        return patient_create(actor=actor, **fields), True
    except ValidationError as error:
        raise FhirInvalid(_service_problems(error, where)) from None


def encounter_resources(*, encounter: Encounter, absolute, binary_url=None) -> dict:
    """The encounter's collection Bundle, as the export and the FHIR server both build it (no audit)."""
    from referrals.models import Leaflet, Referral, Requisition

    workup = encounter.workups.prefetch_related("referrals").order_by("-created_at", "-id").first()
    # Every test row of every workup, oldest first: an order keeps the id of its first row (ids stable through
    # reviews), and one taken back is still exported, revoked.
    item_rows = list(WorkupItem.objects.filter(workup__encounter=encounter).order_by("id"))
    item_orders = list(ItemOrder.objects.filter(encounter=encounter).select_related("item", "ordered_by"))
    referrals = list(
        Referral.objects.filter(encounter=encounter)
        .select_related("recommendation")
        .prefetch_related("events")
        .order_by("id")
    )
    requisition = Requisition.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    leaflet = Leaflet.objects.filter(encounter=encounter).order_by("-created_at", "-id").first()
    # The results that came back (the current value of each), also after the encounter was finalized.
    results = list(encounter.results.filter(superseded_at__isnull=True).order_by("code", "id"))
    result_chains = {
        row["code"]: (row["first"], row["count"])
        for row in encounter.results.values("code").annotate(first=Min("id"), count=Count("id")).order_by()
    }
    return encounter_bundle(
        encounter=encounter,
        workup=workup,
        referrals=referrals,
        requisition=requisition,
        absolute=absolute,
        results=results,
        leaflet=leaflet,
        binary_url=binary_url,
        item_rows=item_rows,
        item_orders=item_orders,
        result_chains=result_chains,
    )


def result_resource_id(result) -> str:
    """The Observation id of a result: that of the first result of its code in the encounter (a value entered
    again replaces it under the same id, amended)."""
    first = (
        type(result)
        .objects.filter(encounter_id=result.encounter_id, code=result.code)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    return f"result-{first}"


def encounter_export(*, actor: Actor, encounter: Encounter, absolute) -> dict:
    bundle = encounter_resources(encounter=encounter, absolute=absolute)
    audit_record(
        actor=actor, action="export", object_type="encounter", object_id=encounter.pk, patient_id=encounter.patient_id
    )
    return bundle


# -- the referral as a 360X closed-loop Task ---------------------------------------------------------

# HL7 360X (closed-loop referral): the Task's status follows the referral's lifecycle.
# https://build.fhir.org/ig/HL7/fhir-360x/ ; Task.status codes: https://hl7.org/fhir/R4/valueset-task-status.html
TASK_STATUS = {
    "issued": "requested",
    "booked": "accepted",
    "completed": "completed",
    "cancelled": "cancelled",
    "declined_by_patient": "rejected",
}
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def referral_version(referral) -> int:
    """The Task's versionId: 1 when issued, one more for each status change after (one ReferralEvent each,
    the issue included)."""
    return max(1, len(referral.events.all()))


def task_resource(referral, *, request_ref, patient_ref, encounter_ref) -> dict:
    events = list(referral.events.all())
    resource = {
        "resourceType": "Task",
        "id": f"referral-{referral.pk}",
        "meta": {"versionId": str(referral_version(referral))},
        "status": TASK_STATUS.get(referral.status, "requested"),
        "businessStatus": {"coding": [{"system": system(), "code": referral.status}], "text": referral.status},
        "intent": "order",
        "priority": PRIORITY[referral.urgency],
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill", "display": "Fulfill the focal request"}]},
        "focus": {"reference": request_ref},
        "for": {"reference": patient_ref},
        "encounter": {"reference": encounter_ref},
        "authoredOn": (referral.issued_at or referral.created_at).isoformat(),
        "lastModified": (events[-1].at if events else referral.issued_at or referral.created_at).isoformat(),
        "requester": {
            "display": referral.encounter.clinician.get_full_name() or referral.encounter.clinician.get_username()
        },
    }
    if referral.appointment_at:
        resource["restriction"] = {"period": {"start": referral.appointment_at.isoformat()}}
    if referral.status == "completed" and referral.conclusion:
        resource["output"] = [
            {"type": concept("conclusion", text="Specialist's conclusion"), "valueString": referral.conclusion}
        ]
    if referral.status in ("cancelled", "declined_by_patient") and referral.close_reason:
        resource["statusReason"] = {"text": referral.close_reason}
    return resource


# -- checks every write gets -------------------------------------------------------------------------

STRING_MAX = 10_000


def _string_problems(value, path) -> list[dict]:
    """A string with a control character (FHIR strings allow tab, CR and LF only) or over STRING_MAX."""
    issues = []
    if isinstance(value, str):
        if any((ord(char) < 32 and char not in "\t\r\n") or ord(char) == 127 for char in value):
            issues.append(_issue("Must not contain control characters.", path))
        elif len(value) > STRING_MAX:
            issues.append(_issue(f"At most {STRING_MAX} characters.", path))
    elif isinstance(value, dict):
        for key, inner in value.items():
            issues += _string_problems(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            issues += _string_problems(inner, f"{path}[{index}]")
    return issues


def write_checks(data, resource_type: str, model=None):
    """What every resource written to the server must pass: the right resourceType, no modifierExtension
    the app does not understand, no control characters or overlong strings, and the R4 model (R4B)."""
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FhirInvalid(
            [_issue(f"Expected a FHIR {resource_type} resource (resourceType {resource_type}).", resource_type)]
        )
    modifiers = _modifier_extensions(data, resource_type)
    if modifiers:
        raise FhirInvalid(
            [
                _issue(
                    "An unknown modifierExtension changes the meaning of the resource: refused.",
                    path,
                    code="not-supported",
                )
                for path in modifiers
            ]
        )
    problems = _string_problems(data, resource_type)
    if problems:
        raise FhirInvalid(problems)
    if model is not None:
        try:
            validated = model.model_validate(data)
        except RecursionError:
            raise FhirInvalid([_too_deep(resource_type)]) from None
        except PydanticValidationError as error:
            raise FhirInvalid(
                [
                    _issue(
                        problem["msg"],
                        resource_type + "." + ".".join(str(part) for part in problem["loc"] if part != "__root__"),
                    )
                    for problem in error.errors()
                ]
            ) from None
        _strict_json_types(data, resource_type)
        return validated
    return None


STRICT_MODELS = {"Observation": fhirclient_observation.Observation, "Task": fhirclient_task.Task}


def _strict_json_types(data: dict, resource_type: str) -> None:
    """fhir.resources coerces (a dateTime sent as the number 20261201 passes); FHIR JSON does not, and
    fhirclient's R4 models check the JSON types strictly, as the Patient path does."""
    strict = STRICT_MODELS.get(resource_type)
    if strict is None:
        return
    try:
        strict(data, strict=True)
    except RecursionError:
        raise FhirInvalid([_too_deep(resource_type)]) from None
    except FHIRValidationError as error:
        path = _fhirclient_path(error)
        raise FhirInvalid(
            [_issue(" ".join(str(error).split()), f"{resource_type}.{path}" if path else resource_type)]
        ) from None


def patient_update_from_fhir(*, actor: Actor, patient: Patient, data) -> Patient:
    """PUT: the patient as the Patient resource says, for what the resource carries (names, sex, birth
    date, phone, the EHR's identifier, SNILS and the OMS policy, the patronymic on the Core_Patient profile);
    what it does not carry (a SNILS or policy left out, the patronymic without the profile, the address,
    the insurer) is kept. A change the patient's encounters make impossible, or a SNILS another patient has,
    is the service's ValidationError (FhirInvalid here)."""
    from clinic.services import patient_update

    fields, identifier, where = _patient_fields(data)
    if identifier:
        system_, value = identifier
        fields |= {
            "identifier_system": "" if system_ == settings.FHIR_IDENTIFIER_SYSTEM else system_,
            "identifier": value,
        }
    else:
        fields |= {"identifier_system": "", "identifier": ""}
    try:
        return patient_update(actor=actor, patient=patient, **fields)
    except ValidationError as error:
        raise FhirInvalid(_service_problems(error, where)) from None


PATIENT_EXPRESSIONS = {
    "given_name": "name.given",
    "family_name": "name.family",
    "birth_date": "birthDate",
    "sex": "gender",
    "phone": "telecom",
    "middle_name": "name.given",
    "identifier": "identifier",
    "identifier_system": "identifier.system",
    "snils": "identifier",
    "oms_policy": "identifier",
}


# -- a lab result posted as an Observation -----------------------------------------------------------

# A coded true/false answer: SNOMED CT 10828004 Positive comes from ehr/terminology_in.yaml (per code);
# 260385009 is SNOMED CT "Negative (qualifier value)", the sibling of 10828004 in the qualifier hierarchy
# (https://browser.ihtsdotools.org/?perspective=full&conceptId1=260385009).
SNOMED_NEGATIVE = "260385009"
RESULT_OBSERVATION_STATUSES = {"final", "amended", "corrected", "preliminary"}


def result_loinc_table() -> dict:
    """LOINC code -> terminology entry, for the results only (ehr/terminology_in.yaml, the CDS Hooks
    engineer's table, each code with its source): the same mapping in, whether read from a chart or posted."""
    from ehr.terminology_in import terminology_in

    results = get_knowledge_base().vocabulary.results
    return {code: entry for code, entry in terminology_in()["observations"].items() if entry["target"] in results}


def local_reference_id(text: str, resource_type: str, base: str | None):
    """The id of the `resource_type` that `text` names on this server: "Patient/12", or a full URL under `base` (this
    server's FHIR base; its scheme and host compared without case, a default port and a trailing slash ignored).
    None for anything else: another server's Patient/12 is another patient."""
    from urllib.parse import urlsplit

    text = text.strip().rstrip("/")
    if "://" in text:
        if not base:
            return None

        def origin(url):
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = (
                parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(parts.scheme.lower())) else None
            )
            return parts.scheme.lower(), host, port, parts.path

        try:
            scheme, host, port, path = origin(text)
            base_scheme, base_host, base_port, base_path = origin(base)
        except ValueError:  # a port that is not a number
            return None
        prefix = base_path.rstrip("/") + "/"
        if (scheme, host, port) != (base_scheme, base_host, base_port) or not path.startswith(prefix):
            return None
        text = path[len(prefix) :]
    kind, _, resource_id = text.partition("/")
    return whole_number(resource_id) if kind == resource_type else None


def _reference_id(reference, resource_type: str, base: str | None):
    """The id in {"reference": "Patient/12"} (or this server's full URL of it); None when it is not one of ours."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    return local_reference_id(reference["reference"], resource_type, base)


def _effective_date(effective, time_zone: str):
    """The calendar day of an effectiveDateTime: a date as given; an instant (with its offset) on the clinic's
    calendar, so 2026-11-30T22:30:00Z is 1 December in Moscow. None when it gives no full date."""
    from zoneinfo import ZoneInfo

    from django.utils.dateparse import parse_datetime

    if not isinstance(effective, str) or len(effective) < 10:
        return None
    try:
        if len(effective) == 10:
            return date.fromisoformat(effective)
        moment = parse_datetime(effective)
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.date()  # FHIR requires the offset with a time; without one, the time is read as local
    return moment.astimezone(ZoneInfo(time_zone or settings.TIME_ZONE)).date()


def observation_result_fields(data, *, time_zone: str = "", base: str | None = None) -> dict:
    """Validate a posted lab-result Observation; returns {"patient_id", "encounter_id", "code", "value",
    "performed_on", "note"} in the app's terms, or raises FhirInvalid naming the element. An instant is
    dated in `time_zone` (the clinic's); `base`, this server's FHIR base, is where a full URL in subject or
    encounter must point (another server's Patient/12 is not this clinic's patient 12)."""
    from fhir.resources.R4B.observation import Observation

    from ehr.terminology_in import LOINC, SNOMED

    write_checks(data, "Observation", Observation)
    issues = []
    if data.get("status") not in RESULT_OBSERVATION_STATUSES:
        issues.append(_issue("status must be final, amended, corrected or preliminary.", "Observation.status"))
    table = result_loinc_table()
    loinc = [
        coding.get("code")
        for coding in (data.get("code") or {}).get("coding") or []
        if isinstance(coding, dict) and coding.get("system") == LOINC
    ]
    entry = next((table[code] for code in loinc if code in table), None)
    if entry is None:
        issues.append(
            _issue(
                "code must carry a LOINC coding of a supported result: " + ", ".join(sorted(table)) + ".",
                "Observation.code",
                code="code-invalid",
            )
        )
    patient_id = _reference_id(data.get("subject"), "Patient", base)
    if patient_id is None:
        issues.append(_issue("subject must reference a Patient of this server (Patient/<id>).", "Observation.subject"))
    encounter_id = _reference_id(data.get("encounter"), "Encounter", base)
    if encounter_id is None:
        issues.append(
            _issue(
                "encounter must reference the Encounter of this server that ordered the test (Encounter/<id>).",
                "Observation.encounter",
            )
        )
    performed_on = None
    effective = data.get("effectiveDateTime")
    if effective is not None:
        performed_on = _effective_date(effective, time_zone)
        if performed_on is None:
            issues.append(
                _issue(
                    "effectiveDateTime must be a string giving a full date (YYYY-MM-DD, or a date and time with "
                    "its offset).",
                    "Observation.effectiveDateTime",
                )
            )
    value = None
    if entry is not None:
        numeric = get_knowledge_base().vocabulary.results[entry["target"]]["type"] == "numeric"
        if numeric:
            quantity = data.get("valueQuantity")
            if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), (int, float)):
                issues.append(
                    _issue("A valueQuantity (with a UCUM unit) is required for this code.", "Observation.valueQuantity")
                )
            else:
                unit = quantity.get("code") or quantity.get("unit")
                factor = entry["units"].get(unit)
                if quantity.get("code") and quantity.get("system") not in (None, UCUM):
                    issues.append(
                        _issue(
                            "The unit must be UCUM (system http://unitsofmeasure.org).",
                            "Observation.valueQuantity.system",
                        )
                    )
                elif not isinstance(factor, (int, float)):
                    issues.append(
                        _issue(
                            f"Unit {unit or '(none)'} is not understood for LOINC {entry['code']}: use "
                            + " or ".join(entry["units"])
                            + ".",
                            "Observation.valueQuantity.code",
                        )
                    )
                else:
                    value = round(float(quantity["value"]) * factor, 6)
        else:
            if isinstance(data.get("valueBoolean"), bool):
                value = data["valueBoolean"]
            else:
                for coding in (data.get("valueCodeableConcept") or {}).get("coding") or []:
                    if isinstance(coding, dict) and coding.get("system") == SNOMED:
                        if coding.get("code") in entry.get("positive", ()):
                            value = True
                        elif coding.get("code") == SNOMED_NEGATIVE:
                            value = False
                if value is None:
                    issues.append(
                        _issue(
                            "valueBoolean, or valueCodeableConcept SNOMED CT 10828004 (Positive) or "
                            f"{SNOMED_NEGATIVE} (Negative), is required for this code.",
                            "Observation.value[x]",
                        )
                    )
    if issues:
        raise FhirInvalid(issues)
    notes = [note.get("text") for note in data.get("note") or [] if isinstance(note, dict) and note.get("text")]
    return {
        "patient_id": patient_id,
        "encounter_id": encounter_id,
        "code": entry["target"],
        "value": value,
        "performed_on": performed_on,
        "note": "\n".join(notes),
    }


RESULT_EXPRESSIONS = {
    "code": "Observation.code",
    "value": "Observation.value[x]",
    "performed_on": "Observation.effectiveDateTime",
    "note": "Observation.note",
}


def result_from_fhir(*, actor: Actor, encounter: Encounter, fields: dict):
    from workups.services import result_enter

    try:
        return result_enter(
            actor=actor,
            encounter=encounter,
            code=fields["code"],
            value=fields["value"],
            performed_on=fields["performed_on"],
            note=fields["note"],
        )
    except ValidationError as error:
        raise FhirInvalid(
            [
                _issue(" ".join(messages), RESULT_EXPRESSIONS.get(field, "Observation"))
                for field, messages in error.message_dict.items()
            ]
        ) from None


# -- the specialist's outcome, as an update of the Task ----------------------------------------------

TASK_TO_REFERRAL = {value: key for key, value in TASK_STATUS.items()}


def _instant(value):
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None or moment.tzinfo is None:
        return None
    return moment


def task_change(data, referral) -> dict | None:
    """What a PUT Task asks of the referral: {"status", "appointment_at", "conclusion", "reason"} for
    referrals.services.referral_status_change, or None when it changes nothing. FhirInvalid otherwise."""
    from fhir.resources.R4B.task import Task

    write_checks(data, "Task", Task)
    status = TASK_TO_REFERRAL.get(data.get("status"))
    if status is None:
        raise FhirInvalid(
            [_issue("status must be one of " + ", ".join(TASK_TO_REFERRAL) + ".", "Task.status", code="not-supported")]
        )
    focus = (data.get("focus") or {}).get("reference", "")
    if focus and not focus.rstrip("/").endswith(f"ServiceRequest/referral-{referral.pk}"):
        raise FhirInvalid(
            [_issue("The focus of a referral's Task is its ServiceRequest and cannot change.", "Task.focus")]
        )
    patient = (data.get("for") or {}).get("reference", "")
    if patient and not patient.rstrip("/").endswith(f"Patient/{referral.encounter.patient_id}"):
        raise FhirInvalid([_issue("The patient of a referral's Task cannot change.", "Task.for")])
    period = (data.get("restriction") or {}).get("period") or {}
    appointment = None
    if period.get("start") is not None:
        appointment = _instant(period["start"])
        if appointment is None:
            raise FhirInvalid(
                [_issue("The appointment must be a dateTime with a time zone.", "Task.restriction.period.start")]
            )
    conclusion = "\n".join(
        output["valueString"]
        for output in data.get("output") or []
        if isinstance(output, dict) and isinstance(output.get("valueString"), str)
    )
    reason = (data.get("statusReason") or {}).get("text") or ""
    if status == referral.status and (status != "booked" or appointment == referral.appointment_at):
        return None
    change = {"status": status}
    if status == "booked":
        change["appointment_at"] = appointment
    elif status == "completed":
        change["conclusion"] = conclusion
        if appointment is not None and appointment != referral.appointment_at:
            change["appointment_at"] = appointment
    elif status in ("cancelled", "declined_by_patient"):
        change["reason"] = reason
    return change


TASK_EXPRESSIONS = {
    "status": "Task.status",
    "appointment_at": "Task.restriction.period.start",
    "conclusion": "Task.output.valueString",
    "reason": "Task.statusReason.text",
    "conclusion_pdf": "Task.output",
}
