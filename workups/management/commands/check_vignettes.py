"""Check clinical vignettes (a YAML file of cases and what their workup must contain) against the workup.

    python manage.py check_vignettes FILE [--url URL --token TOKEN] [--only ID ...] [--show]

In-process by default: each case goes through the same validation and engine as
POST /api/v1/workup/evaluate/. With --url and --token it posts to that endpoint of a running server
instead. Prints one line a case and, last, "N passed, M failed"; exits 1 when any case fails.
"""

import json
from pathlib import Path

import requests
import yaml
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from workups.engine import get_knowledge_base
from workups.selectors import workup_preview
from workups.serializers import WorkupEvaluateSerializer, case_from_values
from workups.vignettes import vignette_body, vignette_problems


def evaluate_in_process(body: dict) -> tuple[int, object]:
    serializer = WorkupEvaluateSerializer(data=body)
    if not serializer.is_valid():
        return 400, serializer.errors
    values = serializer.validated_data
    return 200, workup_preview(case=case_from_values(values, sex=values["sex"], age=values["age"]))


def evaluate_remote(url: str, token: str):
    endpoint = url.rstrip("/") + "/api/v1/workup/evaluate/"

    def post(body: dict) -> tuple[int, object]:
        response = requests.post(endpoint, json=body, headers={"Authorization": f"Token {token}"}, timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text[:300]

    return post


class Command(BaseCommand):
    help = "Check clinical vignettes (YAML) against the workup, in-process or against a running server."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the vignettes YAML file")
        parser.add_argument("--url", help="a running server's base URL (default: in-process)")
        parser.add_argument("--token", help="an API token for --url")
        parser.add_argument("--only", action="append", default=[], metavar="ID", help="check only this case")
        parser.add_argument("--show", action="store_true", help="print each answer")

    def handle(self, *args, file, url, token, only, show, **options):
        if bool(url) != bool(token):
            raise CommandError("--url and --token go together")
        try:
            cases = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {file}: {error}") from None
        if not isinstance(cases, list) or not all(isinstance(case, dict) and "case" in case for case in cases):
            raise CommandError(f"{file} is not a list of cases with `case` and `expect`")
        send = evaluate_remote(url, token) if url else evaluate_in_process
        red_flags = get_knowledge_base().red_flags
        passed = failed = 0
        with translation.override("en"):
            for case in cases:
                ident = str(case.get("id", "?"))
                if only and ident not in only:
                    continue
                status, got = send(vignette_body(case["case"], red_flags))
                problems = vignette_problems(case.get("expect") or {}, status, got)
                title = case.get("title", "")
                if problems:
                    failed += 1
                    self.stdout.write(f"FAIL {ident} {title}")
                    for problem in problems:
                        self.stdout.write(f"     - {problem}")
                else:
                    passed += 1
                    self.stdout.write(f"ok   {ident} {title}")
                if show:
                    self.stdout.write(json.dumps(got, indent=1, ensure_ascii=False)[:4000])
        self.stdout.write(f"{passed} passed, {failed} failed")
        if failed or not passed:
            raise SystemExit(1)
