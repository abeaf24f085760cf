from django.urls import path
from django.views.generic import RedirectView

from clinic import password_reset, two_factor, web

urlpatterns = [
    path("", web.patient_list, name="patient-list"),
    path("language/", web.language_switch, name="language-switch"),
    # The list lives at the root; /patients/ is where a GP who trims /patients/12/ back expects it.
    path("patients/", RedirectView.as_view(pattern_name="patient-list"), name="patient-list-alias"),
    # Before django.contrib.auth.urls (config.urls): the throttled, audited password reset (clinic.password_reset).
    path("accounts/password_reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/two-factor/", two_factor.status, name="two-factor"),
    path("accounts/two-factor/setup/", two_factor.setup, name="two-factor-setup"),
    path("accounts/two-factor/verify/", two_factor.verify, name="two-factor-verify"),
    path("accounts/two-factor/recovery-codes/", two_factor.recovery_codes, name="two-factor-recovery-codes"),
    path("accounts/two-factor/off/", two_factor.turn_off, name="two-factor-off"),
    path("patients/new/", web.patient_create, name="patient-create"),
    path("patients/<int:pk>/edit/", web.patient_edit, name="patient-edit"),
]
