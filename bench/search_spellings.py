"""The browser's patient search when the name is typed with the wrong keyboard layout or in Latin letters, on the
scale database of bench/scale.py, against the same family names typed right, in the same process.

    nice -n 5 python bench/search_spellings.py --pgdata DIR [--samples 100]

DIR is a cluster kept by `bench/scale.py --pgdata DIR` (started here, migrated, stopped after), or DATABASE_URL
names the scale database. Each kind is the live search (htmx POST /) of the GP "bench" over --samples terms of
bench.scale.search_terms; printed: p50 / p95 in ms, the queries a request runs, and each p50 / p95 as a ratio of
the family name typed right (the baseline).
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import SCALE_DB, Cluster, django_setup, migrate, search_terms, series, showcase_ids  # noqa: E402

BASELINE = "full family name"
KINDS = [
    BASELINE,
    "full family name, English layout",
    "full family name in Latin letters",
    "family and given name in Latin letters",
    "found by no spelling",
]


def measure(samples: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    migrate()
    web = Client()
    web.force_login(get_user_model().objects.get(username="bench"))
    terms = search_terms(clinic=showcase_ids()["clinic"], samples=samples)
    rows = []
    for kind in KINDS:
        requests = [(lambda value=value: web.post("/", {"q": value}, HTTP_HX_REQUEST="true")) for value in terms[kind]]
        rows.append(series(f"search web: {kind}", requests) | {"examples": terms[kind][:4]})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pgdata", help="a cluster kept by bench/scale.py --pgdata")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    given = os.environ.get("DATABASE_URL", "")
    cluster = None
    if given.startswith(("postgres://", "postgresql://")):
        url = given
    elif args.pgdata and (Path(args.pgdata) / "PG_VERSION").exists():
        cluster = Cluster(Path(args.pgdata))
        url = cluster.url(SCALE_DB)
    else:
        sys.exit("Give --pgdata (a cluster kept by bench/scale.py) or DATABASE_URL (the scale database).")
    try:
        django_setup(url)
        rows = measure(args.samples)
    finally:
        if cluster:
            cluster.stop()
    base = rows[0]
    print(f"\nratio to '{BASELINE}' (p50, p95):")
    for row in rows[1:]:
        p50, p95 = row["p50_ms"] / base["p50_ms"], row["p95_ms"] / base["p95_ms"]
        print(f"  {row['name']:<58} {p50:5.2f}x  {p95:5.2f}x  queries {base['queries']} -> {row['queries']}")
        print(f"    e.g. {', '.join(row['examples'])}")


if __name__ == "__main__":
    main()
