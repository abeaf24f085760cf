"""HEAD on the browser pages: what a GET shows, HEAD answers with the same status and headers and no body, read and
audited as a view (a link checker, a proxy or a browser's prefetch asks so). It used to be a 405 on every page that
also takes a form's POST."""

import pytest
from django.test import Client

from clinic.models import AuditEvent
from tests.factories import ClinicFactory, MembershipFactory
from tests.test_pages_language_sweep import build_record, russian_gp, sweep_pages  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def test_every_page_a_gp_opens_answers_head_as_its_get(russian_gp):  # noqa: F811
    record = build_record(russian_gp)
    sweep = sweep_pages(record, "en")
    client = Client()
    client.force_login(russian_gp)
    paths = sorted({label.split(" ", 1)[1] for label in sweep.pages if label.startswith("GET ")})
    assert len(paths) > 30  # the sweep's pages: every route of the web URL files that shows one

    for path in paths:
        got = client.get(path)
        head = client.head(path)
        assert (path, head.status_code) == (path, got.status_code)
        assert head.content == b"", path
        assert head.get("Content-Type") == got.get("Content-Type"), path


def test_head_on_an_edit_page_is_audited_as_a_view_not_an_opening_for_update(russian_gp):  # noqa: F811
    record = build_record(russian_gp)
    patient = record.patients["urgent"]
    client = Client()
    client.force_login(russian_gp)
    before = AuditEvent.objects.count()

    assert client.head(f"/patients/{patient.pk}/edit/").status_code == 200

    actions = list(AuditEvent.objects.order_by("id")[before:].values_list("action", "object_type"))
    assert ("view", "patient") in actions and not any(action == "open_for_update" for action, _ in actions)


def test_head_on_another_clinics_patient_is_a_404(russian_gp):  # noqa: F811
    record = build_record(russian_gp)
    stranger = MembershipFactory(clinic=ClinicFactory()).user
    client = Client()
    client.force_login(stranger)

    for path in (f"/patients/{record.patients['urgent'].pk}/", f"/patients/{record.patients['urgent'].pk}/edit/"):
        assert client.head(path).status_code == 404
