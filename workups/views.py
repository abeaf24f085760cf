from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic import selectors as record_selectors
from clinic.api_views import ApiActorMixin
from clinic.serializers import EncounterSerializer
from workups import selectors, services
from workups.models import Workup, WorkupItem, WorkupReferral
from workups.serializers import (
    AcknowledgeManySerializer,
    AcknowledgeSerializer,
    DecisionSerializer,
    FinalizeSerializer,
    ItemAddSerializer,
    ReferralAddSerializer,
    ResultEnterSerializer,
    StoredItemSerializer,
    StoredReferralSerializer,
    StoredResultSerializer,
    StoredWorkupSerializer,
    VocabularySerializer,
    WorkupEvaluateSerializer,
    WorkupResultSerializer,
    case_from_values,
)

_EXAMPLE_CASE = {
    "sex": "female",
    "age": 38,
    "pregnant": False,
    "duration_days": 10,
    "temperature_c": 37.0,
    "findings": {
        "loc_lumbar": True,
        "sx_urinary_frequency": True,
        "ex_cva_tenderness": True,
        "rf_saddle_anesthesia": False,
        "rf_bladder_dysfunction": False,
        "rf_fever": False,
    },
}


class WorkupEvaluateView(APIView):
    """Stateless: nothing about the patient is stored or logged."""

    @extend_schema(
        operation_id="workup_evaluate",
        summary="Recommend the workup and referrals for one case",
        request=WorkupEvaluateSerializer,
        responses={
            200: WorkupResultSerializer,
            400: OpenApiResponse(description="Every problem named by field; findings problems by finding code."),
            401: OpenApiResponse(description="No or bad token."),
        },
        examples=[
            OpenApiExample("Lumbar numbness with urinary symptoms", value=_EXAMPLE_CASE, request_only=True),
            OpenApiExample(
                "Problems",
                value={
                    "age": ["Ensure this value is less than or equal to 120."],
                    "pregnant": ["A male patient cannot be pregnant."],
                    "findings": {"rf_fevr": ["Unknown finding code 'rf_fevr'."]},
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request):
        values = WorkupEvaluateSerializer.validated_values(request.data)
        case = case_from_values(values, sex=values["sex"], age=values["age"])
        return Response(selectors.workup_preview(case=case))


class VocabularyView(APIView):
    @extend_schema(
        operation_id="vocabulary", summary="Every code with its name and group", responses=VocabularySerializer
    )
    def get(self, request):
        return Response(selectors.vocabulary_list())


# -- stored workups and decisions ------------------------------------------------------------------


class EncounterWorkupView(ApiActorMixin, APIView):
    @extend_schema(operation_id="encounter_workup_latest", responses={200: StoredWorkupSerializer, 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        workup = selectors.workup_latest(actor=self.actor(), encounter=encounter)
        if workup is None:
            raise Http404("No workup has been generated for this encounter yet.")
        return Response(selectors.workup_representation(workup=workup, encounter=encounter))

    @extend_schema(
        operation_id="encounter_workup_generate", request=None, responses={201: StoredWorkupSerializer, 409: None}
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        services.workup_generate(actor=self.actor(), encounter=encounter)
        workup = selectors.workup_latest(actor=self.actor(), encounter=encounter)
        return Response(
            selectors.workup_representation(workup=workup, encounter=encounter), status=status.HTTP_201_CREATED
        )


class EncounterWorkupAcceptAllView(ApiActorMixin, APIView):
    """Accept every recommendation of the latest workup still pending; declined ones stay declined."""

    @extend_schema(
        operation_id="encounter_workup_accept_all",
        request=None,
        responses={200: StoredWorkupSerializer, 404: None, 409: None},
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        workup = selectors.workup_latest(actor=self.actor(), encounter=encounter)
        if workup is None:
            raise Http404("No workup has been generated for this encounter yet.")
        services.workup_accept_all(actor=self.actor(), workup=workup)
        workup = selectors.workup_latest(actor=self.actor(), encounter=encounter)
        return Response(selectors.workup_representation(workup=workup, encounter=encounter))


class _RecommendationView(ApiActorMixin, APIView):
    model = None
    row_serializer = None

    def _row(self, pk):
        return selectors.recommendation_get(actor=self.actor(), model=self.model, pk=pk)

    def _out(self, row):
        return selectors.recommendation_row(row)

    def get(self, request, pk):
        return Response(self._out(self._row(pk)))

    def patch(self, request, pk):
        row = self._row(pk)
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.recommendation_decide(
            actor=self.actor(),
            recommendation=row,
            decision=data.validated_data["decision"],
            reason=data.validated_data.get("reason", ""),
        )
        return Response(self._out(row))


class WorkupItemDetailView(_RecommendationView):
    model = WorkupItem

    @extend_schema(operation_id="workup_item_get", responses=StoredItemSerializer)
    def get(self, request, pk):
        return super().get(request, pk)

    @extend_schema(
        operation_id="workup_item_decide", request=DecisionSerializer, responses={200: StoredItemSerializer, 409: None}
    )
    def patch(self, request, pk):
        return super().patch(request, pk)


class WorkupReferralDetailView(_RecommendationView):
    model = WorkupReferral

    @extend_schema(operation_id="workup_referral_get", responses=StoredReferralSerializer)
    def get(self, request, pk):
        return super().get(request, pk)

    @extend_schema(
        operation_id="workup_referral_decide",
        request=DecisionSerializer,
        responses={200: StoredReferralSerializer, 409: None},
    )
    def patch(self, request, pk):
        return super().patch(request, pk)


def _workup_of_clinic(actor, workup_id):
    if actor.clinic is None:
        raise Http404("Not found.")
    try:
        return Workup.objects.select_related("encounter").get(pk=workup_id, encounter__clinic=actor.clinic)
    except Workup.DoesNotExist:
        raise Http404("Not found.") from None


class WorkupItemAddView(ApiActorMixin, APIView):
    """Order a catalogue test by hand (accepted by the act of adding it)."""

    @extend_schema(
        operation_id="workup_item_add", request=ItemAddSerializer, responses={201: StoredItemSerializer, 409: None}
    )
    def post(self, request):
        data = ItemAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workup = _workup_of_clinic(self.actor(), values["workup"])
        item = services.workup_item_add(
            actor=self.actor(),
            workup=workup,
            code=values["code"],
            urgency=values.get("urgency", "routine"),
            rationale=values.get("rationale", ""),
        )
        return Response(selectors.recommendation_row(item), status=status.HTTP_201_CREATED)


class WorkupReferralAddView(ApiActorMixin, APIView):
    """Refer to a specialist by hand (accepted by the act of adding it)."""

    @extend_schema(
        operation_id="workup_referral_add",
        request=ReferralAddSerializer,
        responses={201: StoredReferralSerializer, 409: None},
    )
    def post(self, request):
        data = ReferralAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workup = _workup_of_clinic(self.actor(), values["workup"])
        referral = services.workup_referral_add(
            actor=self.actor(),
            workup=workup,
            specialty=values["specialty"],
            urgency=values.get("urgency", "routine"),
            reason=values.get("reason", ""),
        )
        return Response(selectors.recommendation_row(referral), status=status.HTTP_201_CREATED)


# -- results, the follow-up review and acknowledgement (GUIDANCE 6 and 7) --------------------------


class EncounterResultsView(ApiActorMixin, APIView):
    """The results of an encounter: entered at any time, also after it is finalized."""

    @extend_schema(operation_id="encounter_results", responses={200: StoredResultSerializer(many=True), 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        rows = selectors.results_of_encounter(actor=self.actor(), encounter=encounter)
        return Response([selectors.result_row(row) for row in rows])

    @extend_schema(
        operation_id="encounter_result_enter",
        request=ResultEnterSerializer,
        responses={201: StoredResultSerializer, 400: None, 404: None},
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        data = ResultEnterSerializer(data=request.data, context={"encounter": encounter})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.result_enter(
            actor=self.actor(),
            encounter=encounter,
            code=values["code"],
            value=values["value"],
            performed_on=values.get("performed_on"),
            note=values.get("note", ""),
        )
        return Response(selectors.result_row(result), status=status.HTTP_201_CREATED)


class EncounterResultsReviewView(ApiActorMixin, APIView):
    """Store the follow-up workup: the encounter's findings plus its current results."""

    @extend_schema(
        operation_id="encounter_results_review",
        request=None,
        responses={201: StoredWorkupSerializer, 200: StoredWorkupSerializer, 400: None, 404: None},
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        if request.data:
            from rest_framework.exceptions import ValidationError

            raise ValidationError(
                {name: ["Unknown field."] for name in request.data}
                if isinstance(request.data, dict)
                else {"non_field_errors": ["Send no body."]}
            )
        workup, created = services.workup_review(actor=self.actor(), encounter=encounter)
        workup = selectors.workup_latest(actor=self.actor(), encounter=encounter)
        return Response(
            selectors.workup_representation(workup=workup, encounter=encounter),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ResultDetailView(ApiActorMixin, APIView):
    @extend_schema(operation_id="result_get", responses={200: StoredResultSerializer, 404: None})
    def get(self, request, pk):
        return Response(selectors.result_row(selectors.result_get(actor=self.actor(), result_id=pk)))


_CONFLICT = inline_serializer(
    "AcknowledgeConflict",
    {
        "detail": serializers.CharField(),
        "results": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Each result that cannot be acknowledged (by id) and why.",
        ),
    },
)


class ResultAcknowledgeView(ApiActorMixin, APIView):
    """A GP signs an abnormal result off with the action taken. A normal, superseded or already
    acknowledged result is a 409: the body is fine, the result's state makes the act impossible."""

    @extend_schema(
        operation_id="result_acknowledge",
        request=AcknowledgeSerializer,
        responses={200: StoredResultSerializer, 400: None, 404: None, 409: None},
    )
    def post(self, request, pk):
        result = selectors.result_get(actor=self.actor(), result_id=pk, action="open_for_update")
        data = AcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = services.result_acknowledge(actor=self.actor(), result=result, note=data.validated_data["note"])
        except services.NotAcknowledgeable as error:
            return Response({"detail": error.message}, status=status.HTTP_409_CONFLICT)
        return Response(selectors.result_row(result))


class EncounterResultsAcknowledgeView(ApiActorMixin, APIView):
    """A GP signs several abnormal results of one encounter off with one note (a panel with three values out
    of range), all or none. A result that is normal, superseded or already acknowledged is a 409 naming it
    (`results`: id → why), and none is acknowledged."""

    @extend_schema(
        operation_id="encounter_results_acknowledge",
        summary="Acknowledge several abnormal results of an encounter with one note",
        request=AcknowledgeManySerializer,
        responses={
            200: StoredResultSerializer(many=True),
            400: OpenApiResponse(
                description="Every problem by field: `results` (not a list, empty, an id that is not a whole "
                "number, listed twice, or not a result of this encounter) and `note` (missing, blank, too long, "
                "control characters)."
            ),
            404: OpenApiResponse(description="No such encounter in your clinic."),
            409: _CONFLICT,
        },
        examples=[
            OpenApiExample(
                "A panel signed off", value={"results": [41, 42, 43], "note": "Iron started, CBC in 4 weeks"}
            ),
            OpenApiExample(
                "Problems",
                value={"results": ["Listed more than once: 42."], "note": ["This field is required."]},
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "One already signed off",
                value={
                    "detail": "Nothing was acknowledged: result 42 cannot be.",
                    "results": {"42": ["This result has been acknowledged already."]},
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        data = AcknowledgeManySerializer(data=request.data, context={"encounter": encounter})
        data.is_valid(raise_exception=True)
        try:
            results = services.results_acknowledge(
                actor=self.actor(),
                encounter=encounter,
                results=data.validated_data["results"],
                note=data.validated_data["note"],
            )
        except services.NotAcknowledgeable as error:
            return Response(
                {"detail": error.message, "results": {str(pk): [message] for pk, message in error.problems.items()}},
                status=status.HTTP_409_CONFLICT,
            )
        return Response([selectors.result_row(result) for result in results])


class EncounterFinalizeView(ApiActorMixin, generics.GenericAPIView):
    serializer_class = EncounterSerializer

    @extend_schema(request=FinalizeSerializer, responses={200: EncounterSerializer, 400: None, 409: None})
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        data = FinalizeSerializer(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        encounter = services.encounter_finalize(
            actor=self.actor(), encounter=encounter, reason=data.validated_data.get("reason", "")
        )
        return Response(EncounterSerializer(encounter).data)
