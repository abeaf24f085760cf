"""Request validation and response description for the workup API.

Validation is strict on purpose: in a clinical record "1" is not `true` and
"34" is not an age. Every problem in a body is reported at once, named by its
field (and, for findings, by its code), so an integrator fixes them in one go.
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

from workups.engine import Case, get_knowledge_base
from workups.engine.case import VITAL_SIGNS
from workups.localized import current_kb

SEX_CHOICES = ("female", "male")


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
                add_error(errors, "findings", _("Unknown finding code %(code)s.") % {"code": repr(code)}, code=code)
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
            add_error(errors, "results", _("Unknown result code %(code)s.") % {"code": repr(code)}, code=code)
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


class WorkupEvaluateSerializer(CaseFieldsSerializer):
    sex = StrictChoiceField(choices=SEX_CHOICES)
    age = StrictIntegerField(min_value=0, max_value=120, help_text="Whole years.")
    results = ResultsField(required=False, help_text="Results that came back: code → value (GUIDANCE section 6).")

    # Keep the documented field order: who, then the case.
    class Meta:
        fields = ["sex", "age", "pregnant", "duration_days", "temperature_c", *VITAL_SIGNS, "findings", "results"]

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in self.Meta.fields}

    def check(self, values, errors):
        check_case(values, errors, sex=values.get("sex"), age=values.get("age"))


def case_from_values(values: dict, *, sex: str, age: int) -> Case:
    return Case(
        sex=sex,
        age=age,
        duration_days=values["duration_days"],
        pregnant=values.get("pregnant"),
        temperature_c=values.get("temperature_c"),
        vitals={name: values[name] for name in VITAL_SIGNS if values.get(name) is not None},
        findings=values["findings"],
        results=values.get("results") or {},
    )


# -- response description (documentation only: the engine's dict is returned as it is) ------------


def _codes(table):
    return sorted(table)


ITEM_CODES = _codes(get_knowledge_base().vocabulary.items)


def _choice(table, **kwargs):
    return serializers.ChoiceField(choices=_codes(table), **kwargs)


class _Vocab:
    @staticmethod
    def get():
        return get_knowledge_base().vocabulary


class WorkupItemSerializer(serializers.Serializer):
    code = _choice(_Vocab.get().items)
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=["lab", "functional", "imaging"])
    urgency = serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    rationale = serializers.CharField(help_text="One line in plain clinical language.")
    triggered_by = serializers.ListField(
        child=serializers.CharField(), help_text="Finding codes (and `pregnant`) that triggered it."
    )
    sources = serializers.ListField(child=serializers.CharField())
    rules = serializers.ListField(child=serializers.CharField(), help_text="Knowledge-base rule ids.")


class WorkupReferralSerializer(serializers.Serializer):
    specialty = _choice(_Vocab.get().specialties)
    name = serializers.CharField()
    urgency = serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    reason = serializers.CharField()
    triggered_by = serializers.ListField(child=serializers.CharField())
    sources = serializers.ListField(child=serializers.CharField())
    rules = serializers.ListField(child=serializers.CharField())


class DeferredSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["item", "referral"])
    code = serializers.CharField(help_text="Item code, or the specialty for a referral.")
    specialty = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    name = serializers.CharField()
    urgency = serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    reason = serializers.CharField()
    triggered_by = serializers.ListField(child=serializers.CharField())
    sources = serializers.ListField(child=serializers.CharField())
    rules = serializers.ListField(child=serializers.CharField())


class WithheldSerializer(serializers.Serializer):
    code = _choice(_Vocab.get().items)
    name = serializers.CharField()
    reason = serializers.CharField()
    replaced_by = serializers.CharField(allow_null=True, help_text="The alternative issued instead, or null when none.")
    replacements = serializers.ListField(
        child=serializers.CharField(), help_text="Every alternative (whole spine: both regions)."
    )
    urgency = serializers.CharField()
    triggered_by = serializers.ListField(child=serializers.CharField())
    sources = serializers.ListField(child=serializers.CharField())
    rule = serializers.CharField()


class NotIndicatedSerializer(serializers.Serializer):
    code = _choice(_Vocab.get().items)
    name = serializers.CharField()
    reason = serializers.CharField()
    sources = serializers.ListField(child=serializers.CharField())


class WarningSerializer(serializers.Serializer):
    code = _choice(_Vocab.get().warnings)
    message = serializers.CharField()
    findings = serializers.ListField(child=serializers.CharField(), required=False)
    items = serializers.ListField(child=serializers.CharField(), required=False)


class InterpretedResultSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    value = serializers.JSONField(help_text="The number in `unit`, or true/false.")
    unit = serializers.CharField(allow_blank=True)
    flag = serializers.ChoiceField(choices=["low", "normal", "high", "positive", "negative", "present", "absent"])
    reference = serializers.CharField(help_text="What it was judged by, for this patient's age, sex and pregnancy.")
    source = serializers.CharField()


class WorkupResultSerializer(serializers.Serializer):
    knowledge_base_version = serializers.CharField()
    disposition = serializers.ChoiceField(choices=["emergency", "urgent", "routine", "observe"])
    red_flags = serializers.ListField(child=serializers.CharField(), help_text="Red flags recorded present.")
    results = InterpretedResultSerializer(many=True, help_text="Each result sent, interpreted.")
    items = WorkupItemSerializer(many=True)
    referrals = WorkupReferralSerializer(many=True)
    deferred = DeferredSerializer(many=True, help_text="Recommended by lower tiers but not issued during an emergency.")
    withheld = WithheldSerializer(many=True, help_text="Removed by a safety rule, with the alternative issued.")
    not_indicated = NotIndicatedSerializer(many=True, help_text="Tests the guidance advises against here, and why.")
    warnings = WarningSerializer(many=True)
    advice = serializers.ListField(child=serializers.CharField(), help_text="Self-care advice (observe only).")
    review = serializers.CharField(allow_null=True, help_text="When to come back (observe only).")
    fired_rules = serializers.ListField(child=serializers.CharField())


class VocabularyEntrySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    group = serializers.CharField()
    category = serializers.CharField(required=False)
    sex = serializers.CharField(required=False)
    negative = serializers.CharField(required=False, help_text="How an absent finding reads in a letter.")
    type = serializers.CharField(required=False, help_text="Results: numeric or boolean.")
    unit = serializers.CharField(required=False, help_text="Results: the unit a numeric value is in.")
    plausible = serializers.ListField(
        child=serializers.FloatField(),
        required=False,
        help_text="Results: the range a value must be in to be accepted.",
    )


class VocabularySerializer(serializers.Serializer):
    knowledge_base_version = serializers.CharField()
    groups = serializers.DictField(child=serializers.CharField())
    codes = VocabularyEntrySerializer(many=True)


class ValidationErrorSerializer(serializers.Serializer):
    """Field name → messages; `findings` → finding code → messages."""

    field_name = serializers.ListField(child=serializers.CharField(), required=False)


class DecisionSerializer(StrictSerializer):
    decision = StrictChoiceField(choices=["pending", "accepted", "declined"])
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Required when declining."
    )


class ItemAddSerializer(StrictSerializer):
    workup = StrictIntegerField()
    code = StrictChoiceField(choices=ITEM_CODES)
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReferralAddSerializer(StrictSerializer):
    workup = StrictIntegerField()
    specialty = StrictChoiceField(choices=_codes(get_knowledge_base().vocabulary.specialties))
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class _StoredDecision(serializers.Serializer):
    """What a stored item or referral adds to the engine's row: its id and the GP's decision."""

    id = serializers.IntegerField()
    added_by_clinician = serializers.BooleanField()
    decision = serializers.ChoiceField(choices=["pending", "accepted", "declined"])
    decision_reason = serializers.CharField(allow_blank=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    new = serializers.BooleanField(
        required=False, help_text="Follow-up workups: the row was not in the workup before it."
    )


class StoredItemSerializer(WorkupItemSerializer, _StoredDecision):
    pass


class StoredReferralSerializer(WorkupReferralSerializer, _StoredDecision):
    pass


class StoredWorkupSerializer(WorkupResultSerializer):
    id = serializers.IntegerField()
    encounter = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    stale = serializers.BooleanField(help_text="The encounter changed since: generate again.")
    kind = serializers.ChoiceField(
        choices=["initial", "follow_up"],
        required=False,
        help_text="initial: from the history and examination; follow_up: with the results.",
    )
    items = StoredItemSerializer(many=True)
    referrals = StoredReferralSerializer(many=True)


# -- results, the follow-up review and acknowledgement (GUIDANCE 6 and 7) --------------------------


class NoteField(serializers.CharField):
    """Free text from the GP: a string, no control characters but line breaks and tabs."""

    default_error_messages = {
        "invalid": gettext_lazy("Must be text."),
        "control": gettext_lazy("Control characters are not allowed."),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if any((ord(char) < 32 and char not in "\n\r\t") or ord(char) == 127 for char in data):
            self.fail("control")
        return super().to_internal_value(data)


class ResultValueField(serializers.JSONField):
    """A number in the code's unit, or true/false (checked against the code by the service)."""


class ResultEnterSerializer(StrictSerializer):
    code = serializers.CharField(max_length=40, help_text="A result code (vocabulary group `result`).")
    value = ResultValueField(help_text="A number in the code's unit (within its plausible range) or true/false.")
    performed_on = serializers.DateField(
        required=False,
        allow_null=True,
        input_formats=["%Y-%m-%d"],
        help_text="When the test was done: not in the future, not before the visit.",
    )
    note = NoteField(required=False, allow_blank=True, max_length=2000)

    def check(self, values, errors):
        from workups.services import result_problems

        encounter = self.context["encounter"]
        problems = result_problems(
            encounter=encounter,
            code=values.get("code"),
            value=values.get("value"),
            performed_on=values.get("performed_on"),
            note=values.get("note", ""),
        )
        for name, messages in problems.items():
            errors.setdefault(name, []).extend(messages)


class AcknowledgeSerializer(StrictSerializer):
    note = NoteField(max_length=2000, help_text="The action taken on this abnormal result (required).")

    def check(self, values, errors):
        if "note" in values and not values["note"].strip():
            errors.setdefault("note", []).append(_("Say what was done about this result."))


class StoredResultSerializer(serializers.Serializer):
    """A stored result (documentation of the response)."""

    id = serializers.IntegerField()
    encounter = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    value = serializers.JSONField()
    unit = serializers.CharField(allow_blank=True)
    flag = serializers.ChoiceField(choices=["low", "normal", "high", "positive", "negative", "present", "absent"])
    abnormal = serializers.BooleanField()
    reference = serializers.CharField()
    source = serializers.CharField()
    item = serializers.IntegerField(allow_null=True, help_text="The accepted workup item it answers.")
    performed_on = serializers.DateField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    entered_at = serializers.DateTimeField()
    entered_by = serializers.CharField(allow_null=True)
    current = serializers.BooleanField(help_text="False once a newer value of the same code superseded it.")
    superseded_at = serializers.DateTimeField(allow_null=True)
    superseded_by = serializers.IntegerField(allow_null=True)
    acknowledged = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(allow_null=True)
    acknowledgement_note = serializers.CharField(allow_blank=True)
