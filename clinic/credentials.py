"""A password change revokes all of the user's API tokens.

The one integration point: a pre_save receiver on the user model (connected in ClinicConfig.ready),
so every way a password changes is covered — the admin's password form, the password change and
reset pages, `manage.py changepassword`, set_password() + save() in code, seed_demo. It compares the
hash being saved with the stored one; a save that names update_fields without "password" (the
last_login update at every login) is skipped without a query. A hash upgraded by Django at login
(more hasher iterations after an upgrade) counts as a change too: the user's other tokens end then.
"""

from __future__ import annotations


def revoke_tokens_on_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        from knox.models import get_token_model

        get_token_model().objects.filter(user_id=instance.pk).delete()
