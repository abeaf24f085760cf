"""Reads of referrals, requisitions and leaflets: clinic-scoped (404 otherwise) and audit-logged."""

from django.http import Http404

from clinic.audit import Actor, audit_record
from referrals.models import Leaflet, Referral, Requisition


def referral_get(*, actor: Actor, referral_id, action: str = "view") -> Referral:
    if actor.clinic is None:
        raise Http404("No such referral.")
    try:
        referral = Referral.objects.select_related("encounter__patient").get(pk=referral_id, clinic=actor.clinic)
    except (Referral.DoesNotExist, ValueError, TypeError):
        raise Http404("No such referral.") from None
    audit_record(
        actor=actor,
        action=action,
        object_type="referral",
        object_id=referral.pk,
        patient_id=referral.encounter.patient_id,
    )
    return referral


def referrals_of_encounter(*, actor: Actor, encounter):
    audit_record(actor=actor, action="list", object_type="referral", patient_id=encounter.patient_id)
    return Referral.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id")


def requisition_latest(*, actor: Actor, encounter, action: str = "view") -> Requisition | None:
    requisition = (
        Requisition.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id").first()
    )
    if requisition is not None:
        audit_record(
            actor=actor,
            action=action,
            object_type="requisition",
            object_id=requisition.pk,
            patient_id=encounter.patient_id,
        )
    return requisition


def leaflet_latest(*, actor: Actor, encounter, action: str = "view") -> Leaflet | None:
    leaflet = Leaflet.objects.filter(encounter=encounter, clinic=actor.clinic).order_by("-created_at", "-id").first()
    if leaflet is not None:
        audit_record(
            actor=actor, action=action, object_type="leaflet", object_id=leaflet.pk, patient_id=encounter.patient_id
        )
    return leaflet
