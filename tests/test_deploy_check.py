"""`python manage.py check --deploy --fail-level WARNING` passes with the production settings the README
documents (the block under "Running in production", read from the README itself), and fails without them."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def documented_production_settings() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running in production", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    settings = dict(re.findall(r'^export (\w+)="?([^"\n]*)"?$', block, re.M))
    assert settings["DJANGO_SECRET_KEY"].startswith("<"), "the README shows a placeholder, never a key"
    settings["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    return settings


def deploy_check(settings: dict[str, str]):
    # Only what the README says: none of the test run's own DJANGO_* (or other settings) variables.
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "TMPDIR")
    }
    env.update(settings)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_documented_production_settings_pass_the_deploy_check():
    result = deploy_check(documented_production_settings())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("left_out", "warning"),
    [
        ("DJANGO_HSTS_SECONDS", "security.W004"),
        ("DJANGO_SSL_REDIRECT", "security.W008"),
        ("DJANGO_HSTS_PRELOAD", "security.W021"),
    ],
)
def test_the_deploy_check_fails_without_each_setting(left_out, warning):
    settings = documented_production_settings()
    del settings[left_out]

    result = deploy_check(settings)

    assert result.returncode != 0
    assert warning in result.stderr + result.stdout


def test_a_short_secret_fails_the_deploy_check():
    result = deploy_check({**documented_production_settings(), "DJANGO_SECRET_KEY": "too-short"})

    assert result.returncode != 0 and "security.W009" in result.stderr + result.stdout


def test_cookies_without_the_secure_flag_fail_the_deploy_check():
    result = deploy_check({**documented_production_settings(), "DJANGO_SECURE_COOKIES": "0"})

    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout and "security.W016" in result.stderr + result.stdout
