from django.contrib import admin

from ehr.models import EhrClient


@admin.register(EhrClient)
class EhrClientAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "clinic", "active"]
    list_filter = ["active", "clinic"]
    search_fields = ["name", "issuer", "client_id"]
