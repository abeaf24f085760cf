"""An encounter's findings in words, by section, in the request's language: for the record and the print
view in the browser (the PDF documents have their own, in the document's language: referrals.documents)."""

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from clinic.forms import SECTIONS
from clinic.vocabulary import current_kb


def findings_summary(encounter) -> list[dict]:
    """[{title, present: [names], absent: [negative phrases]}] in clinical order, empty sections left out."""
    vocabulary = current_kb().vocabulary
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
