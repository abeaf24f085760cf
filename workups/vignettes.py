"""Clinical vignettes: YAML cases with what their workup must and must not contain.

The format is the one the public vignette file uses: each entry has an `id`, a `title`, a `case` (an
evaluate request body; `screen: absent` answers every red flag not given as absent) and an `expect`:
`disposition`; `items` and `referrals` as `code` or `code@urgency`; `no_items` and `no_referrals`;
`withheld`, `warnings`, `deferred`, `not_indicated` and their `no_` forms; `flags` (result code → the flag
it must come back with); or `status` (the HTTP status the request must answer, e.g. 400 for an
implausible result). Pure: the checking needs nothing but the answer.
"""

from __future__ import annotations


def vignette_body(case: dict, red_flags) -> dict:
    """The evaluate request body a vignette's case describes."""
    body = {key: value for key, value in case.items() if key not in ("findings", "screen")}
    findings = dict(case.get("findings") or {})
    if case.get("screen") == "absent":
        for code in red_flags:
            findings.setdefault(code, False)
    return {**body, "findings": findings}


_LISTS = ("items", "referrals", "withheld", "warnings", "deferred", "not_indicated")
# Every expectation the checking reads. Another one (a misspelt "no_item") would be checked by nobody and pass
# unseen, so it is a problem of its own.
EXPECTATIONS = frozenset({"status", "disposition", "flags", *_LISTS, *(f"no_{field}" for field in _LISTS)})


def _wanted(entry: str) -> tuple[str, str | None]:
    code, _, urgency = entry.partition("@")
    return code, urgency or None


def vignette_problems(expect: dict, status: int, got) -> list[str]:
    """What is wrong with an answer (`status`, JSON `got`) for a vignette's `expect`; empty when it passes."""
    unknown = sorted(set(expect) - EXPECTATIONS)
    if unknown:
        return [f"unknown expectation(s) {', '.join(unknown)}: nothing would check them"]
    if expect.get("status") is not None:
        return [] if status == expect["status"] else [f"HTTP {status}, want {expect['status']}: {str(got)[:200]}"]
    if status != 200:
        return [f"HTTP {status}: {str(got)[:200]}"]
    if not isinstance(got, dict):
        return [f"answer is not a JSON object: {str(got)[:120]}"]
    problems = []
    if "disposition" in expect and got.get("disposition") != expect["disposition"]:
        problems.append(f"disposition {got.get('disposition')!r}, want {expect['disposition']!r}")
    for field, key in (("items", "code"), ("referrals", "specialty")):
        have = {row[key]: row.get("urgency") for row in got.get(field) or [] if isinstance(row, dict) and key in row}
        for entry in expect.get(field, []):
            code, urgency = _wanted(entry)
            if code not in have:
                problems.append(f"{field}: missing {code}")
            elif urgency and have[code] != urgency:
                problems.append(f"{field}: {code} is {have[code]!r}, want {urgency!r}")
        problems += [f"{field}: {code} must not be there" for code in expect.get("no_" + field, []) if code in have]
    for field in _LISTS[2:]:
        have = {row.get("code") or row.get("specialty") for row in got.get(field) or [] if isinstance(row, dict)}
        problems += [f"{field}: missing {code}" for code in expect.get(field, []) if code not in have]
        problems += [f"{field}: {code} must not be there" for code in expect.get("no_" + field, []) if code in have]
    flags = {row.get("code"): row.get("flag") for row in got.get("results") or [] if isinstance(row, dict)}
    problems += [
        f"results: {code} flagged {flags.get(code)!r}, want {flag!r}"
        for code, flag in (expect.get("flags") or {}).items()
        if flags.get(code) != flag
    ]
    return problems
