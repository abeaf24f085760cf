from django.urls import reverse
from rest_framework import serializers

from referrals.models import Referral, Requisition
from workups.engine import get_knowledge_base
from workups.serializers import StrictChoiceField, StrictIntegerField, StrictSerializer, add_error


class ReferralCreateSerializer(StrictSerializer):
    """Either `recommendation` (an accepted workup referral id), or `encounter` with the referral's fields."""

    recommendation = StrictIntegerField(required=False, help_text="An accepted workup referral: the rest is taken from it.")
    encounter = StrictIntegerField(required=False)
    specialty = StrictChoiceField(choices=sorted(get_knowledge_base().vocabulary.specialties), required=False)
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    question = serializers.CharField(required=False, allow_blank=True, max_length=4000)

    def check(self, values, errors):
        if "recommendation" in values:
            return
        for name in ("encounter", "specialty", "urgency", "reason"):
            if name not in values and name not in errors:
                add_error(errors, name, "This field is required (or give a recommendation).")


class ReferralUpdateSerializer(StrictSerializer):
    urgency = StrictChoiceField(choices=["emergency", "urgent", "routine"], required=False)
    reason = serializers.CharField(required=False, max_length=2000)
    question = serializers.CharField(required=False, allow_blank=True, max_length=4000)


def _pdf_fields(document, url):
    return {"pdf_status": document.pdf_status, "pdf_error": document.pdf_error or None,
            "pdf_url": url if document.pdf_status == "ready" else None,
            "pdf_rendered_at": document.pdf_rendered_at}


class ReferralSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text="The specialty's name.")
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Referral
        fields = ["id", "encounter", "recommendation", "specialty", "name", "urgency", "reason", "question", "status",
                  "issued_at", "created_at", "pdf_status", "pdf_error", "pdf_url", "pdf_rendered_at"]
        read_only_fields = fields

    def get_name(self, referral) -> str:
        return get_knowledge_base().vocabulary.specialties.get(referral.specialty, referral.specialty)

    def get_pdf_url(self, referral) -> str | None:
        return reverse("api-referral-pdf", args=[referral.pk]) if referral.pdf_status == "ready" else None


class RequisitionSerializer(serializers.ModelSerializer):
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Requisition
        fields = ["id", "encounter", "workup", "created_at", "pdf_status", "pdf_error", "pdf_url", "pdf_rendered_at"]
        read_only_fields = fields

    def get_pdf_url(self, requisition) -> str | None:
        if requisition.pdf_status != "ready":
            return None
        return reverse("api-encounter-requisition-pdf", args=[requisition.encounter_id])
