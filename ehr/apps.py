from django.apps import AppConfig


class EhrConfig(AppConfig):
    """EHR integration: FHIR R4 mapping in and out, CDS Hooks services, client registration and the
    terminology tables. The record, the engine and the letters do not know FHIR exists."""

    name = "ehr"
    verbose_name = "EHR integration"
