"""Request validation and response description for the workup API.

The strict fields and the case's checks are the record's (clinic.validation): the evaluate endpoint
and the encounters API check a case with the same rules.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.utils.serializer_helpers import BindingDict

from clinic.serializers import StrictCharField
from clinic.validation import (
    CaseFieldsSerializer,
    ResultsField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
    check_case,
)
from workups.engine import Case, get_knowledge_base
from workups.engine.case import VITAL_SIGNS
from workups.services import result_problems, results_acknowledge_problems

SEX_CHOICES = ("female", "male")


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

    @property
    def fields(self):
        # Every evaluation builds a serializer, and binding its thirteen fields again each time cost more
        # than the engine. The fields keep no per-request state (StrictSerializer.get_fields), so they are
        # bound once per process, to a blank instance (never to a request's, which would keep its body),
        # and every serializer of this class reads them from there.
        bound = _BOUND_FIELDS.get(type(self))
        if bound is None:
            bound = BindingDict(type(self)())
            for name, field in self.get_fields().items():
                bound[name] = field
            bound = _BOUND_FIELDS.setdefault(type(self), bound)
        return bound

    def check(self, values, errors):
        check_case(values, errors, sex=values.get("sex"), age=values.get("age"))

    @classmethod
    def validated_values(cls, data) -> dict:
        """The body's validated values, or the ValidationError naming every problem that
        `is_valid(raise_exception=True)` raises.

        Building a serializer and DRF's per-field machinery (value lookup, empty checks, validators, the
        serializer's own validators) cost three times the fields' own checks. A body with no problem gives
        the same values read straight through each field's to_internal_value and the case's checks; at the
        first sign of a problem the body goes through a serializer's whole validation instead, so every 4xx
        is exactly its answer."""
        bound = _BOUND_FIELDS.get(cls)
        blank = bound.serializer if bound is not None else cls().fields.serializer
        values = blank._valid_values(data)
        if values is not None:
            return values
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _valid_values(self, data) -> dict | None:
        """The validated values of a body with no problem at all; None when there may be one. (Called on the
        blank instance the fields are bound to: nothing of the request is kept.)"""
        plain = _PLAIN_FIELDS.get(type(self))
        if plain is None:
            plain = _PLAIN_FIELDS.setdefault(type(self), _plain_fields(self))
        if not plain or type(data) is not dict or self.partial:
            return None
        values = {}
        for name, field in plain:
            primitive = data.get(name, empty)
            if primitive is empty:
                if field.required:
                    return None
            elif primitive is None:
                if not field.allow_null:
                    return None
                values[name] = None
            else:
                try:
                    values[name] = field.to_internal_value(primitive)
                except ValidationError:
                    return None
        if len(data) != len(values) and any(name not in self.fields for name in data):
            return None
        errors: dict = {}
        self.check(values, errors)
        return None if errors else values


def _plain_fields(serializer) -> tuple:
    """(name, field) of every field whose validation is DRF's plain one (Field's empty checks, then
    to_internal_value, no validators, no default, its own name as source), in order; () if any field is not,
    or the serializer has validators or a validate() of its own: then its fast path is off."""
    if type(serializer).validate is not serializers.Serializer.validate or serializer.validators:
        return ()
    plain = []
    for name, field in serializer.fields.items():
        cls = type(field)
        if (
            cls.run_validation is not serializers.Field.run_validation
            or cls.validate_empty_values is not serializers.Field.validate_empty_values
            or cls.get_value is not serializers.Field.get_value
            or field.read_only
            or field.default is not empty
            or field.source != name
            or field.validators
        ):
            return ()
        plain.append((name, field))
    return tuple(plain)


_BOUND_FIELDS: dict[type, BindingDict] = {}
_PLAIN_FIELDS: dict[type, tuple] = {}


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


class FinalizeSerializer(StrictSerializer):
    reason = StrictCharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Required when an emergency's emergency work is all still pending.",
    )


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
        _note_given(values, errors)


def _note_given(values, errors):
    if "note" in values and not values["note"].strip():
        errors.setdefault("note", []).append(_("Say what was done about this result."))


class AcknowledgeManySerializer(StrictSerializer):
    results = serializers.ListField(
        child=StrictIntegerField(),
        help_text="Ids of this encounter's current abnormal results not yet acknowledged, each once.",
    )
    note = NoteField(max_length=2000, help_text="The action taken on these abnormal results (required).")

    # One encounter's panels hold a few dozen results at most; a longer list is not a GP's.
    MAX_RESULTS = 200

    def check(self, values, errors):
        _note_given(values, errors)
        ids = values.get("results")
        if ids is None:
            return
        if len(ids) > self.MAX_RESULTS:
            errors.setdefault("results", []).append(
                _("At most %(count)s results at once.") % {"count": self.MAX_RESULTS}
            )
            return
        problems = results_acknowledge_problems(encounter=self.context["encounter"], ids=ids)
        if problems:
            errors.setdefault("results", []).extend(problems)


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
