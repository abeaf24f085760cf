"""Interpreting a result against its reference (GUIDANCE section 6). Pure: no database, no clock.

A result code's `reference` in the vocabulary is one of:

    low_below: N | {male: N, female: N, pregnant: N}   low when the value is below N
    high_above: N                                     high when above N
    range: [LOW, HIGH]                                low below LOW, high above HIGH
    high_at_least: N                                  high at N or more (an aortic diameter)
    esr: westergren                                   high above age/2 (men) or (age + 10)/2 (women)
    positive: true                                    a true/false test: positive / negative
    present: true                                     an imaging, Doppler or ECG conclusion: present / absent
"""

from __future__ import annotations

REFERENCE_KINDS = ("low_below", "high_above", "range", "high_at_least", "esr", "positive", "present")


def _number_text(value: float, language: str) -> str:
    # A limit written with a decimal (3.0 cm, 4.0 ×10⁹/L) keeps it; a whole number (130 g/L) does not.
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return text.replace(".", ",") if language == "ru" else text


def _threshold(limit, *, sex: str, pregnant: bool | None) -> float:
    if isinstance(limit, dict):
        if pregnant and "pregnant" in limit:
            return limit["pregnant"]
        return limit[sex]
    return limit


def interpret(meta: dict, value, *, sex: str, age: int, pregnant: bool | None, language: str) -> tuple[str, str]:
    """(flag, reference as the GP reads it) for one result."""
    reference = meta["reference"]
    kind, limit = next(iter(reference.items()))
    unit = meta.get("unit", "")
    words = meta["words"]
    if kind == "positive":
        return ("positive" if value else "negative"), words["negative"]
    if kind == "present":
        return ("present" if value else "absent"), words["absent"]

    def show(number):
        return f"{_number_text(number, language)} {unit}".strip()

    if kind == "low_below":
        threshold = _threshold(limit, sex=sex, pregnant=pregnant)
        return ("low" if value < threshold else "normal"), f"≥ {show(threshold)}"
    if kind == "high_above":
        return ("high" if value > limit else "normal"), f"≤ {show(limit)}"
    if kind == "range":
        low, high = limit
        flag = "low" if value < low else "high" if value > high else "normal"
        return flag, f"{_number_text(low, language)}–{show(high)}"
    if kind == "high_at_least":
        return ("high" if value >= limit else "normal"), f"< {show(limit)}"
    # The Westergren ESR's upper limit grows with age (Miller, Green, Robinson, BMJ 1983).
    upper = age / 2 if sex == "male" else (age + 10) / 2
    return ("high" if value > upper else "normal"), f"≤ {show(round(upper, 1))}"
