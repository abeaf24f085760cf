"""Properties of the evaluator that hold for every valid case, checked with hypothesis.

The strategy builds any case the API would accept: either sex, age 0-120, pregnancy
only for a woman, a duration that fits the age, an optional temperature, and a random
subset of the findings answered present or absent, with at least one location present
and no finding of the other sex present.
"""

from hypothesis import assume, given, settings, target
from hypothesis import strategies as st

from workups.engine import Case, evaluate, get_knowledge_base

KB = get_knowledge_base()
VOCABULARY = KB.vocabulary
FINDINGS = list(VOCABULARY.findings)
LOCATIONS = [code for code in FINDINGS if VOCABULARY.findings[code]["group"] == "loc"]
OTHER_FINDINGS = [code for code in FINDINGS if code not in LOCATIONS]
RED_FLAGS = list(KB.red_flags)
FEMALE_ONLY = {"sx_abnormal_vaginal_bleeding", "sx_menstrual_related", "sx_missed_period", "hx_gyn_disease"}
MALE_ONLY = {"hx_prostate_disease"}
OTHER_SEX_ONLY = {"male": FEMALE_ONLY, "female": MALE_ONLY}
DISPOSITION_ORDER = ["observe", "routine", "urgent", "emergency"]
URGENCIES = {"routine", "urgent", "emergency"}
RULE_IDS = {rule.id for rule in KB.rules} | {rule.id for rule in KB.safety}
FORBIDDEN_IN_PREGNANCY = {"xray_lumbar_spine", "xray_thoracic_spine", "ct_spine", "ct_abdomen"}
RESULT_KEYS = {
    "knowledge_base_version",
    "disposition",
    "red_flags",
    "items",
    "referrals",
    "deferred",
    "withheld",
    "not_indicated",
    "warnings",
    "advice",
    "review",
    "fired_rules",
    "results",
}

SETTINGS = settings(max_examples=200, deadline=None)


def test_the_strategy_covers_the_vocabulary():
    assert {code for code, meta in VOCABULARY.findings.items() if meta.get("sex")} == FEMALE_ONLY | MALE_ONLY
    assert len(LOCATIONS) == 5
    assert len(RED_FLAGS) == 11


@st.composite
def findings_for(draw, sex):
    findings = draw(st.dictionaries(st.sampled_from(OTHER_FINDINGS), st.booleans()))
    if draw(st.booleans()):
        # A completed red-flag screen: everything not drawn is answered absent.
        for code in RED_FLAGS:
            findings.setdefault(code, False)
    findings.update(draw(st.dictionaries(st.sampled_from(LOCATIONS), st.booleans())))
    findings[draw(st.sampled_from(LOCATIONS))] = True
    for code in OTHER_SEX_ONLY[sex]:
        if findings.get(code):
            findings[code] = False
    return findings


@st.composite
def cases(draw, *, pregnant_only=False):
    sex = "female" if pregnant_only else draw(st.sampled_from(["female", "male"]))
    age = draw(st.integers(min_value=0, max_value=120))
    if pregnant_only:
        pregnant = True
    else:
        pregnant = draw(st.sampled_from([True, False, None])) if sex == "female" else None
    duration_days = draw(st.integers(min_value=0, max_value=(age + 1) * 366))
    temperature_c = draw(
        st.none() | st.sampled_from([37.9, 38.0]) | st.floats(min_value=30, max_value=45, allow_nan=False)
    )
    findings = draw(findings_for(sex))
    return Case(
        sex=sex, age=age, duration_days=duration_days, findings=findings, pregnant=pregnant, temperature_c=temperature_c
    )


def rebuild(case, findings):
    return Case(
        sex=case.sex,
        age=case.age,
        duration_days=case.duration_days,
        findings=findings,
        pregnant=case.pregnant,
        temperature_c=case.temperature_c,
        vitals=case.vitals,
    )


def present_findings(case):
    present = {code for code, value in case.findings.items() if value}
    if case.temperature_c is not None and case.temperature_c >= KB.fever_threshold_c:
        present.add("rf_fever")
    if case.pregnant is True:
        present.add("pregnant")
    return present


def _check_sources(sources):
    assert isinstance(sources, list) and sources
    assert all(isinstance(source, str) and source.strip() for source in sources)


def _check_triggers(triggered_by, present):
    assert isinstance(triggered_by, list)
    assert len(triggered_by) == len(set(triggered_by))
    # Only findings recorded present (or the pregnancy itself) can trigger anything.
    assert set(triggered_by) <= present, (triggered_by, present)


@given(cases())
@SETTINGS
def test_evaluation_returns_a_well_formed_workup(case):
    result = evaluate(KB, case)
    present = present_findings(case)
    assert set(result) == RESULT_KEYS
    assert result["knowledge_base_version"] == KB.version
    assert result["disposition"] in DISPOSITION_ORDER
    assert result["red_flags"] == [code for code in RED_FLAGS if code in present]

    for row in result["items"]:
        assert row["code"] in VOCABULARY.items
        assert row["category"] == VOCABULARY.items[row["code"]]["category"]
        assert row["urgency"] in URGENCIES
        assert isinstance(row["rationale"], str) and row["rationale"].strip()
        _check_sources(row["sources"])
        _check_triggers(row["triggered_by"], present)
        assert set(row["rules"]) <= RULE_IDS
    for row in result["referrals"]:
        assert row["specialty"] in VOCABULARY.specialties
        assert row["urgency"] in URGENCIES
        assert isinstance(row["reason"], str) and row["reason"].strip()
        _check_sources(row["sources"])
        _check_triggers(row["triggered_by"], present)
        assert set(row["rules"]) <= RULE_IDS
    for entry in result["deferred"]:
        assert entry["kind"] in ("item", "referral")
        assert entry["code"] in (VOCABULARY.items if entry["kind"] == "item" else VOCABULARY.specialties)
        assert entry["urgency"] in URGENCIES
        assert entry["reason"].strip()
        _check_sources(entry["sources"])
        _check_triggers(entry["triggered_by"], present)
    for entry in result["withheld"]:
        assert entry["code"] in VOCABULARY.items
        assert entry["replaced_by"] is None or entry["replaced_by"] in VOCABULARY.items
        assert entry["reason"].strip()
        _check_sources(entry["sources"])
    for entry in result["not_indicated"]:
        assert entry["code"] in VOCABULARY.items
        assert entry["reason"].strip()
        _check_sources(entry["sources"])
    for warning in result["warnings"]:
        assert warning["code"] in VOCABULARY.warnings
        assert warning["message"].strip()
    assert set(result["fired_rules"]) <= RULE_IDS

    unscreened = [code for code in RED_FLAGS if code not in case.findings and code not in present]
    warned = [w for w in result["warnings"] if w["code"] == "red_flags_not_screened"]
    if unscreened:
        assert [w["findings"] for w in warned] == [unscreened]
        assert result["disposition"] != "observe"
    else:
        assert warned == []


@given(cases())
@SETTINGS
def test_the_same_case_always_gives_the_same_workup(case):
    first = evaluate(KB, case)
    assert evaluate(KB, case) == first
    reordered = dict(reversed(list(case.findings.items())))
    assert evaluate(KB, rebuild(case, reordered)) == first


@given(cases(), st.data())
@SETTINGS
def test_a_present_red_flag_never_lowers_the_disposition(case, data):
    flag = data.draw(st.sampled_from(RED_FLAGS), label="red flag")
    before = evaluate(KB, case)["disposition"]
    after = evaluate(KB, rebuild(case, {**case.findings, flag: True}))["disposition"]
    assert DISPOSITION_ORDER.index(after) >= DISPOSITION_ORDER.index(before), (flag, before, after)


# -- properties that hold inside one branch: strategies built to reach it --------------------------
#
# A random case is an emergency, a pregnancy or an observe-only case in roughly one draw in eight, so
# a property of that branch alone would be checked a few dozen times out of 200. Each branch gets its
# own strategy (and `assume` for the rare draw that misses), and each test counts the cases it checked.

BRANCH_EXAMPLES = 300
BRANCH_SETTINGS = settings(max_examples=BRANCH_EXAMPLES, deadline=None)


def _disposition_alone(findings):
    """The disposition of a lumbar case with a complete red-flag screen and these findings."""
    screen = {code: False for code in RED_FLAGS}
    case = Case(sex="male", age=40, duration_days=7, findings={**screen, "loc_lumbar": True, **findings})
    return evaluate(KB, case)["disposition"]


# Red flags that make an emergency on their own (cauda equina, a vascular catastrophe).
EMERGENCY_FLAGS = [code for code in RED_FLAGS if _disposition_alone({code: True}) == "emergency"]
# Findings that on their own leave a screened case to watchful waiting; the others call for a workup.
BENIGN_FINDINGS = [
    code for code in OTHER_FINDINGS if code not in RED_FLAGS and _disposition_alone({code: True}) == "observe"
]
WORKUP_FINDINGS = [code for code in OTHER_FINDINGS if code not in RED_FLAGS and code not in BENIGN_FINDINGS]


def test_the_branch_strategies_have_something_to_draw_from():
    assert set(EMERGENCY_FLAGS) >= {"rf_saddle_anesthesia", "rf_bladder_dysfunction"}
    assert "rf_fever" not in EMERGENCY_FLAGS
    assert len(BENIGN_FINDINGS) >= 10 and len(WORKUP_FINDINGS) >= 10


@st.composite
def emergency_cases(draw):
    """Any valid case with at least one emergency red flag present."""
    case = draw(cases())
    flags = draw(st.sets(st.sampled_from(EMERGENCY_FLAGS), min_size=1, max_size=3))
    return rebuild(case, {**case.findings, **dict.fromkeys(flags, True)})


@st.composite
def observe_cases(draw):
    """A case with a complete, negative red-flag screen, no fever and no pregnancy, and only findings
    that leave it to watchful waiting present (those that call for a workup answered absent at most)."""
    sex = draw(st.sampled_from(["female", "male"]))
    age = draw(st.integers(min_value=0, max_value=120))
    findings = dict.fromkeys(RED_FLAGS, False)
    findings.update(draw(st.dictionaries(st.sampled_from(BENIGN_FINDINGS), st.booleans())))
    findings.update(draw(st.dictionaries(st.sampled_from(WORKUP_FINDINGS), st.just(False))))
    findings.update(draw(st.dictionaries(st.sampled_from(LOCATIONS), st.booleans())))
    findings[draw(st.sampled_from(LOCATIONS))] = True
    for code in OTHER_SEX_ONLY[sex]:
        if findings.get(code):
            findings[code] = False
    return Case(
        sex=sex,
        age=age,
        duration_days=draw(st.integers(min_value=0, max_value=(age + 1) * 366)),
        findings=findings,
        pregnant=draw(st.sampled_from([False, None])) if sex == "female" else None,
        temperature_c=draw(st.none() | st.floats(min_value=30, max_value=KB.fever_threshold_c, exclude_max=True)),
    )


def _run(strategy, check, *, keep=lambda case, result: True):
    """Check `check(case, result)` on cases of `strategy` that `keep` accepts; the number checked."""
    checked = []

    @given(strategy)
    @BRANCH_SETTINGS
    def run(case):
        result = evaluate(KB, case)
        assume(keep(case, result))
        check(case, result)
        checked.append(case)

    run()
    return len(checked)


def test_an_emergency_issues_only_emergency_items_and_referrals():
    def check(case, result):
        # Items may all be withheld (MRI contraindicated in pregnancy); the emergency referral stays.
        assert result["referrals"]
        assert {row["urgency"] for row in result["items"]} <= {"emergency"}
        assert {row["urgency"] for row in result["referrals"]} == {"emergency"}
        target(float(len(result["deferred"])), label="deferred while the emergency is handled")

    emergency = lambda case, result: result["disposition"] == "emergency"  # noqa: E731
    assert _run(emergency_cases(), check, keep=emergency) >= BRANCH_EXAMPLES


def test_short_of_an_emergency_nothing_is_emergency_and_nothing_deferred():
    def check(case, result):
        assert all(row["urgency"] != "emergency" for row in result["items"] + result["referrals"])
        assert result["deferred"] == []

    not_emergency = lambda case, result: result["disposition"] != "emergency"  # noqa: E731
    assert _run(cases(), check, keep=not_emergency) >= BRANCH_EXAMPLES


def test_a_pregnant_patient_never_gets_replaceable_ionising_imaging():
    def check(case, result):
        issued = {row["code"] for row in result["items"]}
        deferred = {entry["code"] for entry in result["deferred"] if entry["kind"] == "item"}
        assert not FORBIDDEN_IN_PREGNANCY & issued
        assert not FORBIDDEN_IN_PREGNANCY & deferred
        assert "lab_pregnancy_test" not in issued or case.findings.get("sx_pelvic_pain")
        # Steer towards the cases the rule is for: imaging that would have been ordered but was withheld.
        withheld = {entry["code"] for entry in result["withheld"]}
        target(float(len(withheld & FORBIDDEN_IN_PREGNANCY)), label="ionising imaging withheld")

    assert _run(cases(pregnant_only=True), check) >= BRANCH_EXAMPLES


def test_observe_means_no_tests_and_no_referrals():
    def check(case, result):
        assert result["items"] == []
        assert result["referrals"] == []
        assert result["deferred"] == []
        assert result["advice"] and result["review"]

    observe = lambda case, result: result["disposition"] == "observe"  # noqa: E731
    assert _run(observe_cases(), check, keep=observe) >= BRANCH_EXAMPLES


def test_beyond_observing_there_is_no_advice_and_a_workup_has_the_baseline_bloods():
    def check(case, result):
        assert result["advice"] == [] and result["review"] is None
        if result["disposition"] != "emergency":
            assert {"lab_cbc", "lab_biochemistry"} <= {row["code"] for row in result["items"]}

    not_observe = lambda case, result: result["disposition"] != "observe"  # noqa: E731
    assert _run(cases(), check, keep=not_observe) >= BRANCH_EXAMPLES


@given(cases())
@SETTINGS
def test_no_code_appears_twice(case):
    result = evaluate(KB, case)
    item_codes = [row["code"] for row in result["items"]]
    specialties = [row["specialty"] for row in result["referrals"]]
    assert len(item_codes) == len(set(item_codes))
    assert len(specialties) == len(set(specialties))
    deferred_items = [entry["code"] for entry in result["deferred"] if entry["kind"] == "item"]
    deferred_referrals = [entry["code"] for entry in result["deferred"] if entry["kind"] == "referral"]
    assert len(deferred_items) == len(set(deferred_items))
    assert len(deferred_referrals) == len(set(deferred_referrals))
    assert not set(deferred_items) & set(item_codes)
    assert not set(deferred_referrals) & set(specialties)


RESULT_VALUES = {
    code: (True if meta["type"] == "boolean" else meta["plausible"][1]) for code, meta in KB.vocabulary.results.items()
}


@given(cases(), st.sets(st.sampled_from(sorted(RESULT_VALUES)), max_size=5))
@SETTINGS
def test_the_rule_index_never_skips_a_rule_that_would_fire(case, result_codes):
    # The evaluator looks only at rules whose required codes the case records; evaluating every rule's
    # condition directly must fire exactly the same rules.
    from workups.engine.evaluate import _Evaluation

    case = Case(
        sex=case.sex,
        age=case.age,
        duration_days=case.duration_days,
        findings=case.findings,
        pregnant=case.pregnant,
        temperature_c=case.temperature_c,
        results={code: RESULT_VALUES[code] for code in result_codes if code != "res_hcg" or case.sex == "female"},
    )
    evaluation = _Evaluation(KB, case)
    evaluation.run()
    indexed = {rule.id for rule in KB.rules if not rule.after_triage} & evaluation.ctx.fired

    direct = _Evaluation(KB, case)
    everything = set()
    for rule in KB.rules:
        if rule.after_triage:
            continue
        if rule.when(direct.ctx) is not None:
            everything.add(rule.id)
            direct.ctx.fired.add(rule.id)
    assert indexed == everything
