from django.contrib import admin

from clinic.models import AuditEvent, Clinic, ClinicHoliday, Encounter, Membership, Patient


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ClinicHolidayInline(admin.TabularInline):
    """Days not counted as working days for due dates (GUIDANCE 7)."""

    model = ClinicHoliday
    extra = 0


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "legal_name", "ogrn", "phone", "language", "time_zone", "created_at"]
    search_fields = ["name", "legal_name", "ogrn"]
    inlines = [MembershipInline, ClinicHolidayInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "full_name", "position", "clinic", "language"]
    list_select_related = ["user", "clinic"]
    autocomplete_fields = ["user", "clinic"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["family_name", "given_name", "middle_name", "birth_date", "sex", "snils", "identifier", "clinic"]
    list_select_related = ["clinic"]
    list_filter = ["clinic", "sex"]
    search_fields = ["name_search", "identifier", "=snils", "=oms_policy"]
    readonly_fields = ["name_search", "created_at", "updated_at"]


@admin.register(Encounter)
class EncounterAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "visit_date", "clinician", "status"]
    list_select_related = ["patient", "clinician"]
    list_filter = ["status", "clinic"]
    raw_id_fields = ["patient", "clinician", "finalized_by"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, for staff to inspect."""

    list_display = ["at", "actor_username", "action", "object_type", "object_id", "patient_id", "channel", "ip_address"]
    list_filter = ["action", "object_type", "channel"]
    search_fields = ["actor_username", "=patient_id", "=object_id"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
