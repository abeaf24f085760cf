"""Strict request validation, and a clinical case checked against the engine's vocabulary.

Validation is strict on purpose: in a clinical record "1" is not `true` and
"34" is not an age. Every problem in a body is reported at once, named by its
field (and, for findings, by its code), so an integrator fixes them in one go.

The record's encounters and the evaluate endpoint check a case with the same rules, so they live with
the record (the layer above the engine and below the stored workups).
"""

from __future__ import annotations

import copy

from django.core.validators import MaxLengthValidator, MaxValueValidator, MinLengthValidator, MinValueValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField

from clinic.vocabulary import current_kb
from workups.engine import get_knowledge_base


class LocalizedLimitsMixin:
    """Range and length limits checked here rather than by DRF's validators: those format their message
    once and keep it, so with fields shared between requests (StrictSerializer.get_fields) the first
    language that read it would stay. `fail()` formats each message in the request's language."""

    _LIMITS = (MinValueValidator, MaxValueValidator, MinLengthValidator, MaxLengthValidator)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, self._LIMITS)]

    def check_limits(self, value):
        if getattr(self, "max_value", None) is not None and value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if getattr(self, "min_value", None) is not None and value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        return value

    def check_length(self, value):
        if getattr(self, "max_length", None) is not None and len(value) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if getattr(self, "min_length", None) is not None and len(value) < self.min_length:
            self.fail("min_length", min_length=self.min_length)
        return value


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": gettext_lazy("Must be true or false.")}

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid")


class StrictIntegerField(LocalizedLimitsMixin, serializers.IntegerField):
    default_error_messages = {"invalid": gettext_lazy("Must be a whole number.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return self.check_limits(data)


class StrictNumberField(LocalizedLimitsMixin, serializers.FloatField):
    default_error_messages = {"invalid": gettext_lazy("Must be a number.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:
            self.fail("invalid")
        if value != value or value in (float("inf"), float("-inf")):
            self.fail("invalid")
        return self.check_limits(value)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


def _findings_doc_serializer():
    """An object with one optional boolean per finding code: how `findings` reads in the OpenAPI schema."""
    vocabulary = get_knowledge_base().vocabulary
    fields = {
        code: serializers.BooleanField(
            required=False,
            help_text=f"{meta['name']} ({vocabulary.groups[meta['group']]}"
            + (f"; {meta['sex']} only" if meta.get("sex") else "")
            + ")",
        )
        for code, meta in vocabulary.findings.items()
    }
    return type("Findings", (serializers.Serializer,), fields)


@extend_schema_field(_findings_doc_serializer())
class FindingsField(serializers.Field):
    """`{"<finding code>": true | false}`: present, absent; a missing code was not recorded."""

    default_error_messages = {
        "not_an_object": gettext_lazy("Must be an object mapping finding codes to true or false.")
    }

    def to_internal_value(self, data):
        # Codes and values are checked with the rest of the case (check_case), so that
        # every problem, including the cross-field ones, is reported in one answer.
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return dict(data)

    def to_representation(self, value):
        return dict(value)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "number"}, {"type": "boolean"}]},
        "description": "Result code → value: a number in the code's unit (vocabulary `unit`, within its `plausible` "
        "range) or true/false. Codes from GET /api/v1/vocabulary/ (group `result`).",
    }
)
class ResultsField(serializers.Field):
    """`{"<result code>": number | true | false}`: what came back (GUIDANCE section 6)."""

    default_error_messages = {"not_an_object": gettext_lazy("Must be an object mapping result codes to values.")}

    def to_internal_value(self, data):
        # Codes, types and ranges are checked with the rest of the case (check_case), per code.
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return dict(data)

    def to_representation(self, value):
        return dict(value)


class StrictSerializer(serializers.Serializer):
    """A serializer that refuses unknown fields and reports every problem together.

    DRF stops at field errors before running cross-field checks; here the
    cross-field checks (`check`) run on whatever fields were valid, so a body
    with a bad age and a pregnant man gets both problems named.
    """

    def get_fields(self):
        # DRF deep-copies every declared field for every request, which costs more than the
        # engine itself; these fields keep no per-request state, so a shallow copy to bind is enough.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": [_("Expected a JSON object.")]})
        errors: dict = {}
        values: dict = {}
        for field in self._writable_fields:
            primitive = field.get_value(data)
            try:
                value = field.run_validation(primitive)
            except ValidationError as exc:
                errors[field.field_name] = exc.detail
            except SkipField:
                continue
            else:
                values[field.source] = value
        for name in data:
            if name not in self.fields:
                errors[name] = [_("Unknown field.")]
        self.check(values, errors)
        if errors:
            raise ValidationError(errors)
        return values

    def check(self, values: dict, errors: dict) -> None:
        """Cross-field rules; add problems to `errors` by field."""


def add_error(errors: dict, field: str, message: str, *, code: str | None = None) -> None:
    """Add a problem for `field` (and finding `code`, for findings) without losing earlier ones."""
    if code is None:
        existing = errors.setdefault(field, [])
        if isinstance(existing, dict):
            existing.setdefault("non_field_errors", []).append(message)
        else:
            existing.append(message)
        return
    existing = errors.setdefault(field, {})
    if isinstance(existing, list):
        return  # the whole field is already refused (not an object)
    existing.setdefault(code, []).append(message)


def _named(code: str) -> str:
    """An unknown code as an error names it: the start of an overlong one, so a refusal never echoes megabytes."""
    return code if len(code) <= 64 else f"{code[:64]}…"


def check_case(values: dict, errors: dict, *, sex: str | None, age: int | None) -> None:
    """Impossible combinations of otherwise valid case fields."""
    vocabulary = get_knowledge_base().vocabulary
    if values.get("pregnant") is True and sex == "male":
        add_error(errors, "pregnant", _("A male patient cannot be pregnant."))
    findings = values.get("findings")
    if findings is not None:
        for code, present in findings.items():
            meta = vocabulary.findings.get(code)
            if meta is None:
                named = _named(code)
                add_error(errors, "findings", _("Unknown finding code %(code)s.") % {"code": repr(named)}, code=named)
            elif not isinstance(present, bool):
                add_error(errors, "findings", _("%(code)s must be true or false.") % {"code": code}, code=code)
            elif present and sex is not None and meta.get("sex") not in (None, sex):
                message = (
                    _("%(code)s applies to female patients only.")
                    if meta["sex"] == "female"
                    else _("%(code)s applies to male patients only.")
                )
                add_error(errors, "findings", message % {"code": code}, code=code)
        if not any(findings.get(code) is True for code in vocabulary.findings_in_group("loc")):
            locations = ", ".join(vocabulary.findings_in_group("loc"))
            add_error(
                errors,
                "findings",
                _("At least one location finding must be present: one of %(codes)s.") % {"codes": locations},
                code="loc",
            )
    check_results(values, errors, sex=sex)
    duration = values.get("duration_days")
    if duration is not None and age is not None and duration > (age + 1) * 366:
        add_error(
            errors,
            "duration_days",
            _("%(days)s days is longer than the patient's life (age %(age)s).") % {"days": duration, "age": age},
        )
    systolic, diastolic = values.get("systolic_bp"), values.get("diastolic_bp")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        add_error(errors, "diastolic_bp", _("Diastolic pressure must be lower than systolic."))


def check_results(values: dict, errors: dict, *, sex: str | None) -> None:
    """Each result: a known code, the right type, a value its unit makes possible. A haemoglobin of 13.2
    is g/dL typed into a g/L field: refused, never flagged."""
    results = values.get("results")
    if results is None:
        return
    vocabulary = current_kb().vocabulary
    for code, value in results.items():
        meta = vocabulary.results.get(code)
        if meta is None:
            named = _named(code)
            add_error(errors, "results", _("Unknown result code %(code)s.") % {"code": repr(named)}, code=named)
        elif meta["type"] == "boolean":
            if not isinstance(value, bool):
                add_error(errors, "results", _("%(code)s must be true or false.") % {"code": code}, code=code)
            elif code == "res_hcg" and sex == "male":
                add_error(errors, "results", _("%(code)s applies to female patients only.") % {"code": code}, code=code)
        elif (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != value
            or value in (float("inf"), float("-inf"))
        ):
            add_error(
                errors,
                "results",
                _("%(code)s must be a number in %(unit)s.") % {"code": code, "unit": meta["unit"]},
                code=code,
            )
        else:
            low, high = meta["plausible"]
            if not low <= value <= high:
                add_error(
                    errors,
                    "results",
                    _("%(value)s is not a possible %(name)s in %(unit)s (%(low)s–%(high)s): check the unit.")
                    % {"value": value, "name": meta["name"], "unit": meta["unit"], "low": low, "high": high},
                    code=code,
                )


class CaseFieldsSerializer(StrictSerializer):
    """The clinical fields of a case, shared by the evaluate endpoint and the encounters API."""

    pregnant = StrictBooleanField(required=False, allow_null=True, help_text="Only meaningful for female patients.")
    duration_days = StrictIntegerField(min_value=0, help_text="Days since the numbness first appeared (0 = today).")
    temperature_c = StrictNumberField(
        required=False,
        allow_null=True,
        min_value=30,
        max_value=45,
        help_text="Body temperature in °C; 38.0 or above makes rf_fever present.",
        # The usual slip is the decimal point (3.7 for 37.0): the message says where to look.
        error_messages={
            "min_value": gettext_lazy(
                "A body temperature is from 30 to 45 °C: check the decimal point (37.2, not 3.72)."
            ),
            "max_value": gettext_lazy(
                "A body temperature is from 30 to 45 °C: check the decimal point (37.2, not 372) and the unit "
                "(99.5 °F is 37.5 °C)."
            ),
        },
    )
    heart_rate = StrictIntegerField(required=False, allow_null=True, min_value=20, max_value=300, help_text="beats/min")
    systolic_bp = StrictIntegerField(required=False, allow_null=True, min_value=40, max_value=300, help_text="mmHg")
    diastolic_bp = StrictIntegerField(required=False, allow_null=True, min_value=20, max_value=200, help_text="mmHg")
    resp_rate = StrictIntegerField(required=False, allow_null=True, min_value=4, max_value=80, help_text="breaths/min")
    spo2 = StrictIntegerField(required=False, allow_null=True, min_value=50, max_value=100, help_text="%")
    findings = FindingsField(
        help_text="Finding code → true (present) or false (absent); a code left out was not recorded. "
        "At least one location (loc_*) must be present; every red flag (rf_*) should be answered."
    )
