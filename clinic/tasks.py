"""Celery tasks of the record: they take ids and call the module that does the work (clinic.account_emails)."""

from celery import shared_task

from clinic.account_emails import password_reset_email_send

SEND_PASSWORD_RESET = "clinic.send_password_reset"  # noqa: S105 - a task's name, not a password


@shared_task(name=SEND_PASSWORD_RESET)
def send_password_reset(user_ids: list[int], domain: str, use_https: bool) -> int:
    """Email a reset link to each account that may still reset its password (none for an unknown address);
    how many were sent. Not retried: the GP asks again."""
    return sum(password_reset_email_send(user_id=user_id, domain=domain, use_https=use_https) for user_id in user_ids)
