from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from workups import selectors
from workups.serializers import (
    WorkupEvaluateSerializer,
    VocabularySerializer,
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
                value={"age": ["Ensure this value is less than or equal to 120."],
                       "pregnant": ["A male patient cannot be pregnant."],
                       "findings": {"rf_fevr": ["Unknown finding code 'rf_fevr'."]}},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request):
        serializer = WorkupEvaluateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        case = case_from_values(values, sex=values["sex"], age=values["age"])
        return Response(selectors.workup_preview(case=case))


class VocabularyView(APIView):
    @extend_schema(operation_id="vocabulary", summary="Every code with its name and group", responses=VocabularySerializer)
    def get(self, request):
        return Response(selectors.vocabulary_list())
