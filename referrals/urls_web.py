"""The browser routes of letters, documents, the worklist and finalizing (included by config.urls)."""

from django.urls import path

from referrals import web

urlpatterns = [
    path("encounters/<int:pk>/finalize/", web.encounter_finalize, name="encounter-finalize"),
    path("worklist/", web.worklist_page, name="worklist"),
    path("worklist/badge/", web.worklist_badge, name="worklist-badge"),
    path("workup-referrals/<int:pk>/letter/", web.letter_from_recommendation, name="workup-referral-letter"),
    path("encounters/<int:pk>/emergency/", web.emergency_documents, name="encounter-emergency-documents"),
    path("encounters/<int:pk>/referrals/new/", web.referral_by_hand, name="referral-by-hand"),
    path("referrals/<int:pk>/", web.referral_detail, name="referral-detail"),
    path("referrals/<int:pk>/issue/", web.referral_issue, name="referral-issue"),
    path("referrals/<int:pk>/status/", web.referral_status, name="referral-status"),
    path("referrals/<int:pk>/tracking/", web.referral_track, name="referral-track"),
    path("referrals/<int:pk>/conclusion/", web.referral_conclusion_pdf, name="referral-conclusion-pdf"),
    path("referrals/<int:pk>/rerender/", web.referral_rerender, name="referral-rerender"),
    path("referrals/<int:pk>/pdf/", web.referral_pdf, name="referral-pdf"),
    path("encounters/<int:pk>/requisition/", web.requisition_request, name="requisition-request"),
    path("encounters/<int:pk>/requisition/status/", web.requisition_status, name="requisition-status"),
    path("encounters/<int:pk>/requisition/pdf/", web.requisition_pdf, name="requisition-pdf"),
    path("encounters/<int:pk>/leaflet/", web.leaflet_request, name="leaflet-request"),
    path("encounters/<int:pk>/leaflet/status/", web.leaflet_status, name="leaflet-status"),
    path("encounters/<int:pk>/leaflet/pdf/", web.leaflet_pdf, name="leaflet-pdf"),
]
