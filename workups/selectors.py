from workups.engine import evaluate, get_knowledge_base
from workups.engine.case import Case


def workup_preview(*, case: Case) -> dict:
    """The workup the knowledge base recommends for a case, without storing anything."""
    return evaluate(get_knowledge_base(), case)


def vocabulary_list() -> dict:
    """Every public code with its human name and group, for integrators and the UI."""
    kb = get_knowledge_base()
    vocabulary = kb.vocabulary
    codes = []
    for code, meta in vocabulary.findings.items():
        entry = {"code": code, "name": meta["name"], "group": meta["group"], "negative": meta["negative"]}
        if meta.get("sex"):
            entry["sex"] = meta["sex"]
        codes.append(entry)
    codes += [{"code": code, "name": meta["name"], "group": "item", "category": meta["category"]}
              for code, meta in vocabulary.items.items()]
    for group, table in (("specialty", vocabulary.specialties), ("category", vocabulary.categories),
                         ("urgency", vocabulary.urgencies), ("disposition", vocabulary.dispositions),
                         ("warning", vocabulary.warnings)):
        codes += [{"code": code, "name": name, "group": group} for code, name in table.items()]
    codes += [{"code": code, "name": meta["name"], "group": "case"} for code, meta in vocabulary.case_fields.items()]
    return {"knowledge_base_version": kb.version, "groups": dict(vocabulary.groups), "codes": codes}


def workup_latest(*, actor, encounter):
    """The encounter's latest workup with its rows (one query each), or None. Audit-logged."""
    from clinic.audit import audit_record
    from workups.models import Workup

    workup = (
        Workup.objects.filter(encounter=encounter)
        .select_related("created_by")
        .prefetch_related("items", "referrals")
        .order_by("-created_at", "-id")
        .first()
    )
    if workup is not None:
        audit_record(actor=actor, action="view", object_type="workup", object_id=workup.pk,
                     patient_id=encounter.patient_id)
    return workup


def recommendation_get(*, actor, model, pk):
    """A workup item or referral of the actor's clinic, or 404."""
    from django.http import Http404

    from clinic.audit import audit_record

    if actor.clinic is None:
        raise Http404("Not found.")
    try:
        row = model.objects.select_related("workup__encounter__patient").get(
            pk=pk, workup__encounter__clinic=actor.clinic
        )
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None
    kind = "workup_item" if model._meta.model_name == "workupitem" else "workup_referral"
    audit_record(actor=actor, action="view", object_type=kind, object_id=row.pk,
                 patient_id=row.workup.encounter.patient_id)
    return row


def item_row(item, vocabulary):
    return {
        "id": item.pk,
        "code": item.code,
        "name": vocabulary.items[item.code]["name"],
        "category": item.category,
        "urgency": item.urgency,
        "rationale": item.rationale,
        "triggered_by": item.triggered_by,
        "sources": item.sources,
        "rules": item.rules,
        "added_by_clinician": item.added_by_clinician,
        "decision": item.decision,
        "decision_reason": item.decision_reason,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
    }


def referral_row(referral, vocabulary):
    return {
        "id": referral.pk,
        "specialty": referral.specialty,
        "name": vocabulary.specialties[referral.specialty],
        "urgency": referral.urgency,
        "reason": referral.reason,
        "triggered_by": referral.triggered_by,
        "sources": referral.sources,
        "rules": referral.rules,
        "added_by_clinician": referral.added_by_clinician,
        "decision": referral.decision,
        "decision_reason": referral.decision_reason,
        "decided_at": referral.decided_at.isoformat() if referral.decided_at else None,
    }


def workup_representation(*, workup, encounter) -> dict:
    """The stored workup in the evaluate endpoint's shape, its rows carrying ids and decisions."""
    from workups.services import workup_is_stale

    vocabulary = get_knowledge_base().vocabulary
    return {
        **workup.result,
        "id": workup.pk,
        "encounter": encounter.pk,
        "created_at": workup.created_at.isoformat(),
        "created_by": workup.created_by.get_username(),
        "knowledge_base_version": workup.knowledge_base_version,
        "stale": (not encounter.is_finalized) and workup_is_stale(workup, encounter),
        "items": [item_row(item, vocabulary) for item in workup.items.all()],
        "referrals": [referral_row(referral, vocabulary) for referral in workup.referrals.all()],
    }
