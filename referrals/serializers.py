from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework import serializers

from clinic.validation import StrictChoiceField, StrictIntegerField, StrictSerializer, add_error
from referrals import documents
from referrals.models import DocumentLanguage, Leaflet, Referral, Requisition
from workups.engine import get_knowledge_base
from workups.localized import current_kb
from workups.serializers import NoteField


class ReferralCreateSerializer(StrictSerializer):
    """Either `recommendation` (an accepted workup referral id), or `encounter` with the referral's fields."""

    recommendation = StrictIntegerField(
        required=False, help_text="An accepted workup referral: the rest is taken from it."
    )
    encounter = StrictIntegerField(required=False)
    specialty = StrictChoiceField(choices=sorted(get_knowledge_base().vocabulary.specialties), required=False)
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    question = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    language = StrictChoiceField(
        choices=DocumentLanguage.values,
        required=False,
        help_text="The letter's language: ru gives form 057/у. Default: the clinic's.",
    )
    icd10 = serializers.CharField(
        required=False,
        max_length=8,
        help_text=(
            "The provisional diagnosis, a WHO ICD-10 code: a category (M45) or a subcategory with its dot (M54.5). "
            "Default: from the rules behind the recommendation; R20.2 (paraesthesia) for a referral by hand."
        ),
    )
    diagnosis = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text=(
            "The diagnosis in words. Default: the knowledge base's name for the code, in the letter's language."
        ),
    )

    def check(self, values, errors):
        if "recommendation" in values:
            return
        for name in ("encounter", "specialty", "urgency", "reason"):
            if name not in values and name not in errors:
                add_error(errors, name, _("This field is required (or give a recommendation)."))


class ReferralUpdateSerializer(StrictSerializer):
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    reason = serializers.CharField(required=False, max_length=2000)
    question = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    language = StrictChoiceField(choices=DocumentLanguage.values, required=False)
    icd10 = serializers.CharField(required=False, max_length=8, help_text="A WHO ICD-10 code, e.g. M54.5 or M45.")
    diagnosis = serializers.CharField(required=False, allow_blank=True, max_length=300)


class DocumentRequestSerializer(StrictSerializer):
    """The body of a requisition or leaflet request: optional."""

    language = StrictChoiceField(
        choices=DocumentLanguage.values, required=False, help_text="The document's language. Default: the clinic's."
    )


def _pdf_fields(document, url):
    return {
        "pdf_status": document.pdf_status,
        "pdf_error": document.pdf_error or None,
        "pdf_url": url if document.pdf_status == "ready" else None,
        "pdf_rendered_at": document.pdf_rendered_at,
    }


class ReferralSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text="The specialty's name, in the letter's language.")
    number = serializers.SerializerMethodField(help_text="The document number printed on the letter.")
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Referral
        fields = [
            "id",
            "number",
            "encounter",
            "recommendation",
            "specialty",
            "name",
            "urgency",
            "reason",
            "question",
            "language",
            "icd10",
            "diagnosis",
            "status",
            "issued_at",
            "created_at",
            "pdf_status",
            "pdf_error",
            "pdf_url",
            "pdf_rendered_at",
            "appointment_at",
            "conclusion",
            "conclusion_pdf_url",
            "closed_at",
            "close_reason",
        ]
        read_only_fields = fields

    def get_name(self, referral) -> str:
        return current_kb(referral.language).vocabulary.specialties.get(referral.specialty, referral.specialty)

    def get_number(self, referral) -> str:
        return documents.document_number(referral)

    def get_pdf_url(self, referral) -> str | None:
        return reverse("api-referral-pdf", args=[referral.pk]) if referral.pdf_status == "ready" else None

    conclusion_pdf_url = serializers.SerializerMethodField(help_text="The specialist's conclusion as uploaded.")

    def get_conclusion_pdf_url(self, referral) -> str | None:
        return reverse("api-referral-conclusion-pdf", args=[referral.pk]) if referral.conclusion_pdf else None


class EncounterDocumentSerializer(serializers.ModelSerializer):
    """A requisition or a leaflet: the route its PDF is downloaded by is the subclass's `pdf_route`."""

    pdf_route: str
    number = serializers.SerializerMethodField(help_text="The document number printed on each page.")
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        fields = [
            "id",
            "number",
            "encounter",
            "workup",
            "language",
            "created_at",
            "pdf_status",
            "pdf_error",
            "pdf_url",
            "pdf_rendered_at",
        ]
        read_only_fields = fields

    def get_number(self, document) -> str:
        return documents.document_number(document)

    def get_pdf_url(self, document) -> str | None:
        if document.pdf_status != "ready":
            return None
        return reverse(self.pdf_route, args=[document.encounter_id])


class RequisitionSerializer(EncounterDocumentSerializer):
    pdf_route = "api-encounter-requisition-pdf"

    class Meta(EncounterDocumentSerializer.Meta):
        model = Requisition


class LeafletSerializer(EncounterDocumentSerializer):
    pdf_route = "api-encounter-leaflet-pdf"

    class Meta(EncounterDocumentSerializer.Meta):
        model = Leaflet


# -- the loop after issue --------------------------------------------------------------------------


class StrictDateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss][+HH:MM]")
        return super().to_internal_value(value)


class ReferralStatusSerializer(StrictSerializer):
    """JSON, or multipart/form-data when a PDF of the conclusion comes with it."""

    status = StrictChoiceField(choices=["booked", "completed", "cancelled", "declined_by_patient"])
    appointment_at = StrictDateTimeField(required=False, help_text="booked (required); completed (optional).")
    conclusion = NoteField(required=False, max_length=10000, help_text="completed: the specialist's conclusion.")
    conclusion_pdf = serializers.FileField(required=False, help_text="completed: the conclusion as a PDF, ≤ 10 MB.")
    reason = NoteField(required=False, max_length=2000, help_text="cancelled, declined_by_patient: why.")

    def check(self, values, errors):
        from referrals.services import referral_status_problems

        if "status" not in values:
            return
        problems = referral_status_problems(
            status=values["status"],
            appointment_at=values.get("appointment_at"),
            reason=values.get("reason", ""),
            conclusion=values.get("conclusion", ""),
            conclusion_pdf=values.get("conclusion_pdf"),
        )
        for name, messages in problems.items():
            if name not in errors:
                errors[name] = messages


class ReferralEventSerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.CharField(source="by.username")
    appointment_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    conclusion = serializers.CharField(allow_blank=True)
    conclusion_pdf = serializers.SerializerMethodField()

    def get_conclusion_pdf(self, event) -> bool:
        return bool(event.conclusion_pdf)


class ReferralDetailSerializer(ReferralSerializer):
    history = ReferralEventSerializer(
        source="events",
        many=True,
        read_only=True,
        help_text="Every status change since the referral was issued, oldest first.",
    )

    class Meta(ReferralSerializer.Meta):
        fields = [*ReferralSerializer.Meta.fields, "history"]
        read_only_fields = fields


class _UnfinishedRow(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    urgency = serializers.CharField(required=False)
    kind = serializers.CharField(required=False)


class _UnfinishedFlag(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class _UnfinishedResult(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    flag = serializers.CharField()


class UnfinishedSerializer(serializers.Serializer):
    pending_urgent = _UnfinishedRow(many=True, help_text="Emergency and urgent recommendations not yet decided.")
    referrals_without_letter = _UnfinishedRow(many=True, help_text="Accepted referrals with no issued letter.")
    draft_letters = _UnfinishedRow(many=True, help_text="Referral letters written but not issued.")
    red_flags_not_asked = _UnfinishedFlag(many=True)
    abnormal_results_unacknowledged = _UnfinishedResult(
        many=True, help_text="Current abnormal results no one has acknowledged yet (acknowledge them first)."
    )
    emergency_untouched = serializers.BooleanField(help_text="Finalizing needs a reason.")
    anything = serializers.BooleanField()
