"""Line and branch coverage per top-level package, from the data the test run left (COVERAGE_FILE).

    python scripts/coverage_by_package.py [--fail-under 85]

Prints one row per package of [tool.coverage.run] source, and fails (exit 1) naming every package whose
branch coverage is below the threshold, with how far below it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent


def per_package(files: dict) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, data in files.items():
        path = Path(name)
        package = (path.relative_to(ROOT) if path.is_absolute() else path).parts[0]
        summary = data["summary"]
        for key in ("num_statements", "covered_lines", "num_branches", "covered_branches"):
            totals[package][key] += summary[key]
    return totals


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-under", type=float, default=85.0, help="least branch coverage per package, in %%")
    threshold = parser.parse_args().fail_under

    cov = coverage.Coverage(config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "coverage.json"
        cov.json_report(outfile=str(out))
        files = json.loads(out.read_text())["files"]

    packages = per_package(files)
    below = []
    print(f"{'package':<12}{'statements':>12}{'lines':>9}{'branches':>10}{'branch':>9}")
    for package in sorted(packages):
        row = packages[package]
        lines = percent(row["covered_lines"], row["num_statements"])
        branches = percent(row["covered_branches"], row["num_branches"])
        print(f"{package:<12}{row['num_statements']:>12}{lines:>8.1f}%{row['num_branches']:>10}{branches:>8.1f}%")
        if branches < threshold:
            below.append(f"{package} {branches:.1f}% ({threshold - branches:.1f} points below {threshold:g}%)")
    if below:
        print("Branch coverage below the threshold: " + "; ".join(below), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
