"""The FHIR R4 base: /fhir/ (ehr.fhir_server)."""

from django.urls import path, re_path

from ehr import fhir_server, smart

urlpatterns = [
    path("metadata", fhir_server.metadata, name="fhir-metadata"),
    path(".well-known/smart-configuration", smart.smart_configuration, name="fhir-smart-configuration"),
    path("auth/token", smart.token, name="smart-token"),
    path("<str:resource_type>/_search", fhir_server.search_post, name="fhir-search"),
    path("<str:resource_type>/<str:resource_id>/_history/<str:version_id>", fhir_server.vread, name="fhir-vread"),
    path("<str:resource_type>/<str:resource_id>", fhir_server.instance, name="fhir-instance"),
    path("<str:resource_type>", fhir_server.type_level, name="fhir-type"),
    # Whatever else (the base itself, _history, a transaction Bundle posted to the base): an OperationOutcome.
    re_path(r"^(?P<rest>.*)$", fhir_server.unknown, name="fhir-unknown"),
]
