"""The README is the operator's manual: every environment variable the settings read is documented in it,
and it never sends a reader to a folder outside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READING = re.compile(r"""(?:env_[a-z_]+|os\.environ\.get|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def variables_read(path: Path) -> set[str]:
    return set(READING.findall(path.read_text(encoding="utf-8")))


def test_every_environment_variable_the_settings_read_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    read = set().union(*(variables_read(path) for path in (ROOT / "config").glob("*.py")))
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_TIME_ZONE"} <= read  # the pattern finds them at all
    assert sorted(name for name in read if f"`{name}`" not in readme) == []


def test_the_readme_never_sends_a_reader_outside_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"\.\./[\w.-]+", readme) == []
