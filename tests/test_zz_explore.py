import json
from tests.record_factories import *
from clinic.models import AuditEvent


def test_explore(gp, gp_api, other_gp):
    p = patient_of(gp, birth_date=datetime.date(1980, 1, 1))
    r = gp_api.post("/api/v1/encounters/", encounter_body(p, patient=2**70), format="json")
    print(r.status_code, r.json())
    r = gp_api.get("/api/v1/patients/99999999999999999999999/")
    print(r.status_code, r.content[:200])
    r = gp_api.post("/api/v1/encounters/", encounter_body(p), format="json")
    eid = r.json()["id"]
    r = gp_api.post(f"/api/v1/encounters/{eid}/workup/")
    item = r.json()["items"][0]["id"]
    r = gp_api.get(f"/api/v1/workup-items/{item}/")
    r = gp_api.patch(f"/api/v1/workup-items/{item}/", {"decision": "declined", "reason": "done last week"}, format="json")
    print(r.status_code, r.json())
    r = gp_api.get(f"/api/v1/patients/?search=fam")
    r = gp_api.get(f"/api/v1/patients/{p.pk}/encounters/")
    print(r.status_code, r.json())
    r = gp_api.post(f"/api/v1/encounters/{eid}/finalize/")
    print(r.status_code, r.json())
    r = api_client_for(other_gp).post("/api/v1/encounters/", encounter_body(p, duration_days=-1), format="json")
    print(r.status_code, r.json())
    for e in AuditEvent.objects.order_by("id"):
        print(e.action, e.object_type, e.object_id, e.patient_id, e.patient_ids, e.channel, e.ip_address, e.clinic_id, e.actor_username)
