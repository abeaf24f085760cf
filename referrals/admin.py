"""Referral letters, requisitions and leaflets in the admin: read-only (they change only through the app's
lifecycle), scoped to the staff member's clinic and audited (clinic.admin)."""

from django.contrib import admin

from clinic.admin import AuditedReads
from referrals.models import Leaflet, Referral, Requisition
from workups.admin import ReadOnly


@admin.register(Referral)
class ReferralAdmin(ReadOnly, AuditedReads, admin.ModelAdmin):
    list_display = ["id", "encounter", "specialty", "urgency", "status", "pdf_status", "created_at"]
    list_select_related = ["encounter"]
    list_filter = ["status", "urgency", "pdf_status"]
    raw_id_fields = ["encounter", "recommendation", "created_by"]


@admin.register(Requisition)
class RequisitionAdmin(ReadOnly, AuditedReads, admin.ModelAdmin):
    list_display = ["id", "encounter", "language", "pdf_status", "created_at"]
    list_select_related = ["encounter"]
    list_filter = ["pdf_status"]
    raw_id_fields = ["encounter", "workup", "created_by"]


@admin.register(Leaflet)
class LeafletAdmin(ReadOnly, AuditedReads, admin.ModelAdmin):
    list_display = ["id", "encounter", "language", "pdf_status", "created_at"]
    list_select_related = ["encounter"]
    list_filter = ["pdf_status"]
    raw_id_fields = ["encounter", "workup", "created_by"]
