from django.contrib import admin

from workups.models import Workup, WorkupItem, WorkupReferral


class WorkupItemInline(admin.TabularInline):
    model = WorkupItem
    extra = 0
    fields = ["code", "urgency", "decision", "decision_reason", "added_by_clinician"]
    readonly_fields = fields
    can_delete = False


class WorkupReferralInline(admin.TabularInline):
    model = WorkupReferral
    extra = 0
    fields = ["specialty", "urgency", "decision", "decision_reason", "added_by_clinician"]
    readonly_fields = fields
    can_delete = False


@admin.register(Workup)
class WorkupAdmin(admin.ModelAdmin):
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
