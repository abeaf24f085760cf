"""API authentication that also settles the request's language and time zone for the user it found.

The middleware runs before DRF knows who is calling with a token, so it could only use
Accept-Language and the default; once the token names the GP, their profile and clinic apply.
"""
from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from clinic.middleware import activate_for


class _ActivatesLanguage:
    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            activate_for(request._request, found[0], header_first=True)
        return found


class LocalizedTokenAuthentication(_ActivatesLanguage, TokenAuthentication):
    pass


class LocalizedSessionAuthentication(_ActivatesLanguage, SessionAuthentication):
    pass
