"""Password reset by email, throttled like the login.

Django's own flow (a signed, single-use link valid for PASSWORD_RESET_HOURS), with three additions:

- Throttled: at most AXES_FAILURE_LIMIT requests (5) for one email address and LOGIN_ADDRESS_FAILURE_LIMIT
  (20) from one client address within AXES_COOLOFF_TIME (15 minutes); past that the request answers 429
  with Retry-After, sends nothing and is audited ("lockout", "password_reset"). Counted whether or not the
  address belongs to an account, so neither the answer nor the throttle says whether it does.
- The email is written in the GP's own language (profile, then their clinic's), not the requester's.
- A completed reset is audited ("password_reset", "user"); the password change itself revokes the user's
  API tokens (clinic.credentials) and Django ends their other sessions.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.utils import translation
from django.utils.translation import gettext as _

from clinic.audit import client_ip
from clinic.lockout import audit_refusal, refusal_response, throttle


class LocalizedPasswordResetForm(PasswordResetForm):
    """Each email in the language of the GP it is sent to."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        from clinic.middleware import language_for

        user = context["user"]
        language = language_for(self.request, user) if getattr(self, "request", None) else None
        with translation.override(language or settings.LANGUAGE_CODE):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)

    def save(self, *args, request=None, **kwargs):
        self.request = request
        return super().save(*args, request=request, **kwargs)


def _account_for(email: str):
    """The one active account with this email, for the audit trail only (None if none or several)."""
    User = get_user_model()
    field = User.get_email_field_name()
    accounts = list(User._default_manager.filter(**{f"{field}__iexact": email, "is_active": True})[:2])
    return accounts[0] if len(accounts) == 1 else None


class PasswordResetView(auth_views.PasswordResetView):
    form_class = LocalizedPasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        self.extra_email_context = {"hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)}
        email = form.cleaned_data["email"].strip().casefold()
        address = client_ip(self.request)
        subjects = {"email": (email, settings.AXES_FAILURE_LIMIT)}
        if address:
            subjects["address"] = (address, settings.LOGIN_ADDRESS_FAILURE_LIMIT)
        retry_after, kinds = throttle(self.request, scope="password_reset", subjects=subjects)
        if retry_after is not None:
            audit_refusal(
                self.request, user=_account_for(email), object_type="password_reset", kinds=kinds, ip_address=address
            )
            return refusal_response(
                self.request,
                retry_after=retry_after,
                message=_("Too many password reset requests. Wait before asking again."),
                title=_("Reset your password"),
            )
        return super().form_valid(form)

    def form_invalid(self, form):
        # A request without a usable email is a bad request (the page names the field), not a success.
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form):
        from clinic.audit import Actor, audit_record

        response = super().form_valid(form)
        user = form.user
        membership = getattr(user, "membership", None)
        actor = Actor(
            user=user, clinic=membership.clinic if membership else None, channel="web", ip=client_ip(self.request)
        )
        audit_record(actor=actor, action="password_reset", object_type="user", object_id=user.pk)
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response
