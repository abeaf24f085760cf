"""What goes into a referral letter and a requisition: the templates' context, built from the record."""
from __future__ import annotations

from django.utils import timezone

from clinic.summary import findings_summary, vital_signs
from workups.engine import get_knowledge_base

URGENCY_TEXT = {
    "emergency": "EMERGENCY: please see today",
    "urgent": "URGENT: please see within days",
    "routine": "Routine referral",
}
TEST_STATUS = {"accepted": "ordered", "pending": "recommended, not yet ordered", "declined": "declined"}
CATEGORY_TITLES = [("lab", "Laboratory"), ("functional", "Functional diagnostics"), ("imaging", "Imaging")]


def _pregnancy_text(encounter) -> str:
    if encounter.patient.sex != "female":
        return ""
    return {True: "Pregnant.", False: "Not pregnant."}.get(encounter.pregnant, "Pregnancy status not recorded.")


def _gp(user):
    membership = getattr(user, "membership", None)
    return (user.get_full_name() or user.get_username(), membership.title if membership else "General practitioner")


def _common(encounter, *, date=None) -> dict:
    gp_name, gp_title = _gp(encounter.clinician)
    return {
        "clinic": encounter.clinic,
        "patient": encounter.patient,
        "encounter": encounter,
        "age": encounter.age,
        "date": date or timezone.localdate(),
        "gp_name": gp_name,
        "gp_title": gp_title,
    }


def letter_context(referral, *, workup) -> dict:
    encounter = referral.encounter
    vocabulary = get_knowledge_base().vocabulary
    summary = findings_summary(encounter)
    findings = encounter.findings or {}
    red_flags = [vocabulary.findings[code]["negative"] for code in get_knowledge_base().red_flags
                 if findings.get(code) is False]
    other_negatives = [phrase for section in summary if section["key"] != "red_flags" for phrase in section["absent"]]
    tests = []
    if workup is not None:
        for item in workup.items.all():
            status = TEST_STATUS[item.decision]
            if item.decision == "declined" and item.decision_reason:
                status = f"declined: {item.decision_reason}"
            tests.append({"name": vocabulary.items[item.code]["name"], "urgency": item.urgency, "status": status})
    return {
        **_common(encounter, date=(referral.issued_at or referral.created_at or timezone.now()).date()),
        "referral": referral,
        "specialty_name": vocabulary.specialties.get(referral.specialty, referral.specialty),
        "urgency_text": URGENCY_TEXT.get(referral.urgency, referral.urgency),
        "positives": [section for section in summary if section["present"]],
        "negatives": red_flags + other_negatives,
        "notes": [{"title": section["title"], "text": section["note"]} for section in summary if section["note"]],
        "pregnancy_text": _pregnancy_text(encounter),
        "vitals": vital_signs(encounter),
        "tests": tests,
        "kb_version": workup.knowledge_base_version if workup else get_knowledge_base().version,
    }


def requisition_context(requisition) -> dict:
    encounter = requisition.encounter
    vocabulary = get_knowledge_base().vocabulary
    accepted = [item for item in requisition.workup.items.all() if item.decision == "accepted"]
    groups = []
    for key, title in CATEGORY_TITLES:
        tests = [{"name": vocabulary.items[item.code]["name"], "urgency": item.urgency, "rationale": item.rationale}
                 for item in accepted if item.category == key]
        if tests:
            groups.append({"key": key, "title": title, "tests": tests})
    female = encounter.patient.sex == "female"
    return {
        **_common(encounter, date=requisition.created_at.date() if requisition.created_at else None),
        "groups": groups,
        "imaging_requested": any(group["key"] == "imaging" for group in groups),
        "pregnant": female and encounter.pregnant is True,
        "pregnancy_status": ("pregnant" if encounter.pregnant else "not pregnant" if encounter.pregnant is False
                             else "not recorded: confirm before ionising imaging") if female else "not applicable (male)",
    }
