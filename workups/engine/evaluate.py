"""The evaluator: a pure function of (knowledge base, case).

The order of the steps is the guidance's section 0:
rules fire (emergency, urgent, routine) -> triage -> baseline rules ->
emergency deferral -> merging -> safety rules -> stewardship and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workups.engine.case import Case
from workups.engine.conditions import EMPTY
from workups.engine.loader import (
    DISPOSITION_RANK,
    URGENCY_RANK,
    KnowledgeBase,
    Rule,
    SafetyRule,
)
from workups.engine.results import interpret

_LAST = 10**6


@dataclass(slots=True)
class _Context:
    present: frozenset[str]
    sex: str
    age: int
    duration_days: int
    pregnant: bool | None
    fired: set[str] = field(default_factory=set)
    results: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    """An item or referral while it is being merged: several rules may issue it."""

    kind: str
    code: str
    urgency: str
    tier: str
    triggers: set[str]
    rationales: list[str]
    sources: list[str]
    rules: list[str]

    def absorb(self, other: _Entry) -> None:
        if URGENCY_RANK[other.urgency] > URGENCY_RANK[self.urgency]:
            self.urgency = other.urgency
        self.triggers |= other.triggers
        _extend_unique(self.rationales, other.rationales)
        _extend_unique(self.sources, other.sources)
        _extend_unique(self.rules, other.rules)

    def copy_as(self, code: str, *, extra_sources=(), extra_rule=None) -> _Entry:
        return _Entry(
            kind=self.kind,
            code=code,
            urgency=self.urgency,
            tier=self.tier,
            triggers=set(self.triggers),
            rationales=list(self.rationales),
            sources=_unique([*self.sources, *extra_sources]),
            rules=_unique([*self.rules, *([extra_rule] if extra_rule else [])]),
        )


def _extend_unique(target: list, values) -> None:
    for value in values:
        if value not in target:
            target.append(value)


def _unique(values) -> list:
    result: list = []
    _extend_unique(result, values)
    return result


def _effective_findings(kb: KnowledgeBase, case: Case):
    """The case's findings, with fever present when the temperature says so (a copy only then: the case's
    own mapping is read-only)."""
    if case.temperature_c is not None and case.temperature_c >= kb.fever_threshold_c:
        return {**case.findings, "rf_fever": True}
    return case.findings


def _vital_signs_in_danger(kb: KnowledgeBase, case: Case) -> dict | None:
    """The warning for the recorded vital signs beyond their danger limits, each with its value, or None."""
    if not case.vitals and case.temperature_c is None:
        return None
    codes, labels = [], []
    for code, low, high, label in kb.vital_limits:
        value = case.temperature_c if code == "temperature_c" else case.vitals.get(code)
        if value is None or not ((low is not None and value <= low) or (high is not None and value >= high)):
            continue
        shown = f"{value:g}"
        codes.append(code)
        labels.append(label.format(value=shown.replace(".", ",") if kb.language == "ru" else shown))
    if not codes:
        return None
    return {
        "code": kb.vital_warning,
        "message": kb.vital_message.replace("{values}", "; ".join(labels)),
        "findings": codes,
    }


def _region_codes(kb: KnowledgeBase, regions: list[str], modality: str) -> list[str]:
    return [kb.vocabulary.region_studies[region][modality] for region in regions]


def _targets(kb, regions, code, region_modality) -> list[str]:
    return [code] if code is not None else _region_codes(kb, regions, region_modality)


def _merge(entries: list[_Entry], *, emergency: bool) -> tuple[dict[str, _Entry], ...]:
    """Items, referrals, postponed items and postponed referrals (those below the emergency tier during an
    emergency), each merged by code in one pass. Each entry is made fresh by _issue for one evaluation and
    used once: the first of a code becomes the merged one (no copy), the others are absorbed into it."""
    items: dict[str, _Entry] = {}
    referrals: dict[str, _Entry] = {}
    postponed_items: dict[str, _Entry] = {}
    postponed_referrals: dict[str, _Entry] = {}
    for entry in entries:
        if emergency and entry.tier != "emergency":
            merged = postponed_items if entry.kind == "item" else postponed_referrals
        else:
            merged = items if entry.kind == "item" else referrals
        existing = merged.get(entry.code)
        if existing is None:
            merged[entry.code] = entry
        else:
            existing.absorb(entry)
    return items, referrals, postponed_items, postponed_referrals


class _Evaluation:
    def __init__(self, kb: KnowledgeBase, case: Case):
        self.kb = kb
        vocabulary = self.vocabulary = kb.vocabulary
        self.case = case
        self.findings = _effective_findings(kb, case)
        present = frozenset([code for code, value in self.findings.items() if value])
        # A positive hCG makes the patient pregnant for every rule (N12).
        results = case.results
        pregnant = True if results and case.sex == "female" and results.get("res_hcg") is True else case.pregnant
        self.interpreted = self._interpret(case, pregnant) if results else []
        self.ctx = _Context(
            present,
            case.sex,
            case.age,
            case.duration_days,
            pregnant,
            results=dict(results),
            flags={row["code"]: row["flag"] for row in self.interpreted},
        )
        self.regions = [
            region for region, locations in vocabulary.locations_by_region.items() if not locations.isdisjoint(present)
        ]
        self.withheld: list[dict] = []
        self.warnings: list[dict] = []

    def _interpret(self, case: Case, pregnant) -> list[dict]:
        rows = []
        results = self.vocabulary.results
        for code in sorted(case.results, key=lambda code: self.vocabulary.order.get(code, _LAST)):
            meta = results[code]
            value = case.results[code]
            flag, reference = interpret(
                meta, value, sex=case.sex, age=case.age, pregnant=pregnant, language=self.kb.language
            )
            rows.append(
                {
                    "code": code,
                    "name": meta["name"],
                    "value": value,
                    "unit": meta["unit"],
                    "flag": flag,
                    "reference": reference,
                    "source": meta["source"],
                }
            )
        return rows

    # -- step 1: the clinical rules ------------------------------------------------------------
    def _issue(self, rule: Rule, triggers: frozenset[str]) -> list[_Entry]:
        entries = []
        for recommendation in rule.recommendations:
            found = triggers
            if recommendation.when is not None:
                extra = recommendation.when(self.ctx)
                if extra is None:
                    continue
                if extra:
                    found = triggers | extra
            code = recommendation.code
            targets = (
                (code,) if code is not None else _region_codes(self.kb, self.regions, recommendation.region_modality)
            )
            for target in targets:
                entries.append(
                    _Entry(
                        recommendation.kind,
                        target,
                        recommendation.urgency,
                        rule.tier,
                        set(found),
                        [recommendation.rationale],
                        list(rule.sources),
                        [rule.id],
                    )
                )
        return entries

    def fire_rules(self):
        proposals: list[_Entry] = []
        contributing: list[tuple[Rule, frozenset[str]]] = []
        rule_not_indicated: list[tuple[str, str, tuple[str, ...]]] = []
        kb, ctx = self.kb, self.ctx
        # Only the rules the recorded findings and results can make fire, in the base's order.
        candidates = set(kb.unindexed_rules)
        index = kb.rule_index
        for code in ctx.present:
            positions = index.get(code)
            if positions:
                candidates.update(positions)
        for code in ctx.results:
            positions = index.get(code)
            if positions:
                candidates.update(positions)
        rules, fired = kb.rules, ctx.fired
        for position in sorted(candidates):
            rule = rules[position]
            triggers = rule.when(ctx)
            if triggers is None:
                continue
            fired.add(rule.id)
            entries = self._issue(rule, triggers)
            if entries:
                contributing.append((rule, triggers))
                proposals.extend(entries)
            for entry in rule.not_indicated:
                for code in _targets(self.kb, self.regions, entry.code, entry.region_modality):
                    rule_not_indicated.append((code, entry.reason, rule.sources))
        return proposals, contributing, rule_not_indicated

    # -- step 2: triage ------------------------------------------------------------------------
    def triage(self, contributing) -> tuple[str, list[str]]:
        disposition = "observe"
        for rule, _ in contributing:
            if DISPOSITION_RANK[rule.tier] > DISPOSITION_RANK[disposition]:
                disposition = rule.tier
        unscreened = [code for code in self.kb.red_flags if code not in self.findings]
        if unscreened and disposition == "observe":
            disposition = self.kb.red_flag_minimum_disposition
        return disposition, unscreened

    def baseline(self, contributing) -> list[_Entry]:
        # Baseline tests answer the numbness itself and whatever raised the disposition.
        locations = frozenset(code for region in self.regions for code in self.vocabulary.region_locations(region))
        everything = frozenset().union(*(triggers for _, triggers in contributing)) | (locations & self.ctx.present)
        entries = []
        for rule in self.kb.baseline_rules:
            own = rule.when(self.ctx) if rule.when is not None else EMPTY
            if own is None:
                continue
            self.ctx.fired.add(rule.id)
            entries.extend(self._issue(rule, everything | own))
        return entries

    @staticmethod
    def _defer(postponed: dict[str, _Entry], issued: dict[str, _Entry]) -> dict[str, _Entry]:
        """What lower tiers recommended during an emergency; what is issued anyway is merged into it."""
        deferred = {}
        for code, entry in postponed.items():
            if code in issued:
                issued[code].absorb(entry)
            else:
                deferred[code] = entry
        return deferred

    # -- step 4: safety --------------------------------------------------------------------------
    def _replace(self, rule: SafetyRule, items: dict[str, _Entry], *, deferred: bool = False) -> bool:
        withheld_without_alternative = False
        for code in [code for code in items if code in rule.replace]:
            target = rule.replace[code]
            if isinstance(target, dict):
                replacements = _region_codes(self.kb, self.regions, target["region"])
            elif target is None:
                replacements = []
            else:
                replacements = [target]
            original = items.pop(code)
            for replacement in replacements:
                entry = original.copy_as(replacement, extra_sources=rule.sources, extra_rule=rule.id)
                # Its rationale says what it stands in for and why: the one it copies was written for the other study.
                swap = f"{self.vocabulary.item_name(code)} → {self.vocabulary.item_name(replacement)}"
                entry.rationales.append(f"{swap}: {rule.reason[:1].lower()}{rule.reason[1:]}")
                if replacement in items:
                    items[replacement].absorb(entry)
                else:
                    items[replacement] = entry
            if not replacements:
                withheld_without_alternative = True
            # Deferred ones too (GUIDANCE 0.2): nothing disappears silently.
            self.withheld.append(
                {
                    "code": code,
                    "name": self.vocabulary.item_name(code),
                    "reason": rule.reason,
                    "replaced_by": replacements[0] if replacements else None,
                    "replacements": replacements,
                    "urgency": original.urgency,
                    "triggered_by": self._ordered(original.triggers),
                    "sources": list(rule.sources),
                    "rule": rule.id,
                    "deferred": deferred,
                }
            )
        return withheld_without_alternative

    def _fallback(self, rule, triggers, withheld_rows, referrals, *also_deciding) -> None:
        """Someone must decide on the imaging that could not be ordered, as soon as it was needed; a specialist
        already seen that soon does (in `referrals` or `also_deciding`), otherwise the fallback specialty."""
        without_alternative = [entry for entry in withheld_rows if not entry["replacements"]]
        if not without_alternative or not rule.fallback_referral:
            return
        urgency = max((entry["urgency"] for entry in without_alternative), key=URGENCY_RANK.get)
        fallback = rule.fallback_referral
        deciding = [*referrals.values(), *(row for table in also_deciding for row in table.values())]
        if any(
            row.code in fallback["unless"] and URGENCY_RANK[row.urgency] >= URGENCY_RANK[urgency] for row in deciding
        ):
            return
        entry = _Entry(
            "referral",
            fallback["specialty"],
            urgency,
            urgency,
            set().union(*(e["triggered_by"] for e in without_alternative)) | set(triggers),
            [fallback["reason"]],
            list(rule.sources),
            [rule.id],
        )
        if entry.code in referrals:
            referrals[entry.code].absorb(entry)
        else:
            referrals[entry.code] = entry

    def _add(self, rule, triggers, items, matching, target) -> None:
        urgency = max((items[code].urgency for code in matching), key=URGENCY_RANK.get)
        triggers_of_matching = set().union(*(items[code].triggers for code in matching))
        target[rule.add["code"]] = _Entry(
            "item",
            rule.add["code"],
            urgency,
            urgency,
            triggers_of_matching | set(triggers),
            [rule.add["rationale"]],
            list(rule.sources),
            [rule.id],
        )

    def apply_safety(self, items, referrals, deferred_items, deferred_referrals):
        """Safety rules in order, on what is issued and on what waits behind an emergency (GUIDANCE 0.2); a rule
        counts as fired only when it changed or flagged something."""
        for rule in self.kb.safety:
            if rule.touches.isdisjoint(items) and rule.touches.isdisjoint(deferred_items):
                continue  # nothing it replaces or looks for is recommended: it would change nothing
            triggers = rule.when(self.ctx)
            if triggers is None:
                continue
            if rule.replace:
                already_withheld = len(self.withheld)
                self._replace(rule, items)
                issued_changes = self.withheld[already_withheld:]
                self._replace(rule, deferred_items, deferred=True)
                deferred_changes = self.withheld[already_withheld + len(issued_changes) :]
                if issued_changes or deferred_changes:
                    self.ctx.fired.add(rule.id)
                self._fallback(rule, triggers, issued_changes, referrals)
                # The deciding referral of a deferred study waits with it.
                self._fallback(rule, triggers, deferred_changes, deferred_referrals, referrals)
            if rule.select is None:
                continue
            selected = rule.selected
            matching = [code for code in items if code in selected]
            waiting = [code for code in deferred_items if code in selected]
            if not (matching or waiting):
                continue
            if rule.warn:
                self.ctx.fired.add(rule.id)
                self.warnings.append(
                    {
                        "code": rule.warn["warning"],
                        "message": rule.warn["message"],
                        "findings": self._ordered(triggers),
                        "items": self._ordered([*matching, *waiting]),
                    }
                )
            if rule.add and rule.add["code"] not in items:
                if matching:
                    self.ctx.fired.add(rule.id)
                    self._add(rule, triggers, items, matching, items)
                elif rule.add["code"] not in deferred_items:
                    # A deferred ionising study brings a deferred pregnancy test.
                    self.ctx.fired.add(rule.id)
                    self._add(rule, triggers, deferred_items, waiting, deferred_items)

    # -- step 5: stewardship -------------------------------------------------------------------
    def not_indicated(self, items, deferred_items, rule_not_indicated) -> list[dict]:
        vocabulary = self.vocabulary
        withheld_codes = {entry["code"] for entry in self.withheld}
        considered = set(items) | set(deferred_items) | withheld_codes
        result: dict[str, dict] = {}
        if not vocabulary.spine_imaging.isdisjoint(considered):
            # Spine imaging is part of this workup: saying some other study is "not indicated"
            # would contradict it.
            return []
        if not self.kb.red_flag_codes.isdisjoint(self.ctx.present):
            # "No red flags" would be false (GUIDANCE 0.6).
            return []
        for region in self.regions:
            for modality in ("xray", "mri"):
                code = vocabulary.region_studies[region][modality]
                result[code] = {
                    "code": code,
                    "name": vocabulary.item_name(code),
                    "reason": self.kb.stewardship["reason"],
                    "sources": list(self.kb.stewardship["sources"]),
                }
        for code, reason, sources in rule_not_indicated:
            entry = result.get(code)
            if entry is None or entry["reason"] == self.kb.stewardship["reason"]:
                # A rule's own reason is more specific than the general stewardship one.
                previous_sources = entry["sources"] if entry else []
                result[code] = {
                    "code": code,
                    "name": vocabulary.item_name(code),
                    "reason": reason,
                    "sources": _unique([*sources, *previous_sources]),
                }
            else:
                _extend_unique(entry["sources"], sources)
        order = vocabulary.order
        return sorted(result.values(), key=lambda entry: order[entry["code"]])

    # -- output ----------------------------------------------------------------------------------
    def _ordered(self, codes) -> list[str]:
        return sorted(codes, key=self.vocabulary.order.__getitem__)

    def _item_out(self, entry: _Entry) -> dict:
        meta = self.vocabulary.items[entry.code]
        return {
            "code": entry.code,
            "name": meta["name"],
            "category": meta["category"],
            "urgency": entry.urgency,
            "rationale": "; ".join(entry.rationales),
            "triggered_by": self._ordered(entry.triggers),
            "sources": list(entry.sources),
            "rules": list(entry.rules),
        }

    def _referral_out(self, entry: _Entry) -> dict:
        return {
            "specialty": entry.code,
            "name": self.vocabulary.specialties[entry.code],
            "urgency": entry.urgency,
            "reason": "; ".join(entry.rationales),
            "triggered_by": self._ordered(entry.triggers),
            "sources": list(entry.sources),
            "rules": list(entry.rules),
        }

    def _items_sorted(self, entries) -> list[_Entry]:
        if not entries:
            return []
        # Most urgent first, then by category, then in the clinical order (the last two precomputed per code).
        places = self.vocabulary.item_places
        return sorted(entries, key=lambda entry: (-URGENCY_RANK[entry.urgency], places[entry.code]))

    def _referrals_sorted(self, entries) -> list[_Entry]:
        if not entries:
            return []
        order = self.vocabulary.order
        return sorted(entries, key=lambda entry: (-URGENCY_RANK[entry.urgency], order[entry.code]))

    def run(self) -> dict:
        proposals, contributing, rule_not_indicated = self.fire_rules()
        disposition, unscreened = self.triage(contributing)
        if disposition != "observe":
            proposals.extend(self.baseline(contributing))
        # During an emergency only its own proposals are issued; the rest wait (deferred).
        items, referrals, postponed_items, postponed_referrals = _merge(proposals, emergency=disposition == "emergency")
        deferred_items = self._defer(postponed_items, items)
        deferred_referrals = self._defer(postponed_referrals, referrals)
        self.apply_safety(items, referrals, deferred_items, deferred_referrals)
        # Safety may issue what was deferred (a replacement, a fallback referral): it is issued, then.
        deferred_items = self._defer(deferred_items, items)
        deferred_referrals = self._defer(deferred_referrals, referrals)
        not_indicated = self.not_indicated(items, deferred_items, rule_not_indicated)
        if unscreened:
            self.warnings.insert(
                0, {"code": self.kb.red_flag_warning, "message": self.kb.red_flag_message, "findings": unscreened}
            )
        if self.kb.vital_limits:
            danger = _vital_signs_in_danger(self.kb, self.case)
            if danger:
                self.warnings.insert(0, danger)
        deferred = [
            {"kind": "item", **self._item_out(entry), "reason": "; ".join(entry.rationales)}
            for entry in self._items_sorted(deferred_items.values())
        ] + [
            {"kind": "referral", "code": entry.code, **self._referral_out(entry)}
            for entry in self._referrals_sorted(deferred_referrals.values())
        ]
        observe = self.kb.observe if disposition == "observe" else None
        return {
            "knowledge_base_version": self.kb.version,
            "disposition": disposition,
            "red_flags": [code for code in self.kb.red_flags if code in self.ctx.present],
            "results": self.interpreted,
            "items": [self._item_out(entry) for entry in self._items_sorted(items.values())],
            "referrals": [self._referral_out(entry) for entry in self._referrals_sorted(referrals.values())],
            "deferred": deferred,
            "withheld": self.withheld,
            "not_indicated": not_indicated,
            "warnings": self.warnings,
            "advice": list(observe["advice"]) if observe else [],
            "review": observe["review"] if observe else None,
            "fired_rules": sorted(self.ctx.fired, key=self.kb.rule_positions.__getitem__),
        }


def evaluate(kb: KnowledgeBase, case: Case) -> dict:
    """Recommend the workup for one case. Pure: same inputs, same answer."""
    return _Evaluation(kb, case).run()


def order_check(kb: KnowledgeBase, case: Case, code: str) -> dict:
    """Is this one order (an item code) right for this case? Pure, like evaluate().

    Returns {"verdict": "unsafe" | "not_indicated" | "indicated" | "not_assessed", "reason", "sources",
    "alternatives", "rule"}: unsafe when a safety rule would withhold or replace it (with the
    alternatives it would issue instead), not indicated when the guidance advises against it here,
    indicated when the workup recommends it (or defers it behind an emergency).
    """
    evaluation = _Evaluation(kb, case)
    result = evaluation.run()
    applicable = [rule for rule in kb.safety if rule.replace and rule.when(evaluation.ctx) is not None]

    def replaced(item, rules):
        target = rules[0].replace[item]
        if isinstance(target, dict):
            return _region_codes(kb, evaluation.regions, target["region"])
        return [target] if target else []

    for index, rule in enumerate(applicable):
        if code not in rule.replace:
            continue
        # The alternative must itself survive the safety rules after this one (an MRI for a pregnant
        # patient who cannot have one is withheld in turn).
        alternatives = replaced(code, [rule])
        for later in applicable[index + 1 :]:
            alternatives = [
                alt for item in alternatives for alt in (replaced(item, [later]) if item in later.replace else [item])
            ]
        return {
            "verdict": "unsafe",
            "reason": rule.reason,
            "sources": list(rule.sources),
            "alternatives": list(dict.fromkeys(alternatives)),
            "rule": rule.id,
        }
    if code in {row["code"] for row in result["items"]} or code in {
        row["code"] for row in result["deferred"] if row["kind"] == "item"
    }:
        return {"verdict": "indicated", "reason": "", "sources": [], "alternatives": [], "rule": None}
    why = why_not_indicated(kb, result, code)
    if why is not None:
        return {"verdict": "not_indicated", **why, "rule": None}
    return {"verdict": "not_assessed", "reason": "", "sources": [], "alternatives": [], "rule": None}


def why_not_indicated(kb: KnowledgeBase, result: dict, code: str) -> dict | None:
    """Why the guidance advises against `code`, not recommended in `result` (evaluate's answer for the case), or
    None when it has no view on it: {"reason", "sources", "alternatives"}. A study `not_indicated` lists has its
    reason. Another spine study is not "nothing calls for spine imaging" when the workup recommends one: it names
    that one instead, with its sources. With a red flag present, or a spine study withheld, the general reason
    would be false (GUIDANCE 0.6), and the guidance has no view."""
    for row in result["not_indicated"]:
        if row["code"] == code:
            return {"reason": row["reason"], "sources": list(row["sources"]), "alternatives": []}
    vocabulary = kb.vocabulary
    if not vocabulary.is_spine_imaging(code):
        return None
    planned = [*result["items"], *(row for row in result["deferred"] if row["kind"] == "item")]
    studies = [row for row in planned if vocabulary.is_spine_imaging(row["code"]) and row["code"] != code]
    if studies:
        names = ", ".join(vocabulary.item_name(row["code"]) for row in studies)
        return {
            "reason": kb.stewardship["instead"].replace("{studies}", names),
            "sources": _unique(source for row in studies for source in row["sources"]),
            "alternatives": [row["code"] for row in studies],
        }
    if result["red_flags"] or any(vocabulary.is_spine_imaging(row["code"]) for row in result["withheld"]):
        return None
    return {"reason": kb.stewardship["reason"], "sources": list(kb.stewardship["sources"]), "alternatives": []}
