from django.urls import path

from clinic import password_reset, web

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
    path("patients/<int:pk>/edit/", web.patient_edit, name="patient-edit"),
]
