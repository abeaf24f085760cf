import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinic.identifiers import validate_oms_policy, validate_snils
from clinic.models import NOTE_SECTIONS, Encounter, Patient, Sex
from clinic.validation import (
    CaseFieldsSerializer,
    LocalizedLimitsMixin,
    StrictBooleanField,
    StrictChoiceField,
    StrictSerializer,
    add_error,
    check_case,
)

PHONE = re.compile(r"^\+?[0-9 ()\-]{3,31}$")


class StrictCharField(LocalizedLimitsMixin, serializers.CharField):
    default_error_messages = {"invalid": gettext_lazy("Must be text.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if any(ord(char) < 32 for char in data):
            raise serializers.ValidationError(_("Must not contain control characters."))
        return self.check_length(super().to_internal_value(data))


class StrictDateField(serializers.DateField):
    def __init__(self, **kwargs):
        super().__init__(input_formats=["%Y-%m-%d"], format="%Y-%m-%d", **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class PatientSerializer(serializers.ModelSerializer):
    """How a patient reads over the API."""

    class Meta:
        model = Patient
        fields = [
            "id",
            "family_name",
            "given_name",
            "middle_name",
            "birth_date",
            "sex",
            "snils",
            "oms_policy",
            "insurer",
            "address",
            "identifier",
            "phone",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PatientWriteSerializer(StrictSerializer):
    given_name = StrictCharField(max_length=150)
    family_name = StrictCharField(max_length=150)
    middle_name = StrictCharField(max_length=150, required=False, allow_blank=True, help_text="Patronymic (отчество).")
    birth_date = StrictDateField()
    sex = StrictChoiceField(choices=Sex.choices)
    snils = StrictCharField(
        max_length=14,
        required=False,
        allow_blank=True,
        help_text="SNILS: 11 digits, separators allowed (112-233-445 95); checksum validated.",
    )
    oms_policy = StrictCharField(
        max_length=19, required=False, allow_blank=True, help_text="Single-format OMS policy number: 16 digits."
    )
    insurer = StrictCharField(max_length=200, required=False, allow_blank=True, help_text="The OMS insurer (СМО).")
    address = StrictCharField(max_length=300, required=False, allow_blank=True, help_text="Registration address.")
    identifier = StrictCharField(max_length=64, required=False, allow_blank=True)
    phone = StrictCharField(max_length=32, required=False, allow_blank=True)
    allow_duplicate = StrictBooleanField(
        required=False,
        write_only=True,
        help_text="Register even though a patient with the same name and birth date, SNILS or OMS policy exists.",
    )

    def check(self, values, errors):
        phone = values.get("phone")
        if phone and not PHONE.match(phone):
            add_error(errors, "phone", _("Use digits, spaces, +, - and brackets only."))
        for name, validate in (("snils", validate_snils), ("oms_policy", validate_oms_policy)):
            try:
                validate(values.get(name) or "")
            except DjangoValidationError as error:
                for message in error.messages:
                    add_error(errors, name, message)


@extend_schema_field(
    {
        "type": "object",
        "properties": {section: {"type": "string"} for section in NOTE_SECTIONS},
        "additionalProperties": False,
    }
)
class NotesField(serializers.Field):
    default_error_messages = {"invalid": "Must be an object mapping a section to text."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        problems = {}
        for section, text in data.items():
            if section not in NOTE_SECTIONS:
                problems[section] = [
                    _("Unknown section; use one of %(sections)s.") % {"sections": ", ".join(NOTE_SECTIONS)}
                ]
            elif not isinstance(text, str):
                problems[section] = [_("Must be text.")]
            elif len(text) > 5000:
                problems[section] = [_("At most 5000 characters.")]
            elif any(ord(char) < 32 and char not in "\n\r\t" for char in text):
                # A note may have lines; NUL and the other control characters are no text (PostgreSQL refuses NUL).
                problems[section] = [_("Must not contain control characters.")]
        if problems:
            raise serializers.ValidationError(problems)
        return {section: text for section, text in data.items() if text.strip()}

    def to_representation(self, value):
        return dict(value or {})


class EncounterWriteSerializer(CaseFieldsSerializer):
    """An encounter's body: the evaluate fields less sex and age, which come from the patient."""

    patient = serializers.IntegerField(required=False, help_text="Required when creating.")
    visit_date = StrictDateField(required=False, help_text="Defaults to today.")
    chief_complaint = StrictCharField(required=False, allow_blank=True, max_length=2000)
    notes = NotesField(required=False, help_text=f"Free text per section: {', '.join(NOTE_SECTIONS)}.")

    def check(self, values, errors):
        patient = self.context["patient"]
        if patient is None:
            return
        visit_date = values.get("visit_date") or timezone.localdate()
        if visit_date < patient.birth_date:
            add_error(errors, "visit_date", _("The visit is before the patient's birth."))
        elif visit_date > timezone.localdate():
            add_error(errors, "visit_date", _("The visit date is in the future."))
        age = patient.age_on(max(visit_date, patient.birth_date))
        check_case(values, errors, sex=patient.sex, age=age)


class EncounterSerializer(serializers.ModelSerializer):
    """How an encounter reads over the API."""

    clinician = serializers.CharField(source="clinician.username", read_only=True)
    age = serializers.IntegerField(read_only=True, help_text="Whole years on the visit date.")
    sex = serializers.CharField(read_only=True, help_text="The patient's sex (as it was, once finalized).")
    notes = NotesField()

    class Meta:
        model = Encounter
        fields = [
            "id",
            "patient",
            "clinician",
            "visit_date",
            "age",
            "sex",
            "chief_complaint",
            "duration_days",
            "pregnant",
            "temperature_c",
            "heart_rate",
            "systolic_bp",
            "diastolic_bp",
            "resp_rate",
            "spo2",
            "findings",
            "notes",
            "status",
            "finalized_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def encounter_primitive(encounter: Encounter) -> dict:
    """The stored encounter as a request body, so a PATCH is validated as the whole case it makes."""
    data = {
        "visit_date": encounter.visit_date.isoformat(),
        "chief_complaint": encounter.chief_complaint,
        "duration_days": encounter.duration_days,
        "findings": dict(encounter.findings),
        "notes": dict(encounter.notes or {}),
    }
    for name in ("pregnant", "temperature_c", "heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2"):
        value = getattr(encounter, name)
        if value is not None:
            data[name] = value
    return data


class PatientDuplicatesSerializer(serializers.Serializer):
    """409 on registering: the patients already registered who are likely the same person."""

    detail = serializers.CharField()
    duplicates = PatientSerializer(many=True)
