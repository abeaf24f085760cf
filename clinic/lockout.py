"""Login lockout (django-axes): the login page and the token endpoint refuse a username after
AXES_FAILURE_LIMIT failed logins (5), or an address after LOGIN_ADDRESS_FAILURE_LIMIT (20), within
AXES_COOLOFF_TIME (15 minutes). Until the cool-off has passed every attempt answers 429 with
Retry-After, even with the right password, and each refusal is audited ("lockout", "login").

axes' own cache handler applies one limit to all its lockout parameters and lets the cache's expiry
end the window. This handler keeps two counters in the same shared cache (the username's and the
address's), each the times of its recent failures as django.utils.timezone.now tells them, so the two
limits differ and the window and cool-off are exact (and testable with a controlled clock).

Nothing here logs or stores the username or the password: cache keys are digests, log lines name only
which limit was reached, and the audit names the user only when the username is a real account.
"""

from __future__ import annotations

import hashlib
import logging
import math

from axes.backends import AxesBackend, AxesStandaloneBackend
from axes.handlers.base import AbstractAxesHandler, AxesBaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import (
    get_cache,
    get_client_username,
    get_cool_off,
    get_failure_limit,
    get_lockout_message,
)
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

log = logging.getLogger(__name__)

GENERATION_KEY = "lockout:generation"
API_PREFIXES = ("/api/",)


def _digest(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _generation() -> int:
    """Bumped by a reset of everything (axes.utils.reset, `manage.py axes_reset`): old keys are then ignored."""
    return get_cache().get_or_set(GENERATION_KEY, 0, timeout=None)


def _both(request):
    """The request and, for a DRF Request, the Django request under it (the one middleware sees)."""
    inner = getattr(request, "_request", None)
    return (request, inner) if inner is not None else (request,)


class LockoutHandler(AbstractAxesHandler, AxesBaseHandler):
    """AXES_HANDLER: two failure counters per attempt, on the cache AXES_CACHE names."""

    @property
    def cache(self):
        return get_cache()

    def _window(self, request=None) -> float:
        return get_cool_off(request).total_seconds()

    def _generation(self) -> int:
        return _generation()

    def _username_key(self, username, generation) -> str:
        return f"lockout:{generation}:username:{_digest(username)}"

    def _counters(self, request, credentials=None):
        """(kind, cache key, limit) of each counter an attempt falls under."""
        generation = self._generation()
        username = get_client_username(request, credentials)
        address = getattr(request, "axes_ip_address", None)
        counters = []
        if username:
            counters.append(
                ("username", self._username_key(username, generation), get_failure_limit(request, credentials))
            )
        if address:
            counters.append(
                ("address", f"lockout:{generation}:address:{_digest(address)}", settings.LOGIN_ADDRESS_FAILURE_LIMIT)
            )
        return counters

    def locked_until(self, request, credentials=None):
        """When the lock on this attempt ends (a POSIX time), and which limits hold it; (None, []) if none."""
        now = timezone.now().timestamp()
        ends, kinds = [], []
        for kind, key, _ in self._counters(request, credentials):
            state = self.cache.get(key) or {}
            if (state.get("locked_until") or 0) > now:
                ends.append(state["locked_until"])
                kinds.append(kind)
        return (max(ends), kinds) if ends else (None, [])

    def is_locked(self, request, credentials=None) -> bool:
        return self.locked_until(request, credentials)[0] is not None

    def get_failures(self, request, credentials=None) -> int:
        since = timezone.now().timestamp() - self._window(request)
        counts = [
            len([at for at in (self.cache.get(key) or {}).get("failures", []) if at > since])
            for _, key, _ in self._counters(request, credentials)
        ]
        return max(counts, default=0)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:  # not a login from the network (a management command, the shell)
            return
        if self.is_whitelisted(request, credentials):
            return
        if self.is_locked(request, credentials):
            # Refused by the backend before any password check: not counted, the cool-off is not extended.
            self._refuse(request, credentials)
            return
        now = timezone.now().timestamp()
        window = self._window(request)
        locked, counts = [], []
        for kind, key, limit in self._counters(request, credentials):
            state = self.cache.get(key) or {}
            failures = [at for at in state.get("failures", []) if at > now - window] + [now]
            counts.append(len(failures))
            if len(failures) >= limit:
                state = {"failures": [], "locked_until": now + window}
                locked.append(kind)
            else:
                state = {"failures": failures, "locked_until": None}
            # The entry outlives the window a little; the times inside it decide, not the cache's expiry.
            self.cache.set(key, state, timeout=int(window) + 60)
        for each in _both(request):
            each.axes_failures_since_start = max(counts, default=0)
        if locked:
            log.warning(
                "login locked out: the %s limit was reached (%s)",
                " and ".join(locked),
                getattr(request, "axes_path_info", "?"),
            )
            self._refuse(request, credentials)

    def _refuse(self, request, credentials):
        until, kinds = self.locked_until(request, credentials)
        for each in _both(request):
            each.axes_locked_out = True
            each.axes_credentials = credentials
            each.lockout_until = until
            each.lockout_kinds = kinds
        user_locked_out.send(
            "axes",
            request=request,
            username=get_client_username(request, credentials),
            ip_address=getattr(request, "axes_ip_address", None),
        )

    def user_logged_in(self, sender, request, user, **kwargs):
        """A password login's success is handled by LockoutBackend (it covers the token endpoint too)."""

    def user_logged_out(self, sender, request, user, **kwargs):
        pass

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False) -> int:
        """Forget failures and locks: of a username and/or an address, or (neither given) all of them."""
        if ip_address is None and username is None:
            try:
                self.cache.incr(GENERATION_KEY)
            except ValueError:
                self.cache.set(GENERATION_KEY, 1, timeout=None)
            return 1
        generation = self._generation()
        keys = []
        if username is not None:
            keys.append(self._username_key(username, generation))
        if ip_address is not None:
            keys.append(f"lockout:{generation}:address:{_digest(ip_address)}")
        return sum(1 for key in keys if self.cache.delete(key))


class LockoutBackend(AxesBackend):
    """First (and only) in AUTHENTICATION_BACKENDS: refuses a locked-out username or address before the
    password is checked, then authenticates as ModelBackend does. A success forgets the username's
    failures (AXES_RESET_ON_SUCCESS), for the login page and the token endpoint alike (DRF's
    ObtainAuthToken sends no user_logged_in). A call with no request (a management command, the shell)
    is not a login from the network: nothing is counted or refused."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            AxesStandaloneBackend.authenticate(self, request, username=username, password=password, **kwargs)
        user = ModelBackend.authenticate(self, request, username=username, password=password, **kwargs)
        if user is not None and request is not None and settings.AXES_RESET_ON_SUCCESS:
            AxesProxyHandler.reset_attempts(username=username or user.get_username())
        return user


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; JSON {"detail"} for the API, a page for the browser."""
    until = getattr(request, "lockout_until", None)
    now = timezone.now().timestamp()
    retry_after = max(1, math.ceil(until - now)) if until else max(1, int(get_cool_off(request).total_seconds()))
    return refusal_response(request, retry_after=retry_after, message=str(get_lockout_message()))


def refusal_response(request, *, retry_after: int, message: str, title: str | None = None):
    """429 with Retry-After: JSON {"detail"} for the API, the lockout page (`title` its heading, "Log in"
    unless said) for the browser."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith(API_PREFIXES):
        response = JsonResponse({"detail": message}, status=status)
    else:
        context = {"message": message, "minutes": math.ceil(retry_after / 60)}
        if title:
            context["title"] = title
        response = render(request, "registration/lockout.html", context, status=status)
    response["Retry-After"] = str(retry_after)
    return response


def throttle(request, *, scope: str, subjects: dict[str, tuple[str, int]]) -> tuple[int | None, list[str]]:
    """A request throttle beside the login lockout, on the same cache and clock: each subject (kind ->
    (value, limit)) allows `limit` requests within AXES_COOLOFF_TIME, counted from each request's own time.
    A request over any limit is refused and not counted. Answers (seconds until a request would be allowed,
    the kinds over their limit), or (None, []) when the request may go ahead (it has been counted). Values
    are kept only as digests."""
    cache = get_cache()
    window = get_cool_off(request).total_seconds()
    now = timezone.now().timestamp()
    generation = _generation()
    counted, waits = [], {}
    for kind, (value, limit) in subjects.items():
        key = f"throttle:{generation}:{scope}:{kind}:{_digest(value)}"
        times = sorted(at for at in (cache.get(key) or []) if at > now - window)
        if len(times) >= limit:
            # Allowed again once enough of the counted requests have left the window.
            waits[kind] = times[len(times) - limit] + window - now
        counted.append((key, times))
    if waits:
        return max(1, math.ceil(max(waits.values()))), sorted(waits)
    for key, times in counted:
        cache.set(key, [*times, now], timeout=int(window) + 60)
    return None, []


def audit_refusal(request, *, user, object_type: str, kinds, ip_address=None) -> None:
    """One AuditEvent for a refused login or throttled request, naming the user only when there is one."""
    from clinic.audit import Actor, audit_record

    membership = getattr(user, "membership", None) if user is not None else None
    path = getattr(request, "path", "") or ""
    actor = Actor(
        user=user or AnonymousUser(),
        clinic=membership.clinic if membership else None,
        channel="api" if path.startswith(API_PREFIXES) else "web",
        ip=ip_address or None,
    )
    audit_record(actor=actor, action="lockout", object_type=object_type, object_id=",".join(kinds))


def audit_lockout(sender, request, username=None, ip_address=None, **kwargs):
    """user_locked_out receiver (connected in ClinicConfig.ready): one AuditEvent per refusal. The user is
    named only when the username is an account; a made-up one (perhaps a password typed in the wrong
    field) is not written down."""
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first() if username else None
    kinds = getattr(request, "lockout_kinds", None) or []
    audit_refusal(request, user=user, object_type="login", kinds=kinds, ip_address=ip_address)
