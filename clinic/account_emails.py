"""Emails to a GP about their account, sent by a Celery task (clinic.tasks) from ids alone."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

logger = logging.getLogger(__name__)

EMAIL_TEMPLATE = "registration/password_reset_email.txt"
SUBJECT_TEMPLATE = "registration/password_reset_subject.txt"


def _language_of(user) -> str:
    """The GP's own language: their profile's, then their clinic's (never the requester's browser)."""
    from clinic.middleware import supported_language

    membership = getattr(user, "membership", None)
    if membership is not None:
        return (
            supported_language(membership.language)
            or supported_language(membership.clinic.language)
            or settings.LANGUAGE_CODE
        )
    return settings.LANGUAGE_CODE


def password_reset_email_send(*, user_id: int, domain: str, use_https: bool) -> bool:
    """Email a reset link to an account that may still reset its password; whether one was sent. The token is
    made here, from the account as it is now."""
    User = get_user_model()
    user = User._default_manager.select_related("membership__clinic").filter(pk=user_id, is_active=True).first()
    email = getattr(user, User.get_email_field_name(), "") if user is not None else ""
    if user is None or not email or not user.has_usable_password():
        return False
    context = {
        "email": email,
        "domain": domain,
        "site_name": domain,
        "uid": urlsafe_base64_encode(force_bytes(User._meta.pk.value_to_string(user))),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
        "hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
    }
    with translation.override(_language_of(user)):
        subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
        body = render_to_string(EMAIL_TEMPLATE, context)
    try:
        EmailMessage(subject, body, None, [email]).send()
    except Exception:  # as Django's own form does: the failure is logged (without its message), not raised
        logger.exception("could not send the password reset email to user %s", user.pk)
        return False
    return True
