"""A broken knowledge base is refused when it loads, naming the file and the rule."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workups.engine import KnowledgeBaseError, load_knowledge_base
from workups.engine.loader import KNOWLEDGE_DIR


@pytest.fixture
def knowledge(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


def edit(path: Path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def rule(data, rule_id):
    return next(entry for entry in data["rules"] if entry["id"] == rule_id)


def test_the_shipped_knowledge_base_loads_with_a_version(knowledge):
    kb = load_knowledge_base(knowledge)
    assert kb.version
    assert {rule.id for rule in kb.rules} >= {f"E{n}" for n in range(1, 6)} | {f"U{n}" for n in range(1, 13)} | {
        f"R{n}" for n in range(1, 20)
    }
    assert all(rule.sources and rule.rationale for rule in kb.rules)


@pytest.mark.parametrize(
    "file, change, message",
    [
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4")["when"]["all"].append({"present": "rf_fevr"}),
            "rule U4: unknown finding code 'rf_fevr'",
        ),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4")["when"]["all"].append({"presnt": "rf_fever"}),
            "rule U4: unknown operator 'presnt'",
        ),
        ("rules/urgent.yaml", lambda d: rule(d, "U4").update(colour="red"), "rule U4: unknown field(s) 'colour'"),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4")["items"].append({"code": "lab_unicorn"}),
            "rule U4 items[5]: unknown item code 'lab_unicorn'",
        ),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4")["referrals"].append({"specialty": "astrology"}),
            "rule U4 referrals[1]: unknown specialty 'astrology'",
        ),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4")["items"][0].update(urgency="whenever"),
            "rule U4 items[0]: unknown urgency 'whenever'",
        ),
        ("rules/urgent.yaml", lambda d: rule(d, "U4").pop("sources"), "rule U4: missing field(s) 'sources'"),
        ("rules/urgent.yaml", lambda d: rule(d, "U4").update(sources=[]), "rule U4 sources: must be a non-empty list"),
        ("rules/urgent.yaml", lambda d: rule(d, "U4").pop("rationale"), "rule U4: missing field(s) 'rationale'"),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U6")["when"]["any"][1]["all"].append({"fired": "R3"}),
            "rule U6: fired: 'R3' is not a rule evaluated before this one",
        ),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U9")["when"]["all"].append({"age": {"about": 65}}),
            "rule U9: unknown comparison 'about' for age",
        ),
        ("rules/urgent.yaml", lambda d: rule(d, "U9").update(id="U8"), "rule U8: duplicate rule id"),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U1")["items"].append({"region": "pet"}),
            "rule U1 items[4]: region must be 'xray' or 'mri'",
        ),
        (
            "rules/urgent.yaml",
            lambda d: rule(d, "U4").update(when={"all": [], "any": []}),
            "rule U4: a condition is a mapping with exactly one operator",
        ),
        ("rules/urgent.yaml", lambda d: d.update(tier="soonish"), "urgent.yaml: unknown tier 'soonish'"),
        (
            "rules/safety.yaml",
            lambda d: rule(d, "S1")["replace"].update(xray_lumbar_spine="mri_lumbar_spline"),
            "rule S1 replace: unknown item code 'mri_lumbar_spline'",
        ),
        (
            "rules/safety.yaml",
            lambda d: rule(d, "S4")["warn"].update(warning="be_careful"),
            "rule S4 warn: unknown warning code 'be_careful'",
        ),
        (
            "rules/safety.yaml",
            lambda d: rule(d, "S2")["add"]["if_any"].update(ionising=True, modality=["ct"]),
            "rule S2 add if_any: a selector has exactly one of ionising, modality, codes",
        ),
        (
            "vocabulary.yaml",
            lambda d: d["findings"]["loc_lumbar"].update(group="nowhere"),
            "finding 'loc_lumbar': unknown group 'nowhere'",
        ),
        (
            "base.yaml",
            lambda d: d.update(rule_files=[*d["rule_files"], "rules/missing.yaml"]),
            "missing.yaml: file not found",
        ),
        ("base.yaml", lambda d: d["stewardship"].pop("instead"), "base.yaml stewardship: missing field(s) 'instead'"),
        (
            "base.yaml",
            lambda d: d["stewardship"]["instead"].update(ru="Рекомендовано другое исследование"),
            "base.yaml stewardship instead must name the studies: {studies}",
        ),
    ],
)
def test_a_malformed_rule_file_is_refused_with_the_rule_named(knowledge, file, change, message):
    edit(knowledge / file, change)
    with pytest.raises(KnowledgeBaseError) as error:
        load_knowledge_base(knowledge)
    assert message in str(error.value)


def test_a_file_that_is_not_yaml_is_refused(knowledge):
    (knowledge / "rules" / "routine.yaml").write_text("rules: [unclosed")
    with pytest.raises(KnowledgeBaseError, match="routine.yaml: not valid YAML"):
        load_knowledge_base(knowledge)


def test_the_app_does_not_start_with_a_broken_knowledge_base(tmp_path):
    # Start-up (AppConfig.ready) must fail loudly: run `manage.py check` with the loader pointed
    # at a broken copy through a tiny settings shim.
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge)
    edit(
        knowledge / "rules/emergency.yaml", lambda d: rule(d, "E2")["when"]["all"].append({"present": "sx_chest_pian"})
    )
    shim = tmp_path / "broken_kb_settings.py"
    shim.write_text(
        "from config.settings import *  # noqa\n"
        "import workups.engine.loader as loader\n"
        f"loader.KNOWLEDGE_DIR = __import__('pathlib').Path({str(knowledge)!r})\n"
        "loader.load_knowledge_base.__defaults__ = (loader.KNOWLEDGE_DIR, loader.DEFAULT_LANGUAGE)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "broken_kb_settings", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "rule E2: unknown finding code 'sx_chest_pian'" in result.stderr
