"""The clinical record over the API: thin views over clinic.selectors / clinic.services."""

from django.db import transaction
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from clinic import selectors, services
from clinic.audit import actor_from_request
from clinic.filters import PatientFilter, PatientSearchSerializer
from clinic.numbers import PAGE_MOST, whole_number
from clinic.serializers import (
    EncounterSerializer,
    EncounterWriteSerializer,
    PatientDuplicatesSerializer,
    PatientSerializer,
    PatientWriteSerializer,
    encounter_primitive,
)


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


class PatientPagination(Pagination):
    """The patient list's and search's pages: `count` exact up to clinic.selectors.PATIENT_COUNT_LIMIT; past it,
    the limit, and `count_is_lower_bound` true. `next` is there when a further patient exists."""

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        raw = request.query_params.get(self.page_query_param, "1")
        number = whole_number(raw, most=PAGE_MOST) or 0
        if number < 1:
            # The text typed is not echoed back: it may be anything, of any length.
            raise NotFound(_("Invalid page: a page is a whole number from 1 to %(most)s.") % {"most": PAGE_MOST})
        self.page = selectors.patient_page(patients=queryset, number=number, size=self.get_page_size(request))
        if number > 1 and not self.page.object_list:
            raise NotFound(
                self.invalid_page_message.format(page_number=number, message="That page contains no results.")
            )
        return self.page.object_list

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.count,
                "count_is_lower_bound": self.page.count_is_lower_bound,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_next_link(self):
        if not self.page.has_next:
            return None
        return replace_query_param(self.request.build_absolute_uri(), self.page_query_param, self.page.number + 1)

    def get_previous_link(self):
        if not self.page.has_previous:
            return None
        url = self.request.build_absolute_uri()
        if self.page.number == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.page.number - 1)

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"] = {
            "count": {"type": "integer", "example": 123, "description": COUNT_HELP},
            "count_is_lower_bound": {"type": "boolean", "description": LOWER_BOUND_HELP},
            **{name: value for name, value in response["properties"].items() if name != "count"},
        }
        response["required"] = ["count", "count_is_lower_bound", "results"]
        return response


COUNT_HELP = (
    f"How many patients match, exact up to {selectors.PATIENT_COUNT_LIMIT}; past it, {selectors.PATIENT_COUNT_LIMIT} "
    "(see count_is_lower_bound)."
)
LOWER_BOUND_HELP = (
    f"True when more than {selectors.PATIENT_COUNT_LIMIT} patients match: `count` is then a lower bound (a count "
    "past it would visit every match); `next` still leads on while there are more."
)


class ApiActorMixin:
    def actor(self):
        if not hasattr(self, "_actor"):
            self._actor = actor_from_request(self.request, channel="api")
        return self._actor


@extend_schema_view(
    post=extend_schema(
        request=PatientWriteSerializer, responses={201: PatientSerializer, 409: PatientDuplicatesSerializer}
    )
)
class PatientListCreateView(ApiActorMixin, generics.ListCreateAPIView):
    serializer_class = PatientSerializer
    pagination_class = PatientPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = PatientFilter

    def get_queryset(self):
        return selectors.patient_queryset(actor=self.actor(), search=self.request.query_params.get("search"))

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        terms = request.query_params
        kinds = selectors.search_kinds(search=terms.get("search"), birth_date=terms.get("birth_date"))
        selectors.patients_listed(actor=self.actor(), patients=page, kinds=kinds)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = PatientWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        actor = self.actor()
        if not values.pop("allow_duplicate", False) and actor.clinic is not None:
            duplicates = services.patient_duplicates(
                clinic=actor.clinic,
                family_name=values["family_name"],
                given_name=values["given_name"],
                birth_date=values["birth_date"],
                snils=values.get("snils", ""),
                oms_policy=values.get("oms_policy", ""),
            )
            if duplicates:
                selectors.patients_listed(actor=actor, patients=duplicates, searched=True)
                return Response(
                    {
                        "detail": _(
                            "A patient with the same name and birth date, SNILS or OMS policy is "
                            "already registered. Open that record, or send allow_duplicate: true."
                        ),
                        "duplicates": PatientSerializer(duplicates, many=True).data,
                    },
                    status=status.HTTP_409_CONFLICT,
                )
        patient = services.patient_create(actor=actor, **values)
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)


class PatientSearchView(ApiActorMixin, generics.GenericAPIView):
    """The search of `GET /patients/` with the terms in a JSON body, so no name or SNILS is ever in a URL."""

    serializer_class = PatientSerializer
    pagination_class = PatientPagination

    @extend_schema(
        operation_id="patients_search",
        request=PatientSearchSerializer,
        responses={
            200: inline_serializer(
                "PatientSearchPage",
                {
                    "count": serializers.IntegerField(help_text=COUNT_HELP),
                    "count_is_lower_bound": serializers.BooleanField(help_text=LOWER_BOUND_HELP),
                    "next": serializers.URLField(allow_null=True, help_text="POST the same body to it."),
                    "previous": serializers.URLField(allow_null=True),
                    "results": PatientSerializer(many=True),
                },
            ),
            400: None,
        },
        description="Patients of the GP's clinic matching every term given (none: everyone), 25 a page; "
        "`?page=N` (and `page_size`) in the URL, the terms only in the body.",
    )
    def post(self, request):
        data = PatientSearchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        terms = data.validated_data
        page = self.paginate_queryset(selectors.patient_search(actor=self.actor(), **terms))
        selectors.patients_listed(actor=self.actor(), patients=page, kinds=selectors.search_kinds(**terms))
        return self.get_paginated_response(PatientSerializer(page, many=True).data)


@extend_schema_view(patch=extend_schema(request=PatientWriteSerializer, responses=PatientSerializer))
class PatientDetailView(ApiActorMixin, generics.RetrieveUpdateAPIView):
    serializer_class = PatientSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        action = "view" if self.request.method in ("GET", "HEAD") else "open_for_update"
        return selectors.patient_get(actor=self.actor(), patient_id=self.kwargs["pk"], action=action)

    def partial_update(self, request, *args, **kwargs):
        patient = self.get_object()
        data = PatientWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {name: value for name, value in data.validated_data.items() if name != "allow_duplicate"}
        patient = services.patient_update(actor=self.actor(), patient=patient, **changes)
        return Response(PatientSerializer(patient).data)


class PatientEncountersView(ApiActorMixin, generics.ListAPIView):
    """The patient's encounters, newest first."""

    serializer_class = EncounterSerializer
    pagination_class = Pagination

    def get_queryset(self):
        patient = selectors.patient_get(actor=self.actor(), patient_id=self.kwargs["pk"])
        return selectors.encounters_of_patient(actor=self.actor(), patient=patient).select_related("patient")


# The schema is set on the HTTP methods: drf-spectacular reads a generic view's post/patch, not create/partial_update,
# and a generated client must see every field an encounter takes.
@extend_schema_view(post=extend_schema(request=EncounterWriteSerializer, responses={201: EncounterSerializer}))
class EncounterCreateView(ApiActorMixin, generics.CreateAPIView):
    serializer_class = EncounterSerializer

    def create(self, request, *args, **kwargs):
        patient_id = request.data.get("patient") if isinstance(request.data, dict) else None
        patient = None
        if isinstance(patient_id, int) and not isinstance(patient_id, bool):
            # Another clinic's patient is a 404, exactly like one that does not exist.
            patient = selectors.patient_get(actor=self.actor(), patient_id=patient_id, action="open_for_update")
        data = EncounterWriteSerializer(data=request.data, context={"patient": patient})
        valid = data.is_valid()
        errors = dict(data.errors) if not valid else {}
        if patient is None:
            errors["patient"] = ["This field is required." if patient_id is None else "Must be a patient id."]
        if errors:
            raise ValidationError(errors)
        values = {key: value for key, value in data.validated_data.items() if key != "patient"}
        encounter = services.encounter_create(actor=self.actor(), patient=patient, data=values)
        return Response(EncounterSerializer(encounter).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    patch=extend_schema(request=EncounterWriteSerializer, responses={200: EncounterSerializer, 409: None})
)
class EncounterDetailView(ApiActorMixin, generics.RetrieveUpdateAPIView):
    serializer_class = EncounterSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        action = "view" if self.request.method in ("GET", "HEAD") else "open_for_update"
        return selectors.encounter_get(actor=self.actor(), encounter_id=self.kwargs["pk"], action=action)

    def partial_update(self, request, *args, **kwargs):
        encounter = self.get_object()
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        if "patient" in request.data and request.data["patient"] != encounter.patient_id:
            raise ValidationError({"patient": ["An encounter cannot be moved to another patient."]})
        # A PATCH must leave a valid case behind: validate the stored encounter with the changes applied.
        merged = {**encounter_primitive(encounter), **request.data}
        data = EncounterWriteSerializer(data=merged, context={"patient": encounter.patient})
        data.is_valid(raise_exception=True)
        changes = {key: data.validated_data.get(key) for key in request.data if key != "patient"}
        with transaction.atomic():
            encounter = services.encounter_update(actor=self.actor(), encounter=encounter, data=changes)
        return Response(EncounterSerializer(encounter).data)
