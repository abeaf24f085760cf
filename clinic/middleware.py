"""The request's language and time zone.

Language: the GP's own choice (their profile), then the browser's Accept-Language, then the clinic's
default. A GP who chose Russian gets Russian on any computer; an EHR (token, no session) that sends
Accept-Language gets that language. Time zone: the clinic's, so a visit at 01:30 Moscow time is
today, not yesterday.
"""

from __future__ import annotations

import zoneinfo
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.common import CommonMiddleware
from django.shortcuts import resolve_url
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.http import escape_leading_slashes
from django.utils.translation import gettext_lazy as _

SUPPORTED = tuple(code for code, _ in settings.LANGUAGES)
# Machine callers: their Accept-Language outranks the profile of the GP whose token they use.
API_PREFIXES = ("/api/", "/cds-services")


def supported_language(code: str | None) -> str | None:
    if not code:
        return None
    code = code.lower().split("-")[0]
    return code if code in SUPPORTED else None


def _accept_language(request) -> str | None:
    """The first supported language of the Accept-Language header, read once per request."""
    try:
        return request._accepted_language
    except AttributeError:
        pass
    language = None
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    if header:
        for accepted, _quality in translation.trans_real.parse_accept_lang_header(header):
            language = supported_language(accepted)
            if language:
                break
    request._accepted_language = language
    return language


def language_for(request, user=None, *, header_first: bool = False) -> str:
    """The language of this request, for a user (a session's or one authenticated later by DRF).
    An API caller's Accept-Language comes first (`header_first`): an EHR asks for the language it shows."""
    user = user if user is not None else getattr(request, "user", None)
    membership = getattr(user, "membership", None) if user is not None and user.is_authenticated else None
    from_header = _accept_language(request)
    if header_first and from_header:
        return from_header
    if membership is not None and supported_language(membership.language):
        return membership.language
    chosen = supported_language(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
    if chosen and membership is None:
        return chosen
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
    """Activate the request's language and the clinic's time zone for `user` (the request's by default).
    Worked out once per request and user: DRF's session authentication settles the user the middleware
    already did (the same object), and that second call only activates what the first found."""
    user = user if user is not None else getattr(request, "user", None)
    settled = getattr(request, "_activated_for", None)
    if settled is not None and settled[0] is user and settled[1] == header_first:
        language, zone = settled[2], settled[3]
    else:
        language = language_for(request, user, header_first=header_first)
        zone = clinic_time_zone(user)
        request._activated_for = (user, header_first, language, zone)
    translation.activate(language)
    request.LANGUAGE_CODE = language
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
        if not getattr(response, "mixed_language", False):
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


# Web sessions: when the session was signed in, and when it was last used (POSIX seconds, by
# django.utils.timezone.now, so tests can drive the clock).
SESSION_STARTED = "signed_in_at"
SESSION_SEEN = "last_seen_at"


def stamp_session_start(sender, request, user, **kwargs):
    """user_logged_in receiver (ClinicConfig.ready): the absolute timeout counts from each login. Django's
    login() has already given the session a new id by now (no fixation)."""
    session = getattr(request, "session", None)
    # Only a session login (an API token is not a session, should anything send the signal for one).
    if session is not None and session.get(auth.SESSION_KEY) is not None:
        now = timezone.now().timestamp()
        session[SESSION_STARTED] = now
        session[SESSION_SEEN] = now


def session_expired(session, now: float) -> str | None:
    """Why a signed-in session is over ("idle", "absolute"), or None while it may go on."""
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if started is None or seen is None:
        return None
    if now - started >= settings.SESSION_ABSOLUTE_SECONDS:
        return "absolute"
    if now - seen >= settings.SESSION_IDLE_SECONDS:
        return "idle"
    return None


class SessionTimeoutMiddleware:
    """A web session ends after SESSION_IDLE_SECONDS without a request (30 minutes) and, however busy,
    SESSION_ABSOLUTE_SECONDS after the login (12 hours): the GP is signed out (the session is flushed) and the
    request goes on as an anonymous one, so a page sends them to the login page with `next`, an API call
    made with the session answers 401/403, and an htmx request redirects the whole page (HX-Redirect)
    instead of swapping the login form into a fragment. Token (API) callers have no session: their
    tokens expire on their own (API_TOKEN_HOURS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if session.get(auth.SESSION_KEY) is not None:
            now = timezone.now().timestamp()
            reason = session_expired(session, now)
            if reason is not None:
                auth.logout(request)
                if reason == "absolute":
                    message = _("You were signed out: a session lasts at most %(hours)s hours. Please log in again.")
                    messages.info(request, message % {"hours": round(settings.SESSION_ABSOLUTE_SECONDS / 3600)})
                else:
                    message = _("You were signed out after %(minutes)s minutes without activity. Please log in again.")
                    messages.info(request, message % {"minutes": round(settings.SESSION_IDLE_SECONDS / 60)})
                if request.headers.get("HX-Request") == "true":
                    # Back to the page the GP was on (its path only: a query string may hold a search term).
                    page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}"
                    return response
            else:
                # A session from before these timeouts existed starts counting now.
                session.setdefault(SESSION_STARTED, now)
                session[SESSION_SEEN] = now
        return self.get_response(request)


class ProbeAuditMiddleware:
    """Every refused request on a route of the app (401, 403, and 404: another clinic's record answers exactly
    like a missing one) is audited with who and where (clinic.audit.audit_probe), on the web, the API, the FHIR
    base and the admin. CDS Hooks calls are audited by ehr.cds_views, with the calling EHR named. A URL that
    matches no route (a scanner's guess) is not recorded."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from clinic.audit import PROBE_ACTIONS, audit_probe

        response = self.get_response(request)
        action = PROBE_ACTIONS.get(response.status_code)
        if action is not None and not request.path.startswith("/cds-services"):
            audit_probe(request, action=action)
        return response


class PermanentRedirect308(HttpResponseRedirect):
    status_code = 308


class SlashCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, but a POST (or PUT, PATCH, DELETE) to an API route written without its
    trailing slash is redirected with 308, which keeps the method and the body: the 301 that Django sends
    may be followed with a GET (and in DEBUG it is an error page)."""

    def process_response(self, request, response):
        if (
            response.status_code == 404
            and request.method not in ("GET", "HEAD")
            and request.path.startswith(API_PREFIXES)
            and self.should_redirect_with_slash(request)
        ):
            return PermanentRedirect308(escape_leading_slashes(request.get_full_path(force_append_slash=True)))
        return super().process_response(request, response)
