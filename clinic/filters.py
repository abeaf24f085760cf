"""The patient search's inputs: the query string of `GET /api/v1/patients/` and the JSON body of
`POST /api/v1/patients/search/` (the same search, with the terms out of URLs and so out of access logs)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError

from clinic.identifiers import digits_only, validate_oms_policy, validate_snils
from clinic.models import Patient
from clinic.serializers import StrictCharField, StrictDateField
from clinic.validation import StrictSerializer, add_error


class PatientFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search", label="Part of the given or family name, any case or script"
    )
    birth_date = django_filters.DateFilter(input_formats=["%Y-%m-%d"])

    class Meta:
        model = Patient
        fields = ["search", "birth_date"]

    def filter_search(self, queryset, name, value):
        # The words are applied by clinic.selectors.patient_queryset; see PatientListCreateView.get_queryset.
        return queryset


class PatientSearchSerializer(StrictSerializer):
    """What to look for; every term given must match, and a body with none lists every patient."""

    search = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Parts of the family and given name in any script and case, or a SNILS or OMS policy number.",
    )
    birth_date = StrictDateField(required=False, allow_null=True, help_text="YYYY-MM-DD")
    snils = StrictCharField(
        max_length=14, required=False, allow_blank=True, help_text="SNILS: 11 digits, separators allowed."
    )
    oms_policy = StrictCharField(
        max_length=19, required=False, allow_blank=True, help_text="Single-format OMS policy number: 16 digits."
    )

    def check(self, values, errors):
        for name, validate in (("snils", validate_snils), ("oms_policy", validate_oms_policy)):
            try:
                validate(values.get(name) or "")
            except DjangoValidationError as error:
                for message in error.messages:
                    add_error(errors, name, message)
            else:
                values[name] = digits_only(values.get(name) or "")
