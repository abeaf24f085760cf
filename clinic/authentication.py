"""API authentication that also settles the request's language and time zone for the user it found.

The middleware runs before DRF knows who is calling with a token, so it could only use
Accept-Language and the default; once the token names the GP, their profile and clinic apply.

API tokens are django-rest-knox's: stored as a digest (never the key), with an expiry
(API_TOKEN_HOURS), sent as `Authorization: Token <key>`.
"""

from django.db.models import Prefetch, prefetch_related_objects
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication

from clinic.middleware import activate_for
from clinic.models import Membership


class _ActivatesLanguage:
    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            activate_for(request._request, found[0], header_first=True)
        return found


class LocalizedTokenAuthentication(_ActivatesLanguage, TokenAuthentication):
    """knox's token authentication (request.auth is the knox AuthToken); a key that is not text is a
    401 like any other wrong key, not a server error."""

    def authenticate_credentials(self, token):
        try:
            token.decode("utf-8")
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        user, auth_token = super().authenticate_credentials(token)
        # The language and the time zone (activate_for) read the GP's membership and its clinic: one query
        # for both, instead of one each, on every API request.
        prefetch_related_objects([user], Prefetch("membership", queryset=Membership.objects.select_related("clinic")))
        return user, auth_token


class LocalizedSessionAuthentication(_ActivatesLanguage, SessionAuthentication):
    pass
