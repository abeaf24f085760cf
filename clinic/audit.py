"""The audit trail of patient data: every read and write, by whom, from where.

Views build an Actor from the request once; selectors and services take it and
record what they read or wrote. Nothing about the patient beyond ids is written
here (no names, no search terms), so the trail itself leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinic.models import AuditEvent, Clinic


@dataclass(frozen=True)
class Actor:
    user: object
    clinic: Clinic | None
    channel: str  # "web" | "api"
    ip: str | None = None

    @property
    def clinic_id(self):
        return self.clinic.pk if self.clinic else None


def client_ip(request) -> str | None:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the client's as they forwarded
    it (clinic.lockout.client_ip, the same address the lockout counts)."""
    from clinic.lockout import client_address

    return client_address(request) or None


def actor_from_request(request, *, channel: str) -> Actor:
    user = request.user
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return Actor(
        user=user,
        clinic=membership.clinic if membership else None,
        channel=channel,
        ip=client_ip(request),
    )


def audit_record(*, actor: Actor, action: str, object_type: str, object_id="", patient_id=None, patient_ids=()) -> None:
    AuditEvent.objects.create(
        actor=actor.user if getattr(actor.user, "pk", None) else None,
        actor_username=getattr(actor.user, "username", "") or "",
        clinic_id=actor.clinic_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        patient_id=patient_id,
        patient_ids=list(patient_ids),
        channel=actor.channel,
        ip_address=actor.ip,
    )
