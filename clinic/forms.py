"""Browser forms. Typing is the form's job; clinical validity is checked by the same
serializers the API uses, so a case refused over the API is refused here too."""

from __future__ import annotations

import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from clinic.identifiers import digits_only, validate_oms_policy, validate_snils
from clinic.models import NOTE_SECTIONS, Patient
from clinic.vocabulary import current_kb

TRI_STATE = [("", _("Not recorded")), ("yes", _("Yes")), ("no", _("No"))]

# The order of Sex.choices (female first); the labels in the request's language.
SEX_CHOICES = [("female", pgettext_lazy("sex", "Female")), ("male", pgettext_lazy("sex", "Male"))]

# The encounter form's sections, in clinical order: (key, title, finding group, note section).
SECTIONS = [
    ("location", _("Where the numbness is"), "loc"),
    ("pattern", _("Pattern and duration"), "pattern"),
    ("symptoms", _("Symptoms"), "sx"),
    ("red_flags", _("Red-flag screen"), "rf"),
    ("history", _("History"), "hx"),
    ("examination", _("Examination"), "ex"),
    ("vitals", _("Vital signs"), None),
]
LOCATION_ERROR = _("Record where the numbness is: answer Yes to at least one place.")
# A temperature above normal but below fever (°C): worth seeing beside a "No" to the fever red flag.
SUBFEBRILE_LOW, FEVER_FROM = 37.1, 38.0
VITAL_FIELDS = ("temperature_c", "heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")


def _serializer_errors_to_form(form: forms.Form, errors: dict) -> None:
    for field, problems in errors.items():
        if field == "findings" and isinstance(problems, dict):
            for code, messages in problems.items():
                target = f"f_{code}" if f"f_{code}" in form.fields else None
                if code == "loc":
                    # Shown in the location section (and linked from the error summary), not as a list of codes.
                    form.location_error = str(LOCATION_ERROR)
                    form.add_error(None, form.location_error)
                    continue
                for message in messages:
                    form.add_error(target, message)
        else:
            target = field if field in form.fields else None
            for message in problems if isinstance(problems, list) else [str(problems)]:
                form.add_error(target, message)


class PatientForm(forms.Form):
    """In the order a Russian GP fills in a record: name, patronymic, birth date, sex, SNILS, OMS, address."""

    family_name = forms.CharField(max_length=150, label=_("Family name"))
    given_name = forms.CharField(max_length=150, label=_("Given name"))
    middle_name = forms.CharField(max_length=150, required=False, label=_("Patronymic (middle name)"))
    birth_date = forms.DateField(
        label=_("Birth date"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )
    sex = forms.ChoiceField(choices=SEX_CHOICES, widget=forms.RadioSelect, label=_("Sex"))
    snils = forms.CharField(
        max_length=14,
        required=False,
        label=_("SNILS"),
        validators=[validate_snils],
        help_text=_("11 digits, e.g. 112-233-445 95."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    oms_policy = forms.CharField(
        max_length=19,
        required=False,
        label=_("OMS policy number"),
        validators=[validate_oms_policy],
        help_text=_("16 digits."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    insurer = forms.CharField(max_length=200, required=False, label=_("Insurer (OMS)"))
    address = forms.CharField(max_length=300, required=False, label=_("Address"))
    phone = forms.CharField(max_length=32, required=False, label=_("Phone"))
    identifier = forms.CharField(max_length=64, required=False, label=_("Identifier (medical record number)"))

    def clean_birth_date(self):
        # Also checked when saving (clinic.services); said here too, so a future date is named in the same round
        # as the other fields' problems, not after they are mended.
        birth_date = self.cleaned_data.get("birth_date")
        if birth_date and birth_date > timezone.localdate():
            raise forms.ValidationError(_("The birth date is in the future."))
        return birth_date

    def clean_snils(self):
        return digits_only(self.cleaned_data.get("snils", ""))

    def clean_oms_policy(self):
        return digits_only(self.cleaned_data.get("oms_policy", ""))

    def clean(self):
        from clinic.serializers import PatientWriteSerializer

        data = super().clean()
        known = PatientWriteSerializer().fields  # the serializer checks the fields it knows
        payload = {
            key: (value.isoformat() if hasattr(value, "isoformat") else value)
            for key, value in data.items()
            if value is not None and key in known
        }
        serializer = PatientWriteSerializer(data=payload)
        if not serializer.is_valid():
            _serializer_errors_to_form(self, {k: v for k, v in serializer.errors.items() if k not in self.errors})
        return data

    @classmethod
    def initial_from(cls, patient: Patient) -> dict:
        return {name: getattr(patient, name, "") for name in cls.base_fields}


def form_error_links(form) -> list[tuple[str, str, str]]:
    """The error summary of a plain form: (anchor id, label, message) per problem, in field order; a
    problem with no field has no anchor."""
    links = []
    for name, field in form.fields.items():
        anchor = f"id_{name}_0" if isinstance(field.widget, forms.RadioSelect) else f"id_{name}"
        links += [(anchor, field.label, message) for message in form.errors.get(name, [])]
    return links + [("", "", message) for message in form.non_field_errors()]


class _EitherSeparator:
    """A number typed with a decimal comma or a decimal point: "37,8" and "37.8" are both 37.8 in any
    language, and a separator is never taken for thousands ("37,8" is never 378). Shown back in the
    request's locale ("37,8" in Russian), in a text box with a numeric keyboard on a tablet."""

    def __init__(self, **kwargs):
        kwargs.setdefault("localize", True)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip()
            if value.count(",") == 1 and "." not in value:
                value = value.replace(",", ".")
            elif "," in value:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class DecimalNumberField(_EitherSeparator, forms.FloatField):
    pass


class WholeNumberField(_EitherSeparator, forms.IntegerField):
    pass


# Days in each unit a GP writes a duration in, by the words and abbreviations used for it in Russian and English.
_DURATION_UNITS = {
    1: ("д", "дн", "день", "дня", "дней", "сут", "суток", "d", "day", "days"),
    7: ("н", "нед", "неделя", "недели", "недель", "неделю", "w", "wk", "wks", "week", "weeks"),
    30: ("м", "мес", "месяц", "месяца", "месяцев", "mo", "mon", "month", "months"),
    365: ("г", "год", "года", "лет", "y", "yr", "yrs", "year", "years"),
}
_DAYS_IN = {word: days for days, words in _DURATION_UNITS.items() for word in words}
_DURATION = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([^\W\d_]+)?\.?$")


class DurationDaysField(WholeNumberField):
    """Days since the numbness began, typed as days ("10") or with a unit as a GP writes it ("3 нед", "2 мес",
    "1,5 года", "2 weeks"), stored as days (a month as 30, a year as 365)."""

    default_error_messages = {"invalid": _("Enter days, or a number with a unit: 3 weeks, 2 months, 1 year.")}

    def to_python(self, value):
        if isinstance(value, str):
            match = _DURATION.match(value.strip().casefold())
            if match and match.group(2):
                days = _DAYS_IN.get(match.group(2))
                if days is None:
                    raise forms.ValidationError(
                        _("Enter days, or a number with a unit: 3 weeks, 2 months, 1 year."), code="unit"
                    )
                return round(float(match.group(1).replace(",", ".")) * days)
        return super().to_python(value)


class EncounterForm(forms.Form):
    visit_date = forms.DateField(
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}), label=_("Visit date")
    )
    chief_complaint = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Chief complaint"), max_length=2000
    )
    duration_days = DurationDaysField(
        min_value=0,
        label=_("Duration (days since it began)"),
        help_text=_("Days, or with a unit: 3 weeks, 2 months, 1 year."),
    )
    pregnant = forms.ChoiceField(choices=TRI_STATE, required=False, widget=forms.RadioSelect, label=_("Pregnant"))
    temperature_c = DecimalNumberField(required=False, label=_("Temperature, °C"))
    heart_rate = WholeNumberField(required=False, label=_("Heart rate, /min"))
    systolic_bp = WholeNumberField(required=False, label=_("Systolic BP, mmHg"))
    diastolic_bp = WholeNumberField(required=False, label=_("Diastolic BP, mmHg"))
    resp_rate = WholeNumberField(required=False, label=_("Respiratory rate, /min"))
    spo2 = WholeNumberField(required=False, label=_("SpO₂, %"))

    def __init__(self, *args, patient: Patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.location_error = ""
        vocabulary = current_kb().vocabulary
        if patient.sex != "female":
            del self.fields["pregnant"]
        self.sections = []
        for key, title, group in SECTIONS:
            codes = []
            if group:
                for code in vocabulary.findings_in_group(group):
                    only = vocabulary.findings[code].get("sex")
                    if only and only != patient.sex:
                        continue  # a finding of the other sex is not asked
                    self.fields[f"f_{code}"] = forms.ChoiceField(
                        choices=TRI_STATE,
                        required=False,
                        widget=forms.RadioSelect,
                        label=vocabulary.findings[code]["name"],
                    )
                    codes.append(code)
            if key in NOTE_SECTIONS:
                self.fields[f"note_{key}"] = forms.CharField(
                    required=False,
                    max_length=5000,
                    label=_("Note"),
                    widget=forms.Textarea(attrs={"rows": 1}),
                )
            self.sections.append({"key": key, "title": title, "group": group, "codes": codes})

    # -- for templates ----------------------------------------------------------------------------
    def section_rows(self):
        for section in self.sections:
            yield {
                **section,
                "findings": [self[f"f_{code}"] for code in section["codes"]],
                "note": self[f"note_{section['key']}"] if f"note_{section['key']}" in self.fields else None,
                "extra": self._extra_fields(section["key"]),
            }

    def _extra_fields(self, key):
        names = {"pattern": ["duration_days"], "vitals": list(VITAL_FIELDS)}.get(key, [])
        return [self[name] for name in names if name in self.fields]

    def unanswered_red_flags(self):
        data = self.data if self.is_bound else self.initial
        return [
            code
            for code in current_kb().red_flags
            if f"f_{code}" in self.fields and data.get(f"f_{code}") not in ("yes", "no")
        ]

    def subfebrile_without_fever(self) -> bool:
        """A subfebrile temperature typed while "Fever" is answered No: the GP should see the mismatch."""
        data = self.data if self.is_bound else self.initial
        temperature = data.get("temperature_c")
        if isinstance(temperature, str):
            try:
                temperature = self.fields["temperature_c"].to_python(temperature)
            except forms.ValidationError:
                return False
        return subfebrile_without_fever(temperature, data.get("f_rf_fever"))

    def error_links(self):
        """The error summary: (anchor id, label, message) per problem, in the order of the page."""

        def anchor(name):
            return f"id_{name}_0" if isinstance(self.fields[name].widget, forms.RadioSelect) else f"id_{name}"

        order = [name for name in ("visit_date", "pregnant", "chief_complaint") if name in self.fields]
        links = [
            (anchor(name), self.fields[name].label, message) for name in order for message in self.errors.get(name, [])
        ]
        for section in self.sections:
            if section["key"] == "location" and self.location_error:
                first = section["codes"][0] if section["codes"] else None
                links.append(
                    (f"id_f_{first}_0" if first else "section-location", section["title"], self.location_error)
                )
            names = [
                *{"pattern": ["duration_days"], "vitals": list(VITAL_FIELDS)}.get(section["key"], []),
                *(f"f_{code}" for code in section["codes"]),
                f"note_{section['key']}",
            ]
            for name in names:
                if name in self.fields:
                    links += [(anchor(name), self.fields[name].label, message) for message in self.errors.get(name, [])]
        return links + [("", "", message) for message in self.non_field_errors() if message != self.location_error]

    @staticmethod
    def with_red_flags_no(data, patient):
        """The posted form with every red flag still unanswered set to No, shown again for the GP to check
        and save (the "all remaining red flags: No" button without JavaScript). Returns (initial, count)."""
        initial = {key: data.get(key) for key in data if key != "csrfmiddlewaretoken"}
        count = 0
        for code in current_kb().red_flags:
            only = current_kb().vocabulary.findings[code].get("sex")
            if only and only != patient.sex:
                continue
            if initial.get(f"f_{code}") not in ("yes", "no"):
                initial[f"f_{code}"] = "no"
                count += 1
        return initial, count

    # -- conversion ---------------------------------------------------------------------------------
    def payload(self) -> dict:
        """The typed values as an API body (only meaningful once the fields are clean)."""
        data = self.cleaned_data
        findings = {}
        for name, value in data.items():
            if name.startswith("f_") and value in ("yes", "no"):
                findings[name[2:]] = value == "yes"
        payload = {
            "visit_date": data["visit_date"].isoformat() if data.get("visit_date") else None,
            "chief_complaint": data.get("chief_complaint") or "",
            "duration_days": data.get("duration_days"),
            "findings": findings,
            "notes": {name[5:]: value for name, value in data.items() if name.startswith("note_") and value},
        }
        if data.get("pregnant") in ("yes", "no"):
            payload["pregnant"] = data["pregnant"] == "yes"
        for name in VITAL_FIELDS:
            if data.get(name) is not None:
                payload[name] = data[name]
        return {key: value for key, value in payload.items() if value is not None}

    def clean(self):
        from clinic.serializers import EncounterWriteSerializer

        data = super().clean()
        had_errors = bool(self.errors)
        # Checked even when a field is wrong, so every problem (the location above all) shows on the first submit.
        serializer = EncounterWriteSerializer(data=self.payload(), context={"patient": self.patient})
        if serializer.is_valid():
            if not had_errors:
                self.validated = {key: value for key, value in serializer.validated_data.items() if key != "patient"}
        else:
            errors = dict(serializer.errors)
            if had_errors:  # a field already refused is missing from the payload: no second message for it
                errors = {key: value for key, value in errors.items() if key not in self.errors}
            _serializer_errors_to_form(self, errors)
        return data

    @staticmethod
    def initial_from(encounter) -> dict:
        initial = {
            name: getattr(encounter, name) for name in ("visit_date", "chief_complaint", "duration_days", *VITAL_FIELDS)
        }
        if encounter.pregnant is not None:
            initial["pregnant"] = "yes" if encounter.pregnant else "no"
        for code, present in (encounter.findings or {}).items():
            initial[f"f_{code}"] = "yes" if present else "no"
        for section, text in (encounter.notes or {}).items():
            initial[f"note_{section}"] = text
        return initial

    @staticmethod
    def blank_initial() -> dict:
        return {"visit_date": timezone.localdate()}


def subfebrile_without_fever(temperature, fever_answer) -> bool:
    """37.1–37.9 °C recorded while the fever red flag is answered No (False or "no")."""
    if temperature is None or fever_answer not in (False, "no"):
        return False
    try:
        return SUBFEBRILE_LOW <= round(float(temperature), 1) < FEVER_FROM
    except (TypeError, ValueError):
        return False
