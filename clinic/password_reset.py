"""Password reset by email, throttled like the login, with nothing to tell whether an account exists.

Django's own flow (a signed, single-use link valid for PASSWORD_RESET_HOURS), with these additions:

- Throttled: at most AXES_FAILURE_LIMIT requests (5) for one email address and LOGIN_ADDRESS_FAILURE_LIMIT
  (20) from one client address within AXES_COOLOFF_TIME (15 minutes); past that the request answers 429
  with Retry-After, sends nothing and is audited ("lockout", "password_reset"). Counted whether or not the
  address belongs to an account, so neither the answer nor the throttle says whether it does.
- No timing side channel: the request never sends the email itself (SMTP takes long enough to be timed). It
  looks the address up (one query either way) and, after the commit, enqueues one Celery task with the ids of
  the accounts found, an empty list when there are none (clinic.tasks; the email: clinic.account_emails). So an
  address with an account and one without cost the request the same work. The task carries ids, the host and
  the scheme only: the token is made, and the address read, in the worker. On the embedded default (no Redis,
  CELERY_TASK_ALWAYS_EAGER) the task runs in-process, so there the answer still takes longer for an account; a
  deployment with real patients runs workers.
- The email is written in the GP's own language (profile, then their clinic's), not the requester's.
- A completed reset is audited ("password_reset", "user"); the password change itself revokes the user's
  API tokens (clinic.credentials) and Django ends their other sessions.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from clinic.audit import client_ip
from clinic.lockout import audit_refusal, refusal_response, throttle
from clinic.tasks import send_password_reset

logger = logging.getLogger(__name__)


def _account_for(email: str):
    """The one active account with this email, for the audit trail only (None if none or several)."""
    User = get_user_model()
    field = User.get_email_field_name()
    accounts = list(User._default_manager.filter(**{f"{field}__iexact": email, "is_active": True})[:2])
    return accounts[0] if len(accounts) == 1 else None


def password_reset_enqueue(*, user_ids: list[int], domain: str, use_https: bool) -> None:
    """Hand the emails to a worker; one task whether or not `user_ids` is empty (see the module's docstring)."""
    try:
        send_password_reset.delay(user_ids, domain, use_https)
    except Exception as error:  # the broker is unreachable: the GP asks again; the answer must not differ
        logger.warning("could not enqueue the password reset email (%s)", type(error).__name__)


class PasswordResetView(auth_views.PasswordResetView):
    def form_valid(self, form):
        email = form.cleaned_data["email"]
        address = client_ip(self.request)
        subjects = {"email": (email.strip().casefold(), settings.AXES_FAILURE_LIMIT)}
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
        # Django's own policy (active, a usable password, the same address); one query, found or not.
        user_ids = [user.pk for user in form.get_users(email)]
        domain, use_https = self.request.get_host(), self.request.is_secure()
        transaction.on_commit(lambda: password_reset_enqueue(user_ids=user_ids, domain=domain, use_https=use_https))
        return HttpResponseRedirect(reverse("password_reset_done"))

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
