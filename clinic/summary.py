"""An encounter's findings in words, by section, in the request's language, and what the record shows beside
them (red flags not asked, a subfebrile temperature against a No to fever, a fever the temperature overrode):
for the record and the print view in the browser (the PDF documents have their own, in the document's language:
referrals.documents)."""

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from clinic.forms import SECTIONS, subfebrile_without_fever
from clinic.text import lower_first
from clinic.vocabulary import current_kb

FEVER = "rf_fever"


def fever_overridden(temperature, fever_answer) -> bool:
    """Fever answered No (False or "no") while the temperature recorded reaches the knowledge base's fever
    threshold: the engine counts fever as present whatever was answered, so the GP is told, and no document
    prints "No fever"."""
    if temperature is None or fever_answer not in (False, "no"):
        return False
    try:
        return float(temperature) >= current_kb().fever_threshold_c
    except (TypeError, ValueError):
        return False


def findings_as_read(encounter) -> dict:
    """The encounter's findings as the engine reads them (workups.engine.evaluate._effective_findings): fever
    present when the temperature recorded reaches the threshold. What a summary, letter or leaflet states, so
    none prints a negative the engine overrode."""
    findings = dict(encounter.findings or {})
    temperature = encounter.temperature_c
    if temperature is not None and float(temperature) >= current_kb().fever_threshold_c:
        findings[FEVER] = True
    return findings


def findings_summary(encounter) -> list[dict]:
    """[{title, present: [names], absent: [negative phrases]}] in clinical order, empty sections left out: the
    findings as the engine read them (findings_as_read)."""
    vocabulary = current_kb().vocabulary
    findings = findings_as_read(encounter)
    notes = encounter.notes or {}
    sections = []
    for key, title, group in SECTIONS:
        if not group:
            continue
        codes = vocabulary.findings_in_group(group)
        present = [vocabulary.findings[code]["name"] for code in codes if findings.get(code) is True]
        # One sentence: «Учащённое мочеиспускание; болезненное мочеиспускание».
        present = present[:1] + [lower_first(name) for name in present[1:]]
        absent = [vocabulary.findings[code]["negative"] for code in codes if findings.get(code) is False]
        if present or absent or notes.get(key):
            sections.append(
                {"key": key, "title": title, "present": present, "absent": absent, "note": notes.get(key, "")}
            )
    return sections


def vital_signs(encounter) -> list[tuple[str, str]]:
    """(name, value with unit); a temperature has the locale's decimal separator (37,8 in Russian)."""
    rows = []
    if encounter.temperature_c is not None:
        rows.append((_("Temperature"), _("%(value)s °C") % {"value": number_format(encounter.temperature_c, 1)}))
    if encounter.heart_rate is not None:
        rows.append((_("Heart rate"), pgettext("heart rate", "%(value)s /min") % {"value": encounter.heart_rate}))
    if encounter.systolic_bp is not None and encounter.diastolic_bp is not None:
        rows.append(
            (
                _("Blood pressure"),
                _("%(systolic)s/%(diastolic)s mmHg")
                % {"systolic": encounter.systolic_bp, "diastolic": encounter.diastolic_bp},
            )
        )
    elif encounter.systolic_bp is not None:
        rows.append((_("Systolic blood pressure"), _("%(value)s mmHg") % {"value": encounter.systolic_bp}))
    if encounter.resp_rate is not None:
        rows.append((_("Respiratory rate"), _("%(value)s /min") % {"value": encounter.resp_rate}))
    if encounter.spo2 is not None:
        rows.append(("SpO₂", f"{encounter.spo2} %"))
    return rows


def record_context(encounter) -> dict:
    """What the record (finalized page, print view) shows beside the findings: red flags not asked, and a
    subfebrile temperature recorded against a No to fever."""
    kb = current_kb()
    findings = encounter.findings or {}
    applicable = [
        code for code in kb.red_flags if kb.vocabulary.findings[code].get("sex") in (None, encounter.patient.sex)
    ]
    return {
        "not_asked": [kb.vocabulary.findings[code]["name"] for code in applicable if code not in findings],
        "has_red_flags_section": any(code in findings for code in kb.vocabulary.findings_in_group("rf"))
        or bool((encounter.notes or {}).get("red_flags")),
        "subfebrile": subfebrile_without_fever(encounter.temperature_c, findings.get(FEVER)),
        # The temperature when it overrides a No to fever (the engine counts fever as present), else None.
        "fever_overridden": encounter.temperature_c
        if fever_overridden(encounter.temperature_c, findings.get(FEVER))
        else None,
    }
