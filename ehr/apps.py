from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EhrConfig(AppConfig):
    """EHR integration: FHIR R4 mapping in and out, CDS Hooks services, client registration and the
    terminology tables. The record, the engine and the letters do not know FHIR exists."""

    name = "ehr"
    verbose_name = _("EHR integration")
