"""Building cases for the engine and bodies for the API, the way the vignettes describe them."""

from workups.engine import Case, get_knowledge_base

# The red-flag screen as GUIDANCE section 0.5 names it, written out rather than read from the knowledge base so
# that a flag the base lost would fail the tests (tests/test_guidance_rules.py checks the base against it).
RED_FLAGS = [
    "rf_saddle_anesthesia",
    "rf_bladder_dysfunction",
    "rf_bowel_incontinence",
    "rf_progressive_leg_weakness",
    "rf_fever",
    "rf_weight_loss",
    "rf_cancer_history",
    "rf_major_trauma",
    "rf_immunosuppression",
    "rf_night_pain",
    "rf_sudden_severe_pain",
]


def red_flags_absent() -> dict:
    return {code: False for code in get_knowledge_base().red_flags}


def body(*, sex="male", age=40, duration_days=7, findings=None, screen="absent", **extra) -> dict:
    """An evaluate request body; `screen="absent"` answers every red flag not given as absent."""
    all_findings = dict(findings or {"loc_lumbar": True})
    if screen == "absent":
        for code, value in red_flags_absent().items():
            all_findings.setdefault(code, value)
    return {"sex": sex, "age": age, "duration_days": duration_days, "findings": all_findings, **extra}


def case(**kwargs) -> Case:
    data = body(**kwargs)
    vitals = {
        k: data.pop(k) for k in list(data) if k in ("heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")
    }
    return Case(vitals=vitals, **data)


def items(result) -> dict:
    """code -> urgency of the issued items."""
    return {row["code"]: row["urgency"] for row in result["items"]}


def referrals(result) -> dict:
    return {row["specialty"]: row["urgency"] for row in result["referrals"]}
