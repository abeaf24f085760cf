"""Workups and results in the admin: read-only (they change only through the app's lifecycle), scoped to the
staff member's clinic and audited (clinic.admin)."""

from django.contrib import admin

from clinic.admin import AuditedReads, ClinicScoped
from workups.models import Result, Workup, WorkupItem, WorkupReferral


class ReadOnly:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WorkupItemInline(ClinicScoped, admin.TabularInline):
    model = WorkupItem
    extra = 0
    fields = ["code", "urgency", "decision", "decision_reason", "added_by_clinician"]
    readonly_fields = fields
    can_delete = False


class WorkupReferralInline(ClinicScoped, admin.TabularInline):
    model = WorkupReferral
    extra = 0
    fields = ["specialty", "urgency", "decision", "decision_reason", "added_by_clinician"]
    readonly_fields = fields
    can_delete = False


@admin.register(Workup)
class WorkupAdmin(AuditedReads, admin.ModelAdmin):
    list_display = ["id", "encounter", "disposition", "knowledge_base_version", "created_at", "created_by"]
    list_select_related = ["encounter", "created_by"]
    readonly_fields = [
        "encounter",
        "disposition",
        "knowledge_base_version",
        "case",
        "result",
        "created_at",
        "created_by",
    ]
    inlines = [WorkupItemInline, WorkupReferralInline]


@admin.register(Result)
class ResultAdmin(ReadOnly, AuditedReads, admin.ModelAdmin):
    list_display = ["id", "encounter", "code", "flag", "performed_on", "entered_at", "acknowledged_at"]
    list_select_related = ["encounter"]
    list_filter = ["flag"]
    raw_id_fields = ["encounter", "item", "superseded_by"]
