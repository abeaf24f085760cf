import base64
import hashlib
import re

from csp.decorators import csp_update
from django.contrib import admin
from django.template.loader import get_template
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clinic import api_views
from clinic.api import LogoutAllView, LogoutView, PingView, TokenView
from ehr import cds_hooks, cds_views, fhir_views, smart
from referrals import api_views as referral_api
from workups import views as workup_views
from workups.views import VocabularyView, WorkupEvaluateView


def inline_style_hashes(template_name: str) -> list[str]:
    """CSP sources for exactly the <style> blocks a template writes inline (their text has no template tags):
    allows those rules and no other inline style, where 'unsafe-inline' would allow any."""
    source = get_template(template_name).template.source
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"
        for block in re.findall(r"<style>(.*?)</style>", source, flags=re.DOTALL)
    ]


# Swagger UI as drf-spectacular serves it: its bundle and CSS from the app's static files (SWAGGER_UI_DIST
# "SIDECAR"), its start-up script as a file of its own (the split view's ?script=), so the page runs under the
# project's policy with one addition: the page's own three-rule <style> block, allowed by its hash.
api_docs = csp_update({"style-src": inline_style_hashes(SpectacularSwaggerSplitView.template_name)})(
    # GET only: OPTIONS had DRF render its metadata through the page's HTML renderer, with no template (a 500).
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", http_method_names=["get", "head"])
)

api_v1 = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("auth/logout/", LogoutView.as_view(), name="api-logout"),
    path("auth/logout-all/", LogoutAllView.as_view(), name="api-logout-all"),
    path("ping/", PingView.as_view(), name="api-ping"),
    path("workup/evaluate/", WorkupEvaluateView.as_view(), name="api-workup-evaluate"),
    path("vocabulary/", VocabularyView.as_view(), name="api-vocabulary"),
    path("patients/", api_views.PatientListCreateView.as_view(), name="api-patients"),
    path("patients/search/", api_views.PatientSearchView.as_view(), name="api-patients-search"),
    path("patients/<int:pk>/", api_views.PatientDetailView.as_view(), name="api-patient"),
    path("patients/<int:pk>/encounters/", api_views.PatientEncountersView.as_view(), name="api-patient-encounters"),
    path("encounters/", api_views.EncounterCreateView.as_view(), name="api-encounters"),
    path("encounters/<int:pk>/", api_views.EncounterDetailView.as_view(), name="api-encounter"),
    path("encounters/<int:pk>/workup/", workup_views.EncounterWorkupView.as_view(), name="api-encounter-workup"),
    path(
        "encounters/<int:pk>/workup/accept-all/",
        workup_views.EncounterWorkupAcceptAllView.as_view(),
        name="api-encounter-workup-accept-all",
    ),
    path("encounters/<int:pk>/finalize/", workup_views.EncounterFinalizeView.as_view(), name="api-encounter-finalize"),
    path(
        "encounters/<int:pk>/unfinished/",
        referral_api.EncounterUnfinishedView.as_view(),
        name="api-encounter-unfinished",
    ),
    path("workup-items/", workup_views.WorkupItemAddView.as_view(), name="api-workup-items"),
    path("workup-items/<int:pk>/", workup_views.WorkupItemDetailView.as_view(), name="api-workup-item"),
    path("workup-referrals/", workup_views.WorkupReferralAddView.as_view(), name="api-workup-referrals"),
    path("workup-referrals/<int:pk>/", workup_views.WorkupReferralDetailView.as_view(), name="api-workup-referral"),
    path("referrals/", referral_api.ReferralCreateView.as_view(), name="api-referrals"),
    path("referrals/<int:pk>/", referral_api.ReferralDetailView.as_view(), name="api-referral"),
    path("referrals/<int:pk>/issue/", referral_api.ReferralIssueView.as_view(), name="api-referral-issue"),
    path("referrals/<int:pk>/pdf/", referral_api.ReferralPdfView.as_view(), name="api-referral-pdf"),
    path(
        "encounters/<int:pk>/referrals/", referral_api.EncounterReferralsView.as_view(), name="api-encounter-referrals"
    ),
    path(
        "encounters/<int:pk>/requisition/",
        referral_api.EncounterRequisitionView.as_view(),
        name="api-encounter-requisition",
    ),
    path(
        "encounters/<int:pk>/requisition/pdf/",
        referral_api.EncounterRequisitionPdfView.as_view(),
        name="api-encounter-requisition-pdf",
    ),
    path(
        "encounters/<int:pk>/emergency/",
        referral_api.EncounterEmergencyView.as_view(),
        name="api-encounter-emergency-documents",
    ),
    path("encounters/<int:pk>/leaflet/", referral_api.EncounterLeafletView.as_view(), name="api-encounter-leaflet"),
    path(
        "encounters/<int:pk>/leaflet/pdf/",
        referral_api.EncounterLeafletPdfView.as_view(),
        name="api-encounter-leaflet-pdf",
    ),
    path("encounters/<int:pk>/results/", workup_views.EncounterResultsView.as_view(), name="api-encounter-results"),
    path(
        "encounters/<int:pk>/results/review/",
        workup_views.EncounterResultsReviewView.as_view(),
        name="api-encounter-results-review",
    ),
    path(
        "encounters/<int:pk>/results/acknowledge/",
        workup_views.EncounterResultsAcknowledgeView.as_view(),
        name="api-encounter-results-acknowledge",
    ),
    path("results/<int:pk>/", workup_views.ResultDetailView.as_view(), name="api-result"),
    path("results/<int:pk>/acknowledge/", workup_views.ResultAcknowledgeView.as_view(), name="api-result-acknowledge"),
    path("referrals/<int:pk>/status/", referral_api.ReferralStatusView.as_view(), name="api-referral-status"),
    path(
        "referrals/<int:pk>/conclusion/pdf/",
        referral_api.ReferralConclusionPdfView.as_view(),
        name="api-referral-conclusion-pdf",
    ),
    path("worklist/", referral_api.WorklistView.as_view(), name="api-worklist"),
    path("worklist/counts/", referral_api.WorklistCountsView.as_view(), name="api-worklist-counts"),
    path(
        "worklist/encounters-left-open/",
        referral_api.WorklistLeftOpenView.as_view(),
        name="api-worklist-encounters-left-open",
    ),
    path("encounters/<int:pk>/fhir/", fhir_views.EncounterFhirView.as_view(), name="api-encounter-fhir"),
    path("fhir/Patient", fhir_views.FhirPatientImportView.as_view(), name="api-fhir-patient"),
    path("fhir/CodeSystem/workup", fhir_views.FhirCodeSystemView.as_view(), name="api-fhir-codesystem"),
]

urlpatterns = [
    # The browser pages, by layer: the record, the consultation and workups, the letters.
    path("", include("clinic.urls_web")),
    path("", include("workups.urls_web")),
    path("", include("referrals.urls_web")),
    path("admin/", admin.site.urls),
    path("cds-services", cds_views.discovery, name="cds-discovery"),
    path(f"cds-services/{cds_hooks.WORKUP_SERVICE}", cds_views.workup_service, name="cds-workup"),
    path(f"cds-services/{cds_hooks.IMAGING_SERVICE}", cds_views.imaging_service, name="cds-imaging"),
    path("cds-services/<str:service_id>/feedback", cds_views.feedback, name="cds-feedback"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include(api_v1)),
    path("fhir/", include("ehr.fhir_urls")),
    path(".well-known/smart-configuration", smart.smart_configuration, name="smart-configuration"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
