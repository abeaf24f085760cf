"""The audit trail of patient data: every read and write, by whom, from where.

Views build an Actor from the request once; selectors and services take it and
record what they read or wrote. Nothing about the patient beyond ids is written
here (no names, no search terms), so the trail itself leaks nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    audit_record(
        actor=Actor(
            user=user if signed_in else AnonymousUser(),
            clinic=membership.clinic if membership else None,
            channel=channel_of(request.path),
            ip=client_ip(request),
        ),
        action=action,
        object_type=(match.url_name or match.view_name or "")[:32],
        object_id=",".join(ids)[:64],
        endpoint=f"{request.method} /{match.route}",
    )
