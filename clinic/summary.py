"""An encounter's findings in words, by section: for the record, the print view and letters."""
from clinic.forms import SECTIONS
from workups.engine import get_knowledge_base


def findings_summary(encounter) -> list[dict]:
    """[{title, present: [names], absent: [negative phrases]}] in clinical order, empty sections left out."""
    vocabulary = get_knowledge_base().vocabulary
    findings = encounter.findings or {}
    notes = encounter.notes or {}
    sections = []
    for key, title, group in SECTIONS:
        if not group:
            continue
        codes = vocabulary.findings_in_group(group)
        present = [vocabulary.findings[code]["name"] for code in codes if findings.get(code) is True]
        absent = [vocabulary.findings[code]["negative"] for code in codes if findings.get(code) is False]
        if present or absent or notes.get(key):
            sections.append({"key": key, "title": title, "present": present, "absent": absent, "note": notes.get(key, "")})
    return sections


def vital_signs(encounter) -> list[tuple[str, str]]:
    rows = []
    if encounter.temperature_c is not None:
        rows.append(("Temperature", f"{encounter.temperature_c:.1f} °C"))
    if encounter.heart_rate is not None:
        rows.append(("Heart rate", f"{encounter.heart_rate} /min"))
    if encounter.systolic_bp is not None and encounter.diastolic_bp is not None:
        rows.append(("Blood pressure", f"{encounter.systolic_bp}/{encounter.diastolic_bp} mmHg"))
    elif encounter.systolic_bp is not None:
        rows.append(("Systolic blood pressure", f"{encounter.systolic_bp} mmHg"))
    if encounter.resp_rate is not None:
        rows.append(("Respiratory rate", f"{encounter.resp_rate} /min"))
    if encounter.spo2 is not None:
        rows.append(("SpO₂", f"{encounter.spo2} %"))
    return rows
