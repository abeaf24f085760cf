import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from clinic.models import Clinic, Membership


@transaction.atomic
def demo_clinician_ensure(*, clinic_name: str, username: str, password: str | None) -> tuple[Clinic, object, str, str]:
    """Create (or refresh) a clinic with one GP account; safe to run any number of times.

    Returns the clinic, the user, the password now in force and the user's API token.
    With no password given a random one is set, since a stored hash cannot be shown again.
    """
    clinic, _ = Clinic.objects.get_or_create(name=clinic_name)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"first_name": "Demo", "last_name": "GP"})
    password = password or secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_active = True
    user.save()
    Membership.objects.update_or_create(user=user, defaults={"clinic": clinic})
    token, _ = Token.objects.get_or_create(user=user)
    return clinic, user, password, token.key
