"""The request's language and time zone.

Language: the GP's own choice (their profile), then the browser's Accept-Language, then the clinic's
default. A GP who chose Russian gets Russian on any computer; an EHR (token, no session) that sends
Accept-Language gets that language. Time zone: the clinic's, so a visit at 01:30 Moscow time is
today, not yesterday.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

SUPPORTED = tuple(code for code, _ in settings.LANGUAGES)
# Machine callers: their Accept-Language outranks the profile of the GP whose token they use.
API_PREFIXES = ("/api/", "/cds-services")


def supported_language(code: str | None) -> str | None:
    if not code:
        return None
    code = code.lower().split("-")[0]
    return code if code in SUPPORTED else None


def _accept_language(request) -> str | None:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    if not header:
        return None
    for accepted, _ in translation.trans_real.parse_accept_lang_header(header):
        language = supported_language(accepted)
        if language:
            return language
    return None


def language_for(request, user=None, *, header_first: bool = False) -> str:
    """The language of this request, for a user (a session's or one authenticated later by DRF).
    An API caller's Accept-Language comes first (`header_first`): an EHR asks for the language it shows."""
    user = user if user is not None else getattr(request, "user", None)
    membership = getattr(user, "membership", None) if user is not None and user.is_authenticated else None
    if header_first and _accept_language(request):
        return _accept_language(request)
    if membership is not None and supported_language(membership.language):
        return membership.language
    chosen = supported_language(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
    if chosen and membership is None:
        return chosen
    from_header = _accept_language(request)
    if from_header:
        return from_header
    if membership is not None and supported_language(membership.clinic.language):
        return membership.clinic.language
    return settings.LANGUAGE_CODE


def clinic_time_zone(user) -> zoneinfo.ZoneInfo | None:
    membership = getattr(user, "membership", None) if user is not None and user.is_authenticated else None
    if membership is None or not membership.clinic.time_zone:
        return None
    try:
        return zoneinfo.ZoneInfo(membership.clinic.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def activate_for(request, user=None, *, header_first: bool = False) -> str:
    language = language_for(request, user, header_first=header_first)
    translation.activate(language)
    request.LANGUAGE_CODE = language
    zone = clinic_time_zone(user if user is not None else getattr(request, "user", None))
    if zone is not None:
        timezone.activate(zone)
    else:
        timezone.deactivate()
    return language


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        activate_for(request, header_first=request.path.startswith(API_PREFIXES))
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        translation.deactivate()
        timezone.deactivate()
        return response


# The browser features this app never uses, switched off for every page.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "serial", "bluetooth", "interest-cohort")
)


class PrivateResponseMiddleware:
    """Patient data is never kept by a browser's or a proxy's cache: every answer to a signed-in user (and
    every API or FHIR answer) is private and not stored, unless the view said otherwise. Static files are
    served before this by WhiteNoise and keep their long-lived caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if (signed_in or request.path.startswith((*API_PREFIXES, "/fhir/"))) and "Cache-Control" not in response:
            response["Cache-Control"] = "private, no-store"
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
