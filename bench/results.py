"""The engine with results against the engine without, in-process.

    python bench/results.py [--seconds 3]

Every vignette case evaluated as it is (the baseline) and again with ten results entered beside its
findings (interpreted against their references, then rules N1-N14 with the others), in alternating
batches. Prints both rates and the ratio of the time per evaluation.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from bench.engine import cases, rates  # noqa: E402
from workups.engine import Case, evaluate, get_knowledge_base  # noqa: E402

# Ten results, some outside their reference, none of them implausible.
TEN_RESULTS = {
    "res_hemoglobin": 118,
    "res_wbc": 12.4,
    "res_esr": 31,
    "res_crp": 14,
    "res_egfr": 72,
    "res_nech_leukocytes": 3500,
    "res_nech_erythrocytes": 600,
    "res_nech_casts": 10,
    "res_ua_nitrite": False,
    "img_vertebral_fracture": False,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    kb = get_knowledge_base()
    bodies = [{key: value for key, value in body.items() if key != "results"} for body in cases(kb)]
    without = [Case(**body) for body in bodies]
    with_results = [Case(**body, results=TEN_RESULTS) for body in bodies]

    def run(prepared):
        def once():
            for case in prepared:
                evaluate(kb, case)
            return len(prepared)

        return once

    run(without)(), run(with_results)()  # warm up
    baseline, measured = rates(run(without), run(with_results), 2 * args.seconds)
    print(f"knowledge base {kb.version}: {len(bodies)} cases")
    print(f"without results: {baseline:10.0f} evaluations/s   {1e6 / baseline:.1f} µs each")
    print(f"with 10 results: {measured:10.0f} evaluations/s   {1e6 / measured:.1f} µs each")
    print(f"ratio with / without (time per case): {baseline / measured:.2f}x")


if __name__ == "__main__":
    main()
