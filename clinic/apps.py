from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinics and clinicians")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # django-axes' integration point: every login refused by the lockout is audited (clinic.lockout).
        from axes.signals import user_locked_out

        import clinic.schema  # noqa: F401 - registers the OpenAPI security schemes of our authentication
        from clinic.lockout import audit_lockout

        user_locked_out.connect(audit_lockout, dispatch_uid="clinic.lockout.audit_lockout")

        # A password change revokes the user's API tokens (clinic.credentials).
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from clinic.credentials import revoke_tokens_on_password_change

        pre_save.connect(
            revoke_tokens_on_password_change,
            sender=get_user_model(),
            dispatch_uid="clinic.credentials.revoke_tokens_on_password_change",
        )

        # The absolute session timeout counts from each login (clinic.middleware).
        from django.contrib.auth.signals import user_logged_in

        from clinic.middleware import stamp_session_start

        user_logged_in.connect(stamp_session_start, dispatch_uid="clinic.middleware.stamp_session_start")

        # What a login still owes (a two-factor code, or turning two-factor on) is noted in the session.
        from clinic.two_factor import mark_login

        user_logged_in.connect(mark_login, dispatch_uid="clinic.two_factor.mark_login")
