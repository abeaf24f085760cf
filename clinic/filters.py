import django_filters

from clinic.models import Patient


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
