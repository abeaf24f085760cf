"""The browser routes of the consultation and the workup page (included by config.urls)."""

from django.urls import path

from workups import consultation_web, web

urlpatterns = [
    path("patients/<int:pk>/", consultation_web.patient_detail, name="patient-detail"),
    path("patients/<int:pk>/encounters/new/", consultation_web.encounter_create, name="encounter-create"),
    path("patients/<int:pk>/encounters/preview/", consultation_web.encounter_preview, name="encounter-preview"),
    path("encounters/<int:pk>/", consultation_web.encounter_detail, name="encounter-detail"),
    path("encounters/<int:pk>/workup/", web.workup_page, name="encounter-workup"),
    path("encounters/<int:pk>/workup/generate/", web.workup_generate, name="encounter-workup-generate"),
    path("encounters/<int:pk>/workup/add-item/", web.workup_add_item, name="encounter-workup-add-item"),
    path("encounters/<int:pk>/workup/add-referral/", web.workup_add_referral, name="encounter-workup-add-referral"),
    path("encounters/<int:pk>/workup/accept-all/", web.workup_accept_all, name="encounter-workup-accept-all"),
    path("encounters/<int:pk>/workup/print/", web.workup_print, name="encounter-workup-print"),
    path("encounters/<int:pk>/results/check/", web.results_check, name="encounter-results-check"),
    path("encounters/<int:pk>/results/enter/", web.results_enter, name="encounter-results-enter"),
    path("encounters/<int:pk>/review/", web.workup_review_page, name="encounter-review"),
    path("encounters/<int:pk>/results/acknowledge/", web.results_acknowledge, name="encounter-results-acknowledge"),
    path("results/<int:pk>/acknowledge/", web.result_acknowledge, name="result-acknowledge"),
    path("workup-items/<int:pk>/decide/", web.item_decide, name="workup-item-decide"),
    path("workup-referrals/<int:pk>/decide/", web.referral_decide, name="workup-referral-decide"),
]
