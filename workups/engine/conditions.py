"""The condition language of the rules, compiled once at load time.

A condition is a one-key mapping:

    all: [COND, ...]            every one holds
    any: [COND, ...]            at least one holds
    not: COND                   it does not hold
    present: CODE               the finding is recorded present
    any_present: [CODE, ...]    at least one of them is present
    region: thoracic | lumbar   a location finding of that region is present
    sex: female | male
    pregnant: true | false      `false` holds when pregnancy is not recorded as true
    age: {gte|gt|lte|lt: N} or {between: [LOW, HIGH]}   (inclusive)
    duration_days: same comparisons as age
    fired: RULE_ID              a rule evaluated earlier fired
    result: {code: CODE, flag: FLAG | [FLAG, ...]}        a result was entered and flagged so
    result: {code: CODE, gte|gt|lte|lt: N, ...}           a numeric result meets every comparison

A compiled condition is a function of the evaluation context that returns
None when it does not hold, or the set of recorded codes that made it hold
(its triggers) when it does. Nothing is looked up by name at evaluation time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from workups.engine.errors import KnowledgeBaseError

EMPTY: frozenset[str] = frozenset()
PREGNANT = frozenset({"pregnant"})


class Context(Protocol):
    present: frozenset[str]
    sex: str
    age: int
    duration_days: int
    pregnant: bool | None
    fired: set[str]
    results: dict
    flags: dict


Condition = Callable[[Context], frozenset[str] | None]

FLAGS = ("low", "normal", "high", "positive", "negative", "present", "absent")

_COMPARISONS = {
    "gte": lambda value, limit: value >= limit,
    "gt": lambda value, limit: value > limit,
    "lte": lambda value, limit: value <= limit,
    "lt": lambda value, limit: value < limit,
}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is(raw, operator) -> bool:
    """Is this raw condition a one-key mapping with this operator?"""
    return isinstance(raw, dict) and len(raw) == 1 and operator in raw


class ConditionCompiler:
    def __init__(self, vocabulary, *, known_rules: frozenset[str], where: str):
        self.vocabulary = vocabulary
        self.known_rules = known_rules
        self.where = where

    def error(self, message):
        return KnowledgeBaseError(f"{self.where}: {message}")

    def compile(self, raw) -> Condition:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise self.error(f"a condition is a mapping with exactly one operator, got {raw!r}")
        ((operator, argument),) = raw.items()
        method = getattr(self, f"_op_{operator}", None)
        if method is None:
            raise self.error(f"unknown operator {operator!r}")
        return method(argument)

    def _finding(self, code):
        if code not in self.vocabulary.findings:
            raise self.error(f"unknown finding code {code!r}")
        return code

    def _list(self, argument, operator):
        if not isinstance(argument, list) or not argument:
            raise self.error(f"{operator!r} takes a non-empty list")
        return argument

    def _op_all(self, argument):
        # The findings that must all be present are checked at once, as one subset test, before the other
        # parts (conditions have no side effects, so the order does not change the answer).
        required = frozenset(
            self._finding(part["present"]) for part in self._list(argument, "all") if _is(part, "present")
        )
        parts = tuple(self.compile(part) for part in argument if not _is(part, "present"))

        def condition(ctx):
            if not required <= ctx.present:
                return None
            triggers = required
            for part in parts:
                found = part(ctx)
                if found is None:
                    return None
                if found:
                    triggers = triggers | found
            return triggers

        return condition

    def _op_any(self, argument):
        parts = tuple(self.compile(part) for part in self._list(argument, "any"))

        def condition(ctx):
            triggers = None
            for part in parts:
                found = part(ctx)
                if found is not None:
                    triggers = found if triggers is None else triggers | found
            return triggers

        return condition

    def _op_not(self, argument):
        inner = self.compile(argument)
        if _is(argument, "fired"):  # the most common negation: checked without calling the inner condition
            rule_id = argument["fired"]
            return lambda ctx: None if rule_id in ctx.fired else EMPTY
        return lambda ctx: EMPTY if inner(ctx) is None else None

    def _op_present(self, argument):
        code = self._finding(argument)
        hit = frozenset({code})
        return lambda ctx: hit if code in ctx.present else None

    def _op_any_present(self, argument):
        codes = frozenset(self._finding(code) for code in self._list(argument, "any_present"))

        def condition(ctx):
            found = codes & ctx.present
            return found or None

        return condition

    def _op_region(self, argument):
        if argument not in self.vocabulary.region_studies:
            raise self.error(f"unknown region {argument!r}")
        locations = self.vocabulary.region_locations(argument)

        def condition(ctx):
            found = locations & ctx.present
            return found or None

        return condition

    def _op_sex(self, argument):
        if argument not in ("female", "male"):
            raise self.error(f"sex must be 'female' or 'male', got {argument!r}")
        return lambda ctx: EMPTY if ctx.sex == argument else None

    def _op_pregnant(self, argument):
        if not isinstance(argument, bool):
            raise self.error("pregnant takes true or false")
        if argument:
            return lambda ctx: PREGNANT if ctx.pregnant is True else None
        return lambda ctx: EMPTY if ctx.pregnant is not True else None

    def _comparison(self, argument, attribute):
        if not isinstance(argument, dict) or len(argument) != 1:
            raise self.error(f"{attribute} takes one comparison: gte, gt, lte, lt or between")
        ((operator, limit),) = argument.items()
        if operator == "between":
            if not (isinstance(limit, list) and len(limit) == 2 and all(map(_number, limit)) and limit[0] <= limit[1]):
                raise self.error(f"{attribute} between takes [low, high]")
            low, high = limit
            return lambda ctx: EMPTY if low <= getattr(ctx, attribute) <= high else None
        compare = _COMPARISONS.get(operator)
        if compare is None:
            raise self.error(f"unknown comparison {operator!r} for {attribute}")
        if not _number(limit):
            raise self.error(f"{attribute} {operator} takes a number")
        return lambda ctx: EMPTY if compare(getattr(ctx, attribute), limit) else None

    def _op_age(self, argument):
        return self._comparison(argument, "age")

    def _op_duration_days(self, argument):
        return self._comparison(argument, "duration_days")

    def _op_fired(self, argument):
        if argument not in self.known_rules:
            raise self.error(f"fired: {argument!r} is not a rule evaluated before this one")
        return lambda ctx: EMPTY if argument in ctx.fired else None

    def _op_result(self, argument):
        if not isinstance(argument, dict) or "code" not in argument or len(argument) < 2:
            raise self.error("result takes {code: CODE, flag: ...} or {code: CODE, gte/gt/lte/lt: N}")
        code = argument["code"]
        meta = self.vocabulary.results.get(code)
        if meta is None:
            raise self.error(f"unknown result code {code!r}")
        hit = frozenset({code})
        tests = {key: value for key, value in argument.items() if key != "code"}
        if "flag" in tests:
            if len(tests) != 1:
                raise self.error("result: give either flag or comparisons, not both")
            flags = tests["flag"] if isinstance(tests["flag"], list) else [tests["flag"]]
            if not flags or any(flag not in FLAGS for flag in flags):
                raise self.error(f"result flag must be among {', '.join(FLAGS)}")
            wanted = frozenset(flags)
            return lambda ctx: hit if ctx.flags.get(code) in wanted else None
        if meta["type"] != "numeric":
            raise self.error(f"{code} is true/false: compare its flag instead")
        checks = []
        for operator, limit in tests.items():
            compare = _COMPARISONS.get(operator)
            if compare is None or not _number(limit):
                raise self.error(f"result comparison {operator!r} takes a number")
            checks.append((compare, limit))

        def condition(ctx):
            value = ctx.results.get(code)
            if value is None:
                return None
            return hit if all(compare(value, limit) for compare, limit in checks) else None

        return condition


def requirements(raw, vocabulary) -> frozenset[str] | None:
    """What must be recorded for a condition to hold: a set of finding and result codes of which at least
    one is present (a finding) or entered (a result) whenever the condition holds, or None when no such set
    exists (`not`, `sex`, `age`, `fired`...). Static and conservative: the evaluator uses it only to skip
    rules that cannot fire, so a rule is never skipped wrongly."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return None
    ((operator, argument),) = raw.items()
    if operator == "present":
        return frozenset({argument})
    if operator == "any_present":
        return frozenset(argument)
    if operator == "region":
        return frozenset(vocabulary.region_locations(argument))
    if operator == "result":
        return frozenset({argument["code"]})
    if operator == "all":
        known = [found for found in (requirements(part, vocabulary) for part in argument) if found is not None]
        return min(known, key=len) if known else None
    if operator == "any":
        parts = [requirements(part, vocabulary) for part in argument]
        return None if any(part is None for part in parts) else frozenset().union(*parts)
    return None
