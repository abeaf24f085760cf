"""Words for the codes the pages show (urgency, decision, status, sex, disposition), in the request's language.

The models' choice labels are English-only and owned elsewhere; the pages translate the code here, so a
badge reads "срочно" in Russian and "urgent" in English. Unknown codes are shown as they are.
"""

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import pgettext_lazy

from clinic.text import lower_first

register = template.Library()

URGENCY = {
    "emergency": pgettext_lazy("urgency", "emergency"),
    "urgent": pgettext_lazy("urgency", "urgent"),
    "routine": pgettext_lazy("urgency", "routine"),
}
DECISION = {
    "pending": pgettext_lazy("decision", "pending"),
    "accepted": pgettext_lazy("decision", "accepted"),
    "declined": pgettext_lazy("decision", "declined"),
}
# An encounter's or a referral letter's state.
STATUS = {
    "draft": pgettext_lazy("record status", "draft"),
    "finalized": pgettext_lazy("record status", "finalized"),
    "issued": pgettext_lazy("record status", "issued"),
    # A referral after issue (the loop: GUIDANCE 7).
    "booked": pgettext_lazy("record status", "booked"),
    "completed": pgettext_lazy("record status", "completed"),
    "cancelled": pgettext_lazy("record status", "cancelled"),
    "declined_by_patient": pgettext_lazy("record status", "declined by the patient"),
}
# A result's interpretation: a word always, so an abnormal value never stands out by colour alone.
FLAG = {
    "low": pgettext_lazy("result flag", "low"),
    "normal": pgettext_lazy("result flag", "normal"),
    "high": pgettext_lazy("result flag", "high"),
    "positive": pgettext_lazy("result flag", "positive"),
    "negative": pgettext_lazy("result flag", "negative"),
    "present": pgettext_lazy("result flag", "present"),
    "absent": pgettext_lazy("result flag", "absent"),
}
FLAG_ICON = {"low": "▼", "high": "▲", "positive": "⊕", "present": "⊕", "normal": "✓", "negative": "–", "absent": "–"}
DISPOSITION = {
    "emergency": pgettext_lazy("disposition", "emergency"),
    "urgent": pgettext_lazy("disposition", "urgent"),
    "routine": pgettext_lazy("disposition", "routine"),
    "observe": pgettext_lazy("disposition", "observe"),
}
SEX = {
    "female": pgettext_lazy("sex", "Female"),
    "male": pgettext_lazy("sex", "Male"),
}


def _label(table, code):
    return table.get(code, code)


@register.filter
def urgency_label(code):
    return _label(URGENCY, code)


@register.filter
def decision_label(code):
    return _label(DECISION, code)


@register.filter
def status_label(code):
    return _label(STATUS, code)


@register.filter
def flag_label(code):
    return _label(FLAG, code)


@register.filter
def flag_icon(code):
    return FLAG_ICON.get(code, "")


@register.filter
def disposition_label(code):
    return _label(DISPOSITION, code)


@register.filter
def sex_label(code):
    return _label(SEX, code)


@register.filter
def snils(value):
    """A SNILS as it is written: 112-233-445 95."""
    from clinic.identifiers import format_snils

    return format_snils(value or "")


@register.filter
def weeks(days):
    """Whole weeks in a duration of days: 21 -> 3, shown as "3 недели" beside "21 день"."""
    try:
        return int(days) // 7
    except (TypeError, ValueError):
        return 0


@register.filter
def lowerfirst(text):
    """A name continuing a sentence (clinic.text.lower_first)."""
    return lower_first(text)


@register.filter
def measured(value):
    """A measured value as few decimals as it has (at most 3), in the reader's number format: 14.5 reads
    "14,5" in Russian, never "14,500", which a reader takes for fourteen thousand five hundred."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    decimals = f"{number:.3f}".rstrip("0").partition(".")[2]
    return floatformat(number, f"{len(decimals)}g")


@register.filter
def sources_of(rows):
    """The sources of several rows (items not indicated for one reason), each once, in the order first cited."""
    return list(dict.fromkeys(source for row in rows for source in row.get("sources", ())))
