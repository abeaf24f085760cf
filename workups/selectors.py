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
    return {"knowledge_base_version": kb.version, "groups": dict(vocabulary.groups), "codes": codes}
