"""Engine throughput, in-process.

    python bench/engine.py [--seconds 3]

Evaluates every vignette case in turn for a fixed time, and, as the baseline
run in the same process (in alternating batches), a JSON round trip of the same
request bodies (what any endpoint pays just to read its input). Prints evaluations per second, the mean
time per evaluation, and the ratio engine / baseline.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402

from workups.engine import Case, evaluate, get_knowledge_base  # noqa: E402


def cases(kb):
    vignettes = yaml.safe_load((ROOT / "tests" / "data" / "vignettes.yaml").read_text())
    bodies = []
    for vignette in vignettes:
        spec = dict(vignette["case"])
        screen = spec.pop("screen", None)
        findings = dict(spec.pop("findings"))
        if screen == "absent":
            for code in kb.red_flags:
                findings.setdefault(code, False)
        bodies.append({**spec, "findings": findings})
    return bodies


def rates(first, second, seconds):
    """Calls per second of each function (each does one pass over all cases), measured in alternating
    batches for about `seconds` in all, so that a busy machine slows both alike."""
    samples: tuple[list, list] = ([], [])
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples[0]) < 5:
        for function, kept in zip((first, second), samples, strict=True):
            start = time.perf_counter()
            calls = function()
            kept.append(calls / (time.perf_counter() - start))
    return statistics.median(samples[0]), statistics.median(samples[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    kb = get_knowledge_base()
    bodies = cases(kb)
    prepared = [Case(**body) for body in bodies]
    encoded = [json.dumps(body) for body in bodies]

    def run_engine():
        for case in prepared:
            evaluate(kb, case)
        return len(prepared)

    def run_baseline():
        for text in encoded:
            json.loads(text)
            json.dumps(json.loads(text))
        return len(encoded)

    run_engine(), run_baseline()  # warm up
    engine, baseline = rates(run_engine, run_baseline, 2 * args.seconds)
    print(f"knowledge base {kb.version}: {len(kb.rules)} rules, {len(kb.safety)} safety rules, {len(bodies)} cases")
    print(f"engine:   {engine:10.0f} evaluations/s   {1e6 / engine:.1f} µs each")
    print(f"baseline: {baseline:10.0f} JSON round trips/s   {1e6 / baseline:.1f} µs each")
    print(f"ratio engine/baseline (time per case): {baseline / engine:.2f}x")


if __name__ == "__main__":
    main()
