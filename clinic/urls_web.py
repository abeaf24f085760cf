from django.urls import path

from clinic import password_reset, web
from referrals import web as referral_web
from workups import web as workup_web

urlpatterns = [
    path("", web.patient_list, name="patient-list"),
    path("language/", web.language_switch, name="language-switch"),
    # Before django.contrib.auth.urls (config.urls): the throttled, audited password reset (clinic.password_reset).
    path("accounts/password_reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("patients/new/", web.patient_create, name="patient-create"),
    path("patients/<int:pk>/", web.patient_detail, name="patient-detail"),
    path("patients/<int:pk>/edit/", web.patient_edit, name="patient-edit"),
    path("patients/<int:pk>/encounters/new/", web.encounter_create, name="encounter-create"),
    path("patients/<int:pk>/encounters/preview/", web.encounter_preview, name="encounter-preview"),
    path("encounters/<int:pk>/", web.encounter_detail, name="encounter-detail"),
    path("encounters/<int:pk>/workup/", workup_web.workup_page, name="encounter-workup"),
    path("encounters/<int:pk>/workup/generate/", workup_web.workup_generate, name="encounter-workup-generate"),
    path("encounters/<int:pk>/workup/add-item/", workup_web.workup_add_item, name="encounter-workup-add-item"),
    path(
        "encounters/<int:pk>/workup/add-referral/", workup_web.workup_add_referral, name="encounter-workup-add-referral"
    ),
    path("encounters/<int:pk>/workup/accept-all/", workup_web.workup_accept_all, name="encounter-workup-accept-all"),
    path("encounters/<int:pk>/workup/print/", workup_web.workup_print, name="encounter-workup-print"),
    path("encounters/<int:pk>/finalize/", referral_web.encounter_finalize, name="encounter-finalize"),
    path("encounters/<int:pk>/results/check/", workup_web.results_check, name="encounter-results-check"),
    path("encounters/<int:pk>/results/enter/", workup_web.results_enter, name="encounter-results-enter"),
    path("encounters/<int:pk>/review/", workup_web.workup_review_page, name="encounter-review"),
    path("results/<int:pk>/acknowledge/", workup_web.result_acknowledge, name="result-acknowledge"),
    path("worklist/", referral_web.worklist_page, name="worklist"),
    path("worklist/badge/", referral_web.worklist_badge, name="worklist-badge"),
    path("workup-items/<int:pk>/decide/", workup_web.item_decide, name="workup-item-decide"),
    path("workup-referrals/<int:pk>/decide/", workup_web.referral_decide, name="workup-referral-decide"),
    path("workup-referrals/<int:pk>/letter/", referral_web.letter_from_recommendation, name="workup-referral-letter"),
    path("encounters/<int:pk>/referrals/new/", referral_web.referral_by_hand, name="referral-by-hand"),
    path("referrals/<int:pk>/", referral_web.referral_detail, name="referral-detail"),
    path("referrals/<int:pk>/issue/", referral_web.referral_issue, name="referral-issue"),
    path("referrals/<int:pk>/status/", referral_web.referral_status, name="referral-status"),
    path("referrals/<int:pk>/tracking/", referral_web.referral_track, name="referral-track"),
    path("referrals/<int:pk>/conclusion/", referral_web.referral_conclusion_pdf, name="referral-conclusion-pdf"),
    path("referrals/<int:pk>/rerender/", referral_web.referral_rerender, name="referral-rerender"),
    path("referrals/<int:pk>/pdf/", referral_web.referral_pdf, name="referral-pdf"),
    path("encounters/<int:pk>/requisition/", referral_web.requisition_request, name="requisition-request"),
    path("encounters/<int:pk>/requisition/status/", referral_web.requisition_status, name="requisition-status"),
    path("encounters/<int:pk>/requisition/pdf/", referral_web.requisition_pdf, name="requisition-pdf"),
    path("encounters/<int:pk>/leaflet/", referral_web.leaflet_request, name="leaflet-request"),
    path("encounters/<int:pk>/leaflet/status/", referral_web.leaflet_status, name="leaflet-status"),
    path("encounters/<int:pk>/leaflet/pdf/", referral_web.leaflet_pdf, name="leaflet-pdf"),
]
