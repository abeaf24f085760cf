import heapq

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, status
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic import selectors as record_selectors
from clinic.api_views import ApiActorMixin
from clinic.parsers import StrictJSONParser
from clinic.serializers import EncounterSerializer
from referrals import documents, selectors, services, worklist
from referrals.models import PdfStatus
from referrals.serializers import (
    DocumentRequestSerializer,
    LeafletSerializer,
    ReferralCreateSerializer,
    ReferralDetailSerializer,
    ReferralSerializer,
    ReferralStatusSerializer,
    ReferralUpdateSerializer,
    RequisitionSerializer,
    UnfinishedSerializer,
)
from workups import selectors as workup_selectors
from workups.models import WorkupReferral

RETRY_AFTER_SECONDS = 2
PDF_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.BINARY, description="application/pdf"),
    409: OpenApiResponse(description="Not rendered yet (Retry-After says when to ask again), or rendering failed."),
}


class PdfNegotiation(DefaultContentNegotiation):
    """A download asked for by its type (Accept: application/pdf) is the file; what is said instead (not
    rendered yet, not found, not allowed) is said in JSON, the API's one language for that."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            if "application/pdf" not in request.META.get("HTTP_ACCEPT", ""):
                raise
            return renderers[0], renderers[0].media_type


def pdf_response(document, *, filename=None):
    """The PDF when ready (named by kind, number, date and specialty: never by the patient); otherwise 409,
    with Retry-After while it is on its way."""
    filename = filename or documents.download_name(document)
    if document.pdf_status == PdfStatus.READY and document.pdf_file:
        response = FileResponse(document.pdf_file.open("rb"), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        response["Cache-Control"] = "private, no-store"
        return response
    body = {"pdf_status": document.pdf_status}
    if document.pdf_status == PdfStatus.FAILED:
        body["detail"] = "Rendering failed; ask for it again with POST."
        return Response(body, status=status.HTTP_409_CONFLICT)
    body["detail"] = "The PDF is being rendered; ask again shortly."
    return Response(body, status=status.HTTP_409_CONFLICT, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class ReferralCreateView(ApiActorMixin, APIView):
    @extend_schema(
        operation_id="referral_create", request=ReferralCreateSerializer, responses={201: ReferralSerializer}
    )
    def post(self, request):
        data = ReferralCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        actor = self.actor()
        recommendation = None
        if "recommendation" in values:
            row = workup_selectors.recommendation_get(
                actor=actor, model=WorkupReferral, pk=values.pop("recommendation")
            )
            recommendation, encounter = row, row.workup.encounter
            values.pop("encounter", None)
        else:
            encounter = record_selectors.encounter_get(
                actor=actor, encounter_id=values.pop("encounter"), action="open_for_update"
            )
        referral = services.referral_create(actor=actor, encounter=encounter, recommendation=recommendation, **values)
        referral.refresh_from_db()  # rendered already when tasks run in-process
        return Response(ReferralSerializer(referral).data, status=status.HTTP_201_CREATED)


class ReferralDetailView(ApiActorMixin, APIView):
    @extend_schema(operation_id="referral_get", responses=ReferralDetailSerializer)
    def get(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk)
        return Response(ReferralDetailSerializer(referral).data)

    @extend_schema(
        operation_id="referral_update", request=ReferralUpdateSerializer, responses={200: ReferralSerializer, 409: None}
    )
    def patch(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="open_for_update")
        data = ReferralUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        referral = services.referral_update(actor=self.actor(), referral=referral, **data.validated_data)
        referral.refresh_from_db()
        return Response(ReferralSerializer(referral).data)


class ReferralIssueView(ApiActorMixin, APIView):
    @extend_schema(operation_id="referral_issue", request=None, responses=ReferralSerializer)
    def post(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="open_for_update")
        return Response(ReferralSerializer(services.referral_issue(actor=self.actor(), referral=referral)).data)


class ReferralPdfView(ApiActorMixin, APIView):
    content_negotiation_class = PdfNegotiation

    @extend_schema(operation_id="referral_pdf", responses=PDF_RESPONSES)
    def get(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="download")
        return pdf_response(referral)

    @extend_schema(operation_id="referral_pdf_rerender", request=None, responses={202: ReferralSerializer})
    def post(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="open_for_update")
        services.document_rerender(actor=self.actor(), document=referral)
        referral.refresh_from_db()
        return Response(ReferralSerializer(referral).data, status=status.HTTP_202_ACCEPTED)


class EncounterReferralsView(ApiActorMixin, APIView):
    @extend_schema(operation_id="encounter_referrals", responses=ReferralSerializer(many=True))
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        referrals = selectors.referrals_of_encounter(actor=self.actor(), encounter=encounter)
        return Response(ReferralSerializer(referrals, many=True).data)


def _document_request(request) -> dict:
    """The optional body of a requisition or leaflet request, checked (400 naming the field)."""
    data = DocumentRequestSerializer(data=request.data if request.data else {})
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class EncounterRequisitionView(ApiActorMixin, APIView):
    @extend_schema(
        operation_id="requisition_request", request=DocumentRequestSerializer, responses={202: RequisitionSerializer}
    )
    def post(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        values = _document_request(request)
        requisition = services.requisition_request(actor=self.actor(), encounter=encounter, **values)
        requisition.refresh_from_db()
        return Response(RequisitionSerializer(requisition).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(operation_id="requisition_latest", responses={200: RequisitionSerializer, 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        requisition = selectors.requisition_latest(actor=self.actor(), encounter=encounter)
        if requisition is None:
            raise Http404("No requisition has been requested for this encounter.")
        return Response(RequisitionSerializer(requisition).data)


class EncounterRequisitionPdfView(ApiActorMixin, APIView):
    content_negotiation_class = PdfNegotiation

    @extend_schema(operation_id="requisition_pdf", responses={**PDF_RESPONSES, 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        requisition = selectors.requisition_latest(actor=self.actor(), encounter=encounter, action="download")
        if requisition is None:
            raise Http404("No requisition has been requested for this encounter.")
        return pdf_response(requisition)


class EncounterLeafletView(ApiActorMixin, APIView):
    @extend_schema(
        operation_id="leaflet_request", request=DocumentRequestSerializer, responses={202: LeafletSerializer}
    )
    def post(self, request, pk):
        """The patient leaflet (Памятка пациенту) of the latest workup: how to prepare for each accepted test,
        where to go and by when, and the warning signs. Rendered by a worker: fetch its PDF when ready."""
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        values = _document_request(request)
        leaflet = services.leaflet_request(actor=self.actor(), encounter=encounter, **values)
        leaflet.refresh_from_db()
        return Response(LeafletSerializer(leaflet).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(operation_id="leaflet_latest", responses={200: LeafletSerializer, 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        leaflet = selectors.leaflet_latest(actor=self.actor(), encounter=encounter)
        if leaflet is None:
            raise Http404("No leaflet has been requested for this encounter.")
        return Response(LeafletSerializer(leaflet).data)


class EncounterEmergencyView(ApiActorMixin, APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="encounter_emergency_documents",
        request=None,
        responses={
            201: inline_serializer(
                "EmergencyDocuments",
                {
                    "referrals": ReferralDetailSerializer(many=True, help_text="The draft letters made now."),
                    "leaflet": LeafletSerializer(),
                },
            ),
            400: None,
            404: None,
            409: OpenApiResponse(description="The encounter is finalized."),
        },
    )
    def post(self, request, pk):
        """The emergency path in one step (the browser's «Направить в стационар»): every recommendation of the
        emergency workup still pending is accepted, a draft letter is made for each accepted emergency referral
        without one, and the patient leaflet is requested. The letters are drafts, to be read and issued
        (`POST /api/v1/referrals/{id}/issue/`). A workup that is not an emergency is a 400; the body is empty."""
        if request.data:
            fields = sorted(request.data) if isinstance(request.data, dict) else []
            raise ValidationError({name: ["Unknown field."] for name in fields} or {"body": ["Send no body."]})
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="open_for_update")
        drafts, leaflet = services.emergency_documents_prepare(actor=self.actor(), encounter=encounter)
        return Response(
            {
                "referrals": ReferralDetailSerializer(drafts, many=True).data,
                "leaflet": LeafletSerializer(leaflet).data,
            },
            status=status.HTTP_201_CREATED,
        )


class EncounterLeafletPdfView(ApiActorMixin, APIView):
    content_negotiation_class = PdfNegotiation

    @extend_schema(operation_id="leaflet_pdf", responses={**PDF_RESPONSES, 404: None})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        leaflet = selectors.leaflet_latest(actor=self.actor(), encounter=encounter, action="download")
        if leaflet is None:
            raise Http404("No leaflet has been requested for this encounter.")
        return pdf_response(leaflet)


# -- the loop after issue, and the worklist (GUIDANCE 7) -------------------------------------------


class ReferralStatusView(ApiActorMixin, APIView):
    """Record what became of an issued referral: booked (appointment_at), completed (conclusion, and
    conclusion_pdf as multipart), cancelled or declined_by_patient (reason). An impossible transition is 409."""

    parser_classes = [StrictJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="referral_status",
        request={"application/json": ReferralStatusSerializer, "multipart/form-data": ReferralStatusSerializer},
        responses={200: ReferralDetailSerializer, 400: None, 404: None, 409: None},
    )
    def post(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="open_for_update")
        data = ReferralStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            referral = services.referral_status_change(actor=self.actor(), referral=referral, **data.validated_data)
        except services.TransitionRefused as error:
            return Response({"detail": error.message}, status=status.HTTP_409_CONFLICT)
        referral.refresh_from_db()
        return Response(ReferralDetailSerializer(referral).data)


class ReferralConclusionPdfView(ApiActorMixin, APIView):
    content_negotiation_class = PdfNegotiation

    @extend_schema(
        operation_id="referral_conclusion_pdf",
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="application/pdf"), 404: None},
    )
    def get(self, request, pk):
        referral = selectors.referral_get(actor=self.actor(), referral_id=pk, action="download")
        if not referral.conclusion_pdf:
            raise Http404("No conclusion PDF has been uploaded for this referral.")
        response = FileResponse(referral.conclusion_pdf.open("rb"), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="conclusion-{referral.pk}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


class _WorklistRow(drf_serializers.Serializer):
    kind = drf_serializers.ChoiceField(choices=["result", "test", "referral"])
    id = drf_serializers.IntegerField(help_text="The result's, test's (workup item's) or referral's id, by kind.")
    encounter = drf_serializers.IntegerField()
    patient = inline_serializer(
        "WorklistPatient", {"id": drf_serializers.IntegerField(), "name": drf_serializers.CharField()}
    )
    code = drf_serializers.CharField(required=False, help_text="Results and tests.")
    specialty = drf_serializers.CharField(required=False, help_text="Referrals.")
    name = drf_serializers.CharField()
    urgency = drf_serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    due = drf_serializers.DateField()
    overdue = drf_serializers.BooleanField()
    overdue_at = drf_serializers.DateTimeField(allow_null=True, help_text="When the periodic task marked it.")
    # By kind (each row has the fields of its kind only).
    value = drf_serializers.JSONField(required=False, help_text="Results: a number or a boolean.")
    unit = drf_serializers.CharField(required=False, allow_blank=True, help_text="Results.")
    flag = drf_serializers.CharField(required=False, help_text="Results.")
    workup = drf_serializers.IntegerField(required=False, help_text="Tests.")
    accepted_at = drf_serializers.DateTimeField(required=False, allow_null=True, help_text="Tests.")
    status = drf_serializers.ChoiceField(choices=["issued", "booked"], required=False, help_text="Referrals.")
    issued_at = drf_serializers.DateTimeField(required=False, allow_null=True, help_text="Referrals.")
    appointment_at = drf_serializers.DateTimeField(required=False, allow_null=True, help_text="Referrals.")
    appointment_passed = drf_serializers.BooleanField(
        required=False,
        help_text="Referrals: booked, and the appointment's day (the clinic's) is over with no conclusion recorded: "
        "record the conclusion, or close it if the patient did not attend. Such a referral is overdue from the day "
        "after the appointment.",
    )


class _WorklistPage(drf_serializers.Serializer):
    count = drf_serializers.IntegerField(help_text="Rows in all (of `kind`, when given).")
    next = drf_serializers.URLField(allow_null=True)
    previous = drf_serializers.URLField(allow_null=True)
    results = _WorklistRow(many=True)


class _PageQuery(drf_serializers.Serializer):
    page = drf_serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = drf_serializers.IntegerField(
        min_value=1, max_value=worklist.MAX_PAGE_SIZE, required=False, default=worklist.PAGE_SIZE
    )


class _WorklistQuery(_PageQuery):
    kind = drf_serializers.ChoiceField(
        choices=["result", "test", "referral"],
        required=False,
        help_text="Only rows of this kind: unacknowledged abnormal results, awaited tests or open referrals.",
    )


class _WorklistPagination(PageNumberPagination):
    page_size = worklist.PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = worklist.MAX_PAGE_SIZE


class WorklistView(ApiActorMixin, APIView):
    """The clinic's worklist, a page at a time: unacknowledged abnormal results, awaited tests and open
    referrals in one list, overdue first, then by urgency, then due date."""

    @extend_schema(
        operation_id="worklist",
        parameters=[_WorklistQuery],
        responses={200: _WorklistPage, 400: None, 404: OpenApiResponse(description="No such page.")},
        description="One list of every open row of the clinic (each row's `kind` says which), overdue first, "
        f"then by urgency (emergency, urgent, routine), then due date; {worklist.PAGE_SIZE} a page (`page_size` "
        f"up to {worklist.MAX_PAGE_SIZE}), `next` and `previous` link the pages. `kind` keeps one kind of row.",
    )
    def get(self, request):
        unknown = set(request.query_params) - set(_WorklistQuery().fields)
        if unknown:
            raise ValidationError({name: ["Unknown parameter."] for name in sorted(unknown)})
        query = _WorklistQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        services.overdue_mark_in_process()
        entries = worklist.worklist_get(actor=self.actor())
        kind = query.validated_data.get("kind")
        wanted = [section for section in worklist.SECTIONS if kind in (None, worklist.KINDS[section])]
        paginator = _WorklistPagination()
        page = paginator.paginate_queryset(list(heapq.merge(*(entries[section] for section in wanted))), request)
        rows = worklist.worklist_show(actor=self.actor(), entries=page)
        return paginator.get_paginated_response(_WorklistRow(rows, many=True).data)


class WorklistCountsView(ApiActorMixin, APIView):
    @extend_schema(
        operation_id="worklist_counts",
        responses=inline_serializer(
            "WorklistCounts",
            {
                "overdue": drf_serializers.IntegerField(),
                "unacknowledged": drf_serializers.IntegerField(),
                "attention": drf_serializers.IntegerField(
                    help_text="Rows overdue or unacknowledged, each counted once (the badge)."
                ),
            },
        ),
    )
    def get(self, request):
        if request.query_params:
            raise ValidationError({name: ["Unknown parameter."] for name in request.query_params})
        services.overdue_mark_in_process()
        return Response(worklist.worklist_counts(actor=self.actor()))


class _LeftOpenRow(drf_serializers.Serializer):
    id = drf_serializers.IntegerField(help_text="The encounter's id.")
    patient = inline_serializer(
        "LeftOpenPatient", {"id": drf_serializers.IntegerField(), "name": drf_serializers.CharField()}
    )
    visit_date = drf_serializers.DateField()
    disposition = drf_serializers.ChoiceField(
        choices=["emergency", "urgent", "routine", "observe"],
        allow_null=True,
        help_text="Its latest workup's; null before any workup.",
    )

    def to_representation(self, encounter):
        return {
            "id": encounter.pk,
            "patient": {"id": encounter.patient_id, "name": encounter.patient.full_name},
            "visit_date": encounter.visit_date.isoformat(),
            "disposition": encounter.disposition,
        }


class _LeftOpenPage(drf_serializers.Serializer):
    count = drf_serializers.IntegerField()
    next = drf_serializers.URLField(allow_null=True)
    previous = drf_serializers.URLField(allow_null=True)
    results = _LeftOpenRow(many=True)


class WorklistLeftOpenView(ApiActorMixin, APIView):
    """The clinic's encounters still drafts after their visit day, oldest first."""

    @extend_schema(
        operation_id="worklist_encounters_left_open",
        parameters=[_PageQuery],
        responses={200: _LeftOpenPage, 400: None, 404: OpenApiResponse(description="No such page.")},
        description="Encounters of the clinic not finalized after their visit day (the clinic's day), oldest first, "
        "with the latest workup's disposition: consultations whose workup may never have been acted on. "
        f"{worklist.PAGE_SIZE} a page (`page_size` up to {worklist.MAX_PAGE_SIZE}).",
    )
    def get(self, request):
        unknown = set(request.query_params) - set(_PageQuery().fields)
        if unknown:
            raise ValidationError({name: ["Unknown parameter."] for name in sorted(unknown)})
        _PageQuery(data=request.query_params).is_valid(raise_exception=True)
        paginator = _WorklistPagination()
        page = paginator.paginate_queryset(worklist.encounters_left_open(actor=self.actor()), request)
        worklist.encounters_left_open_shown(actor=self.actor(), encounters=page)
        return paginator.get_paginated_response(_LeftOpenRow(page, many=True).data)


class EncounterUnfinishedView(ApiActorMixin, generics.GenericAPIView):
    """What is still open before finalizing: the same list the browser asks the GP to confirm."""

    serializer_class = EncounterSerializer

    @extend_schema(operation_id="encounter_unfinished", responses={200: UnfinishedSerializer})
    def get(self, request, pk):
        encounter = record_selectors.encounter_get(actor=self.actor(), encounter_id=pk)
        return Response(selectors.encounter_unfinished(encounter=encounter))
