"""CDS Hooks patient-view call against the trivial authenticated endpoint, in one process.

    python bench/cds.py [--calls 300] [--database-dir /dev/shm]

Both go through Django's full request handling (the test client, no network): GET /api/v1/ping/
with a token (baseline) and POST /cds-services/back-numbness-workup with an RS256 JWT and a prefetch of
15 Observations (the token signed and the body encoded beforehand, as the EHR would). Prints the median and
p95 of each and their ratios, and the median CPU time of each (this process's time, per call). Uses a
throwaway SQLite database, in the system's temporary directory or in --database-dir.
"""

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# --database-dir DIR (before anything else parses the arguments): where the throwaway SQLite file goes. A call
# commits once (the token's jti, the audit event and the issued cards together); on a busy disk the commit's
# fsync can cost more than the call's own work, so /dev/shm shows the app's cost and the default the disk's too.
_DIR = sys.argv[sys.argv.index("--database-dir") + 1] if "--database-dir" in sys.argv else None
WORK = Path(tempfile.mkdtemp(prefix="bench-cds-", dir=_DIR))
atexit.register(shutil.rmtree, WORK, True)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret",
        "DATABASE_URL": f"sqlite:///{WORK / 'bench.sqlite3'}",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database-dir", help="where the throwaway SQLite file goes (e.g. /dev/shm)")
    args = parser.parse_args()

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from clinic.services import demo_clinician_ensure
    from ehr.models import EhrClient

    call_command("migrate", verbosity=0)
    clinic, _, _, token = demo_clinician_ensure(clinic_name="Bench clinic", username="bench", password="bench-pass-1")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    EhrClient.objects.create(
        clinic=clinic, name="Bench EHR", issuer="https://ehr.bench", client_id="bench", public_key=public
    )
    system = settings.FHIR_CODE_SYSTEM_URL
    findings = {
        "loc_lumbar": True,
        "sx_urinary_frequency": True,
        "ex_cva_tenderness": True,
        "rf_saddle_anesthesia": False,
        "rf_bladder_dysfunction": False,
        "rf_bowel_incontinence": False,
        "rf_progressive_leg_weakness": False,
        "rf_fever": False,
        "rf_weight_loss": False,
        "rf_cancer_history": False,
        "rf_major_trauma": False,
        "rf_immunosuppression": False,
        "rf_night_pain": False,
        "rf_sudden_severe_pain": False,
    }
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "p1",
                "gender": "female",
                "birthDate": "1985-02-03",
                "identifier": [{"system": "urn:ehr", "value": "E-1"}],
            },
            "findings": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "code": {"coding": [{"system": system, "code": code}]},
                            "valueBoolean": value,
                        }
                    }
                    for code, value in findings.items()
                ],
            },
        },
    }
    client = Client()
    url = "http://testserver/cds-services/back-numbness-workup"

    def sign():
        now = int(time.time())
        return jwt.encode(
            {
                "iss": "https://ehr.bench",
                "sub": "bench",
                "aud": url,
                "iat": now,
                "exp": now + 300,
                "jti": str(uuid.uuid4()),
            },
            key,
            algorithm="RS256",
        )

    tokens = [sign() for _ in range(args.calls + 20)]  # signing is the EHR's cost, not ours
    payload = json.dumps(body)  # and so is encoding its request (the test client would, at every call)

    def cds():
        signed = tokens.pop()
        response = client.post(
            "/cds-services/back-numbness-workup",
            payload,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {signed}",
        )
        assert response.status_code == 200, response.content

    def ping():
        assert client.get("/api/v1/ping/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200

    for _ in range(20):
        cds(), ping()
    timings = {"ping (baseline)": [], "cds patient-view": []}
    cpu = {"ping (baseline)": [], "cds patient-view": []}
    for _ in range(args.calls):
        for name, function in (("ping (baseline)", ping), ("cds patient-view", cds)):
            start, start_cpu = time.perf_counter(), time.process_time()
            function()
            timings[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    for name, values in timings.items():
        print(
            f"{name:18} median {statistics.median(values) * 1000:6.2f} ms"
            f"   p95 {percentile(values, 0.95) * 1000:6.2f} ms"
        )
    base, cds_times = timings["ping (baseline)"], timings["cds patient-view"]
    print(
        f"ratio cds/ping: median {statistics.median(cds_times) / statistics.median(base):.2f}x   "
        f"p95 {percentile(cds_times, 0.95) / percentile(base, 0.95):.2f}x"
    )
    # This process's CPU time per call: what the call costs, which a busy machine disturbs less than latency
    # (waiting for the disk is not in it).
    ping_cpu, cds_cpu = (statistics.median(cpu[name]) for name in ("ping (baseline)", "cds patient-view"))
    print(
        f"CPU per call (median): ping {ping_cpu * 1000:.2f} ms   cds {cds_cpu * 1000:.2f} ms   "
        f"ratio {cds_cpu / ping_cpu:.2f}x"
    )


if __name__ == "__main__":
    main()
