"""Celery tasks of the record: they take ids, reload rows and call the module that does the work."""

from celery import shared_task

from clinic import password_reset


@shared_task(name=password_reset.SEND_TASK)
def send_password_reset(user_ids: list[int], domain: str, use_https: bool) -> int:
    """Email a reset link to each account that may still reset its password (none for an unknown address);
    how many were sent. Not retried: the GP asks again."""
    return sum(
        password_reset.password_reset_email_send(user_id=user_id, domain=domain, use_https=use_https)
        for user_id in user_ids
    )
