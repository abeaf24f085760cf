"""The audit trail of patient data: every read and write, by whom, from where.

Views build an Actor from the request once; selectors and services take it and
record what they read or wrote. Nothing about the patient beyond ids is written
here (no names, no search terms), so the trail itself leaks nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user
from django.contrib.auth.models import AnonymousUser

from clinic.models import AuditEvent, Clinic


@dataclass(frozen=True)
class Actor:
    user: object
    clinic: Clinic | None
    channel: str  # "web" | "api" | "fhir" | "admin" | "cds"
    ip: str | None = None

    @property
    def clinic_id(self):
        return self.clinic.pk if self.clinic else None


def client_ip(request) -> str | None:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the client's as they forwarded
    it (clinic.addresses.client_ip, the same address the lockout counts)."""
    from clinic.addresses import client_ip as address_of

    return address_of(request) or None


def actor_from_request(request, *, channel: str) -> Actor:
    user = request.user
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return Actor(
        user=user,
        clinic=membership.clinic if membership else None,
        channel=channel,
        ip=client_ip(request),
    )


def audit_record(
    *, actor: Actor, action: str, object_type: str, object_id="", patient_id=None, patient_ids=(), endpoint=""
) -> None:
    # Nobody signed in is "anonymous"; a caller named otherwise (an EHR by its issuer) keeps its name.
    username = ANONYMOUS if getattr(actor.user, "is_anonymous", False) else getattr(actor.user, "username", "")
    AuditEvent.objects.create(
        actor=actor.user if getattr(actor.user, "pk", None) else None,
        actor_username=username or "",
        clinic_id=actor.clinic_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        patient_id=patient_id,
        patient_ids=list(patient_ids),
        channel=actor.channel,
        ip_address=actor.ip,
        endpoint=endpoint[:255],
    )


# -- refused requests ---------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
PROBE_ACTIONS = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
# A URL's own values kept as the object id: plain ids and names only (a resource type, a number).
_PLAIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def channel_of(path: str) -> str:
    for prefix, channel in (("/api/", "api"), ("/fhir/", "fhir"), ("/admin/", "admin")):
        if path.startswith(prefix):
            return channel
    return "web"


def audit_probe(request, *, action: str) -> None:
    """Record a refused request (401, 403, or a 404 on a route: another clinic's object looks missing) with
    who asked (the user, or "anonymous") and where: the method and the URL pattern it matched, and the ids
    in the URL as object_id; never the path's other text, a query string or a body."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    if not signed_in and hasattr(request, "session") and request.session.get(SESSION_KEY):
        # A session's request refused before it was taken as signed in (DRF's CSRF check): name its user.
        user = get_user(request)
        signed_in = user.is_authenticated
    membership = getattr(user, "membership", None) if signed_in else None
    ids = [str(value) for value in match.kwargs.values() if _PLAIN.match(str(value))]
    actor = Actor(
        user=user if signed_in else AnonymousUser(),
        clinic=membership.clinic if membership else None,
        channel=channel_of(request.path),
        ip=client_ip(request),
    )
    audit_bounded(
        actor=actor,
        action=action,
        object_type=(match.url_name or match.view_name or "")[:32],
        object_id=",".join(ids)[:64],
        endpoint=f"{request.method} /{match.route}",
    )


def audit_bounded(
    *, actor: Actor, action: str, object_type: str, endpoint: str, object_id: str = "", caller: str | None = None
) -> None:
    """An audit row for a refused or unmatched request, under the bound on probe rows (below): per caller, kind
    and endpoint. `caller` is who the bound counts (the actor's name by default); give "" when the name is the
    caller's own unverified text (an unknown EHR issuer), so that changing it does not escape the bound."""
    decision, suppressed = _probe_allowance(actor=actor, action=action, endpoint=endpoint, caller=caller)
    row = {"object_type": object_type, "endpoint": endpoint}
    if suppressed:
        # The count of the previous window's probes that were not written one by one.
        audit_record(actor=actor, action=PROBES_SUPPRESSED, object_id=str(suppressed), **row)
    if decision == _RECORD:
        audit_record(actor=actor, action=action, object_id=object_id, **row)
    elif decision == _LIMITED:
        audit_record(actor=actor, action=PROBES_LIMITED, **row)


# -- the bound on probe rows ----------------------------------------------------------------------------
#
# A flood of refused requests (a scanner, an enumeration of ids) would otherwise write one row each and fill
# the trail. Per caller and kind of probe (address, user, endpoint pattern, action) at most PROBE_AUDIT_LIMIT
# rows are written in each window of PROBE_AUDIT_WINDOW seconds (fixed windows on the clock). The first probe
# past the bound writes one PROBES_LIMITED row (when the cutting began); the rest of the window is counted in
# the shared cache, and that count is written as one PROBES_SUPPRESSED row (object_id: the number) by the
# same caller's next probe of that kind in a later window, before its own row. See docs/security.md.

PROBES_LIMITED = "probes_limited"
PROBES_SUPPRESSED = "probes_suppressed"
PROBE_AUDIT_LIMIT = 20
PROBE_AUDIT_WINDOW = 60  # seconds
# How long an unreported count waits for the caller's next probe of the same kind.
_SUPPRESSED_KEPT = 7 * 24 * 3600
_RECORD, _LIMITED, _COUNTED = "record", "limited", "counted"
_KEY_PREFIX = "probe-audit"

logger = logging.getLogger(__name__)


def _clock() -> float:
    return time.time()


def _probe_allowance(*, actor: Actor, action: str, endpoint: str, caller: str | None = None) -> tuple[str, int]:
    """Whether this probe's row is written (_RECORD), replaced by the limit's row (_LIMITED) or only counted
    (_COUNTED); and the number of an earlier window's counted probes to report now (0 if none)."""
    from django.core.cache import cache

    limit = getattr(settings, "PROBE_AUDIT_LIMIT", PROBE_AUDIT_LIMIT)
    window = getattr(settings, "PROBE_AUDIT_WINDOW", PROBE_AUDIT_WINDOW)
    username = ANONYMOUS if getattr(actor.user, "is_anonymous", False) else getattr(actor.user, "username", "")
    username = username if caller is None else caller
    # Hashed: the key holds no address or user name, and any endpoint text is a valid key.
    kind = hashlib.sha256("\x1f".join((actor.ip or "", username, endpoint, action)).encode()).hexdigest()[:32]
    counted_key = f"{_KEY_PREFIX}:{kind}:counted"
    window_key = f"{_KEY_PREFIX}:{kind}:{int(_clock() // window)}"
    try:
        # cache.add then cache.incr: atomic across processes (Redis INCR), so concurrent probes never both
        # take the last recorded place.
        new_window = cache.add(window_key, 0, timeout=window + 1)
        try:
            seen = cache.incr(window_key)
        except ValueError:  # expired between the two calls
            cache.add(window_key, 1, timeout=window + 1)
            seen = 1
        suppressed = 0
        if new_window:
            suppressed = cache.get(counted_key) or 0
            if suppressed:
                # Leaves what a concurrent probe adds meanwhile; expired meanwhile, it is reported once all the same.
                with contextlib.suppress(ValueError):
                    cache.decr(counted_key, suppressed)
        if seen <= limit:
            return _RECORD, suppressed
        cache.add(counted_key, 0, timeout=_SUPPRESSED_KEPT)
        cache.incr(counted_key)
        return (_LIMITED if seen == limit + 1 else _COUNTED), suppressed
    except Exception:
        # Without the cache, every probe is written: the trail errs on the side of the signal.
        logger.warning("probe audit: the cache is unavailable; recording every probe", exc_info=True)
        return _RECORD, 0
