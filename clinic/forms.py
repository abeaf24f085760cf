"""Browser forms. Typing is the form's job; clinical validity is checked by the same
serializers the API uses, so a case refused over the API is refused here too."""
from __future__ import annotations

from django import forms
from django.utils import timezone

from clinic.models import NOTE_SECTIONS, Patient, Sex
from workups.engine import get_knowledge_base

TRI_STATE = [("", "Not recorded"), ("yes", "Yes"), ("no", "No")]

# The encounter form's sections, in clinical order: (key, title, finding group, note section).
SECTIONS = [
    ("location", "Where the numbness is", "loc"),
    ("pattern", "Pattern and duration", "pattern"),
    ("symptoms", "Symptoms", "sx"),
    ("red_flags", "Red-flag screen", "rf"),
    ("history", "History", "hx"),
    ("examination", "Examination", "ex"),
    ("vitals", "Vital signs", None),
]
VITAL_FIELDS = ("temperature_c", "heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")


def _serializer_errors_to_form(form: forms.Form, errors: dict) -> None:
    for field, problems in errors.items():
        if field == "findings" and isinstance(problems, dict):
            for code, messages in problems.items():
                target = f"f_{code}" if f"f_{code}" in form.fields else None
                if code == "loc":
                    target = None
                    form.location_error = " ".join(messages)
                for message in messages:
                    form.add_error(target, message)
        else:
            target = field if field in form.fields else None
            for message in problems if isinstance(problems, list) else [str(problems)]:
                form.add_error(target, message)


class PatientForm(forms.Form):
    family_name = forms.CharField(max_length=150, label="Family name")
    given_name = forms.CharField(max_length=150, label="Given name")
    birth_date = forms.DateField(label="Birth date", widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=Sex.choices, widget=forms.RadioSelect)
    identifier = forms.CharField(max_length=64, required=False, label="Identifier (medical record number)")
    phone = forms.CharField(max_length=32, required=False)

    def clean(self):
        from clinic.serializers import PatientWriteSerializer

        data = super().clean()
        payload = {key: (value.isoformat() if hasattr(value, "isoformat") else value)
                   for key, value in data.items() if value is not None}
        serializer = PatientWriteSerializer(data=payload)
        if not serializer.is_valid():
            _serializer_errors_to_form(self, {k: v for k, v in serializer.errors.items() if k not in self.errors})
        return data

    @classmethod
    def initial_from(cls, patient: Patient) -> dict:
        return {name: getattr(patient, name) for name in cls.base_fields}


class EncounterForm(forms.Form):
    visit_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Visit date")
    chief_complaint = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Chief complaint",
                                      max_length=2000)
    duration_days = forms.IntegerField(min_value=0, label="Duration (days since it began)")
    pregnant = forms.ChoiceField(choices=TRI_STATE, required=False, widget=forms.RadioSelect, label="Pregnant")
    temperature_c = forms.FloatField(required=False, label="Temperature, °C",
                                     widget=forms.NumberInput(attrs={"step": "0.1"}))
    heart_rate = forms.IntegerField(required=False, label="Heart rate, /min")
    systolic_bp = forms.IntegerField(required=False, label="Systolic BP, mmHg")
    diastolic_bp = forms.IntegerField(required=False, label="Diastolic BP, mmHg")
    resp_rate = forms.IntegerField(required=False, label="Respiratory rate, /min")
    spo2 = forms.IntegerField(required=False, label="SpO₂, %")

    def __init__(self, *args, patient: Patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.location_error = ""
        vocabulary = get_knowledge_base().vocabulary
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
                        choices=TRI_STATE, required=False, widget=forms.RadioSelect,
                        label=vocabulary.findings[code]["name"],
                    )
                    codes.append(code)
            if key in NOTE_SECTIONS:
                self.fields[f"note_{key}"] = forms.CharField(
                    required=False, max_length=5000, label="Note", widget=forms.Textarea(attrs={"rows": 1}),
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
        return [code for code in get_knowledge_base().red_flags if not (data.get(f"f_{code}") in ("yes", "no"))]

    # -- conversion ---------------------------------------------------------------------------------
    def payload(self) -> dict:
        """The typed values as an API body (only meaningful once the fields are clean)."""
        data = self.cleaned_data
        findings = {}
        for name, value in data.items():
            if name.startswith("f_") and value in ("yes", "no"):
                findings[name[2:]] = value == "yes"
        payload = {"visit_date": data["visit_date"].isoformat() if data.get("visit_date") else None,
                   "chief_complaint": data.get("chief_complaint") or "",
                   "duration_days": data.get("duration_days"),
                   "findings": findings,
                   "notes": {name[5:]: value for name, value in data.items() if name.startswith("note_") and value}}
        if data.get("pregnant") in ("yes", "no"):
            payload["pregnant"] = data["pregnant"] == "yes"
        for name in VITAL_FIELDS:
            if data.get(name) is not None:
                payload[name] = data[name]
        return {key: value for key, value in payload.items() if value is not None}

    def clean(self):
        from clinic.serializers import EncounterWriteSerializer

        data = super().clean()
        if self.errors:
            return data
        serializer = EncounterWriteSerializer(data=self.payload(), context={"patient": self.patient})
        if serializer.is_valid():
            self.validated = {key: value for key, value in serializer.validated_data.items() if key != "patient"}
        else:
            _serializer_errors_to_form(self, dict(serializer.errors))
        return data

    @staticmethod
    def initial_from(encounter) -> dict:
        initial = {name: getattr(encounter, name) for name in
                   ("visit_date", "chief_complaint", "duration_days", *VITAL_FIELDS)}
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


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accepted", "Accept"), ("declined", "Decline"), ("pending", "Undo")])
    reason = forms.CharField(required=False, max_length=2000)


class AddItemForm(forms.Form):
    code = forms.ChoiceField(label="Test")
    urgency = forms.ChoiceField(choices=[("routine", "Routine"), ("urgent", "Urgent"), ("emergency", "Emergency")])
    rationale = forms.CharField(required=False, max_length=2000, label="Indication",
                                widget=forms.TextInput(attrs={"placeholder": "Clinical indication"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        items = get_knowledge_base().vocabulary.items
        self.fields["code"].choices = [(code, meta["name"]) for code, meta in items.items()]


class AddReferralForm(forms.Form):
    specialty = forms.ChoiceField()
    urgency = forms.ChoiceField(choices=[("routine", "Routine"), ("urgent", "Urgent"), ("emergency", "Emergency")])
    reason = forms.CharField(required=False, max_length=2000,
                             widget=forms.TextInput(attrs={"placeholder": "Reason for referral"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = list(get_knowledge_base().vocabulary.specialties.items())
