import dataclasses

from django.utils.translation import gettext

from clinic.templatetags.labels import lowerfirst
from workups.engine import evaluate, get_knowledge_base
from workups.engine.case import Case
from workups.engine.loader import DEFAULT_LANGUAGE, DISPOSITION_RANK
from workups.localized import current_kb, kb_language
from workups.models import HAND_ADDED, KEPT_ACCEPTED
from workups.services import case_snapshot, encounter_case


def workup_preview(*, case: Case, language: str | None = None) -> dict:
    """The workup the knowledge base recommends for a case, without storing anything, in the
    language asked for (the active one by default)."""
    return evaluate(current_kb(language), case)


def results_plan_change(*, encounter, workup, current: dict) -> dict | None:
    """What the results entered would change in the plan before the GP reviews them with the results: the
    disposition it would rise to ({"disposition", "raised"}), and the tests and referrals it would add, by name
    and urgency ({"added": [(name, urgency)]}). None when the latest workup already weighs exactly these results,
    or when they add nothing and raise nothing. The engine runs on them, and nothing is stored."""
    if workup is None or not current:
        return None
    results = {code: row.value for code, row in sorted(current.items())}
    case = dataclasses.replace(encounter_case(encounter), results=results)
    if workup.kind == "follow_up" and workup.case == {**case_snapshot(case), "results": results}:
        return None
    kb = current_kb()
    result = evaluate(kb, case)
    before = workup.result
    had = {row["code"] for row in before.get("items", [])} | {row["specialty"] for row in before.get("referrals", [])}
    added = [
        (kb.vocabulary.items[row["code"]]["name"], row["urgency"]) for row in result["items"] if row["code"] not in had
    ] + [
        (kb.vocabulary.specialties[row["specialty"]], row["urgency"])
        for row in result["referrals"]
        if row["specialty"] not in had
    ]
    raised = DISPOSITION_RANK[result["disposition"]] > DISPOSITION_RANK[before.get("disposition", "observe")]
    if not (added or raised):
        return None
    return {"disposition": result["disposition"], "raised": raised, "added": added}


def vocabulary_list(*, language: str | None = None) -> dict:
    """Every public code with its human name and group, for integrators and the UI."""
    kb = current_kb(language)
    vocabulary = kb.vocabulary
    codes = []
    for code, meta in vocabulary.findings.items():
        entry = {"code": code, "name": meta["name"], "group": meta["group"], "negative": meta["negative"]}
        if meta.get("sex"):
            entry["sex"] = meta["sex"]
        codes.append(entry)
    codes += [
        {"code": code, "name": meta["name"], "group": "item", "category": meta["category"]}
        for code, meta in vocabulary.items.items()
    ]
    for group, table in (
        ("specialty", vocabulary.specialties),
        ("category", vocabulary.categories),
        ("urgency", vocabulary.urgencies),
        ("disposition", vocabulary.dispositions),
        ("warning", vocabulary.warnings),
    ):
        codes += [{"code": code, "name": name, "group": group} for code, name in table.items()]
    codes += [{"code": code, "name": meta["name"], "group": "case"} for code, meta in vocabulary.case_fields.items()]
    for code, meta in vocabulary.results.items():
        entry = {"code": code, "name": meta["name"], "group": "result", "type": meta["type"]}
        if meta["type"] == "numeric":
            entry |= {"unit": meta["unit"], "plausible": list(meta["plausible"])}
        codes.append(entry)
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
        audit_record(
            actor=actor, action="view", object_type="workup", object_id=workup.pk, patient_id=encounter.patient_id
        )
    return workup


def encounters_with_disposition(encounters):
    """The record's encounters (a queryset), each with the disposition of its latest workup as
    `latest_disposition` (None before any), in the same query."""
    from django.db.models import OuterRef, Subquery

    from workups.models import Workup

    latest = Workup.objects.filter(encounter=OuterRef("pk")).order_by("-created_at", "-id")
    return encounters.annotate(latest_disposition=Subquery(latest.values("disposition")[:1]))


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
    audit_record(
        actor=actor, action="view", object_type=kind, object_id=row.pk, patient_id=row.workup.encounter.patient_id
    )
    return row


def workup_result(workup, language: str | None = None) -> dict:
    """The stored answer with its texts in `language`: as stored at generation when it was, else
    the stored case evaluated again in that language if the base has not changed since, else the
    default language's texts."""
    language = kb_language(language)
    if language == DEFAULT_LANGUAGE:
        return workup.result
    stored = (workup.translations or {}).get(language)
    if stored is not None:
        return stored
    kb = get_knowledge_base(language)
    if kb.version == workup.knowledge_base_version:
        from workups.services import case_from_snapshot

        return evaluate(kb, case_from_snapshot(workup.case))
    return workup.result


def engine_rows(result: dict) -> tuple[dict, dict]:
    """The engine's own rows of a result, items by code and referrals by specialty: what row_text and row_sources
    read a stored row's words from, in the result's language."""
    return (
        {row["code"]: row for row in result.get("items", ())},
        {row["specialty"]: row for row in result.get("referrals", ())},
    )


def _engine_row(row, engine: dict | None) -> dict | None:
    # What the GP added or typed stays theirs: only the engine's rows are read in the page's language.
    if row.added_by_clinician or not engine:
        return None
    return engine.get(row.code if hasattr(row, "code") else row.specialty)


def row_sources(row, engine: dict | None) -> list:
    """A row's sources as the knowledge base cites them in the result's language (a row stores the default
    language's); a row the GP added keeps its own."""
    found = _engine_row(row, engine)
    return found["sources"] if found else row.sources


def row_text(row, engine: dict | None) -> str:
    """A row's rationale (item) or reason (referral) in the result's language. What the GP typed
    stays as typed; what the engine wrote comes in the language of the page."""
    field = "rationale" if hasattr(row, "rationale") else "reason"
    found = _engine_row(row, engine)
    if found:
        return found[field]
    text = getattr(row, field)
    if getattr(row, "added_by_clinician", False) and text == HAND_ADDED:
        return gettext("Added by the clinician")
    if getattr(row, "added_by_clinician", False) and text == KEPT_ACCEPTED:
        return gettext(
            "Accepted before the findings changed; the guidance no longer recommends it. It stays as your order: "
            "undo and decline it if it is no longer wanted."
        )
    return text


def item_row(item, vocabulary, engine=None):
    return {
        "id": item.pk,
        "code": item.code,
        "name": vocabulary.items[item.code]["name"],
        "category": item.category,
        "urgency": item.urgency,
        "rationale": row_text(item, engine),
        "triggered_by": item.triggered_by,
        "sources": row_sources(item, engine),
        "rules": item.rules,
        "added_by_clinician": item.added_by_clinician,
        "decision": item.decision,
        "decision_reason": item.decision_reason,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
    }


def referral_row(referral, vocabulary, engine=None):
    return {
        "id": referral.pk,
        "specialty": referral.specialty,
        "name": vocabulary.specialties[referral.specialty],
        "urgency": referral.urgency,
        "reason": row_text(referral, engine),
        "triggered_by": referral.triggered_by,
        "sources": row_sources(referral, engine),
        "rules": referral.rules,
        "added_by_clinician": referral.added_by_clinician,
        "decision": referral.decision,
        "decision_reason": referral.decision_reason,
        "decided_at": referral.decided_at.isoformat() if referral.decided_at else None,
    }


def workup_representation(*, workup, encounter, language: str | None = None) -> dict:
    """The stored workup in the evaluate endpoint's shape, its rows carrying ids and decisions,
    its texts in `language` (the active one by default)."""
    from workups.services import workup_is_stale

    language = kb_language(language)
    vocabulary = get_knowledge_base(language).vocabulary
    result = workup_result(workup, language)
    engine_items, engine_referrals = engine_rows(result)
    return {
        **result,
        "id": workup.pk,
        "kind": workup.kind,
        "encounter": encounter.pk,
        "created_at": workup.created_at.isoformat(),
        "created_by": workup.created_by.get_username(),
        "knowledge_base_version": workup.knowledge_base_version,
        "stale": (not encounter.is_finalized) and workup_is_stale(workup, encounter),
        "items": [_with_new(item_row(item, vocabulary, engine_items), item, workup) for item in workup.items.all()],
        "referrals": [
            _with_new(referral_row(referral, vocabulary, engine_referrals), referral, workup)
            for referral in workup.referrals.all()
        ],
    }


def _with_new(row: dict, stored, workup) -> dict:
    """A follow-up workup's rows say whether they are new (not in the workup it followed); an initial
    workup's rows keep the evaluate shape."""
    if workup.kind == "follow_up":
        row["new"] = stored.is_new
    return row


def recommendation_row(row, *, language: str | None = None) -> dict:
    """One stored item or referral as the API and the page show it, in `language`."""
    from workups.models import WorkupItem

    language = kb_language(language)
    vocabulary = get_knowledge_base(language).vocabulary
    engine_items, engine_referrals = engine_rows(workup_result(row.workup, language))
    if isinstance(row, WorkupItem):
        return _with_new(item_row(row, vocabulary, engine_items), row, row.workup)
    return _with_new(referral_row(row, vocabulary, engine_referrals), row, row.workup)


FOUND = {"ru": "Выявлено", "en": "Found"}


def referral_letter_reason(row, *, language: str | None = None) -> str:
    """What a letter made from a recommended referral gives as its reason, in `language`: what this patient was
    found to have (the findings and results that triggered it), then what the referral is for (each rule's
    rationale after its colon). A rule's whole rationale names every finding that could fire it ("tingling,
    dizziness on standing or frequent urination: neurological assessment"); on a letter it would read as this
    patient's history."""
    language = kb_language(language)
    kb = get_knowledge_base(language)
    rationales = {rule.id: rule.rationale for rule in kb.rules}
    purposes = []
    for rule_id in row.rules or ():
        text = rationales.get(rule_id, "")
        purpose = text.split(": ", 1)[1] if ": " in text else text
        if purpose and purpose not in purposes:
            purposes.append(purpose)
    found = [kb.vocabulary.name_of(code) for code in row.triggered_by or ()]
    if not purposes:
        return recommendation_row(row, language=language)["reason"]
    parts = [f"{FOUND[language]}: {'; '.join(lowerfirst(name) for name in found)}."] if found else []
    purpose = "; ".join(purposes)
    parts.append(f"{purpose[:1].upper()}{purpose[1:]}.")
    return " ".join(parts)


def provisional_diagnosis(*, rule_ids, language: str | None = None) -> tuple[str, str]:
    """The ICD-10 code and its name in words for a recommendation issued by these rules: the first
    rule that names what it suspects (rules run emergency first), else paraesthesia (R20.2)."""
    kb = current_kb(language)
    named = {rule.id: rule.icd10 for rule in kb.rules if rule.icd10}
    for rule_id in rule_ids or ():
        if rule_id in named:
            return named[rule_id], kb.icd10[named[rule_id]]
    return kb.fallback_icd10, kb.icd10[kb.fallback_icd10]


def icd10_name(code: str, *, language: str | None = None) -> str:
    """The diagnosis in words for a code the knowledge base names; '' for any other valid code."""
    return current_kb(language).icd10.get(code, "")


# -- results (GUIDANCE 6) --------------------------------------------------------------------------


def results_of_encounter(*, actor, encounter):
    """Every result of the encounter, current ones first (by the vocabulary's order), then what they
    superseded, newest first. Audit-logged."""
    from clinic.audit import audit_record
    from workups.models import Result

    rows = list(Result.objects.filter(encounter=encounter).select_related("entered_by", "acknowledged_by"))
    order = get_knowledge_base().vocabulary.order
    rows.sort(
        key=lambda row: (
            row.superseded_at is not None,
            order.get(row.code, 10**6),
            row.code,
            -row.entered_at.timestamp(),
            -row.pk,
        )
    )
    audit_record(actor=actor, action="list", object_type="result", patient_id=encounter.patient_id)
    return rows


def result_get(*, actor, result_id, action: str = "view"):
    """A result of the actor's clinic, or 404. Audit-logged."""
    from django.http import Http404

    from clinic.audit import audit_record
    from workups.models import Result

    if actor.clinic is None:
        raise Http404("No such result.")
    try:
        result = Result.objects.select_related("encounter__patient", "entered_by", "acknowledged_by").get(
            pk=result_id, encounter__clinic=actor.clinic
        )
    except (Result.DoesNotExist, ValueError, TypeError):
        raise Http404("No such result.") from None
    audit_record(
        actor=actor, action=action, object_type="result", object_id=result.pk, patient_id=result.encounter.patient_id
    )
    return result


def result_row(result, *, language: str | None = None) -> dict:
    """One stored result as the API shows it: the interpretation stored at entry (its flag), the
    reference and names in `language` (the active one by default)."""
    language = kb_language(language)
    meta = get_knowledge_base(language).vocabulary.results[result.code]
    reference = result.reference
    if language != DEFAULT_LANGUAGE:
        reference = (result.reference_translations or {}).get(language, reference)
    return {
        "id": result.pk,
        "encounter": result.encounter_id,
        "code": result.code,
        "name": meta["name"],
        "value": result.value,
        "unit": meta.get("unit", ""),
        "flag": result.flag,
        "abnormal": result.abnormal,
        "reference": reference,
        "source": meta["source"],
        "item": result.item_id,
        "performed_on": result.performed_on.isoformat() if result.performed_on else None,
        "note": result.note,
        "entered_at": result.entered_at.isoformat(),
        "entered_by": result.entered_by.get_username() if result.entered_by_id else None,
        "current": result.superseded_at is None,
        "superseded_at": result.superseded_at.isoformat() if result.superseded_at else None,
        "superseded_by": result.superseded_by_id,
        "acknowledged": result.acknowledged_at is not None,
        "acknowledged_at": result.acknowledged_at.isoformat() if result.acknowledged_at else None,
        "acknowledged_by": result.acknowledged_by.get_username() if result.acknowledged_by_id else None,
        "acknowledgement_note": result.acknowledgement_note,
    }


def workup_initial(*, encounter):
    """The encounter's latest initial workup (what a follow-up is shown beside), or None."""
    from workups.models import Workup, WorkupKind

    return (
        Workup.objects.filter(encounter=encounter, kind=WorkupKind.INITIAL)
        .select_related("created_by")
        .prefetch_related("items", "referrals")
        .order_by("-created_at", "-id")
        .first()
    )
