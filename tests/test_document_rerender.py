"""A letter whose render failed says so, in the browser and over the API, and is rendered again on request.

The render fails the way it would after a bad deployment: the letter's template is broken (a directory
ahead of the app's templates holds a letter with a syntax error). The render runs as the worker runs it,
through the Celery task by its registered name; a re-render's enqueueing waits for the commit, so the
tests capture it and then run the task.
"""

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.test import Client

from clinic.models import AuditEvent
from referrals.dispatch import RENDER_DOCUMENT
from referrals.models import Referral
from tests.record_factories import api_client_for, encounter_of, workup_for

RENDER = RENDER_DOCUMENT


@pytest.fixture
def letter(gp):
    """A draft letter to nephrology, written from the accepted recommendation over the API."""
    api = api_client_for(gp)
    encounter = encounter_of(gp)
    recommendation = workup_for(gp, encounter).referrals.get(specialty="nephrology")
    accepted = api.patch(f"/api/v1/workup-referrals/{recommendation.pk}/", {"decision": "accepted"}, format="json")
    assert accepted.status_code == 200
    response = api.post("/api/v1/referrals/", {"recommendation": recommendation.pk}, format="json")
    assert response.status_code == 201, response.content
    return Referral.objects.get(pk=response.json()["id"])


def render(referral) -> str:
    """What the worker does with the render task of this letter: "rendered", "skipped" or "failed"."""
    return current_app.tasks[RENDER].apply(args=("referral", referral.pk)).get()


def failed_render(referral, settings, tmp_path):
    """Render the letter with its templates broken (both languages), ahead of the app's own."""
    (tmp_path / "referrals").mkdir()
    for name in ("letter.html", "letter_ru.html"):
        (tmp_path / "referrals" / name).write_text("{% if %}a letter{% endif %}")
    default = [dict(engine) for engine in django_settings.TEMPLATES]
    broken = [dict(engine) for engine in default]
    broken[0]["DIRS"] = [tmp_path, *broken[0]["DIRS"]]
    settings.TEMPLATES = broken
    try:
        assert render(referral) == "failed"
    finally:
        settings.TEMPLATES = default
    referral.refresh_from_db()
    return referral


def test_a_failed_render_shows_failed_and_a_try_again_button_on_the_letter_page(gp_web, letter, settings, tmp_path):
    failed_render(letter, settings, tmp_path)
    assert letter.pdf_status == "failed" and letter.pdf_error.startswith("TemplateSyntaxError")

    page = gp_web.get(f"/referrals/{letter.pk}/").content.decode()
    status = gp_web.get(f"/referrals/{letter.pk}/status/").content.decode()

    assert 'data-status="failed"' in page and "Rendering failed." in page
    assert f'action="/referrals/{letter.pk}/rerender/"' in page and "Try again" in page
    # The status fragment stops polling once the render has failed.
    assert 'data-status="failed"' in status and "hx-get" not in status
    assert gp_web.get(f"/referrals/{letter.pk}/pdf/").status_code == 404


def test_try_again_on_the_page_renders_the_letter_again(
    gp, gp_web, letter, settings, tmp_path, django_capture_on_commit_callbacks
):
    failed_render(letter, settings, tmp_path)

    with django_capture_on_commit_callbacks() as enqueued:
        response = gp_web.post(f"/referrals/{letter.pk}/rerender/")

    assert response.status_code == 302 and response["Location"] == f"/referrals/{letter.pk}/"
    assert len(enqueued) == 1  # the render task is handed to the broker once the request commits
    letter.refresh_from_db()
    assert (letter.pdf_status, letter.pdf_error) == ("pending", "")
    page = gp_web.get(f"/referrals/{letter.pk}/").content.decode()
    assert 'data-status="pending"' in page and "Try again" not in page
    assert AuditEvent.objects.filter(action="rerender", object_id=str(letter.pk), channel="web").count() == 1

    assert render(letter) == "rendered"
    page = gp_web.get(f"/referrals/{letter.pk}/").content.decode()
    assert 'data-status="ready"' in page and "Letter (PDF)" in page
    download = gp_web.get(f"/referrals/{letter.pk}/pdf/")
    assert download.status_code == 200 and b"".join(download.streaming_content).startswith(b"%PDF")


def test_the_api_says_a_render_failed_and_post_renders_it_again(
    gp, letter, settings, tmp_path, django_capture_on_commit_callbacks
):
    api = api_client_for(gp)
    failed_render(letter, settings, tmp_path)

    failed = api.get(f"/api/v1/referrals/{letter.pk}/pdf/")
    assert failed.status_code == 409 and "Retry-After" not in failed
    assert failed.json() == {"pdf_status": "failed", "detail": "Rendering failed; ask for it again with POST."}
    assert api.get(f"/api/v1/referrals/{letter.pk}/").json()["pdf_status"] == "failed"

    with django_capture_on_commit_callbacks() as enqueued:
        again = api.post(f"/api/v1/referrals/{letter.pk}/pdf/")

    assert again.status_code == 202 and len(enqueued) == 1
    assert (again.json()["id"], again.json()["pdf_status"], again.json()["pdf_error"]) == (letter.pk, "pending", "")
    pending = api.get(f"/api/v1/referrals/{letter.pk}/pdf/")
    assert pending.status_code == 409 and int(pending["Retry-After"]) > 0
    assert AuditEvent.objects.filter(action="rerender", object_id=str(letter.pk), channel="api").count() == 1

    assert render(letter) == "rendered"
    ready = api.get(f"/api/v1/referrals/{letter.pk}/pdf/")
    assert ready.status_code == 200 and ready["Content-Type"] == "application/pdf"
    assert b"".join(ready.streaming_content).startswith(b"%PDF")


def test_asking_again_for_a_letter_that_did_not_fail_changes_nothing(
    gp, gp_web, letter, django_capture_on_commit_callbacks
):
    api = api_client_for(gp)
    assert render(letter) == "rendered"
    letter.refresh_from_db()
    rendered_at, renders = letter.pdf_rendered_at, letter.pdf_renders

    with django_capture_on_commit_callbacks() as enqueued:
        over_api = api.post(f"/api/v1/referrals/{letter.pk}/pdf/", {"pdf_status": "pending"}, format="json")
        on_page = gp_web.post(f"/referrals/{letter.pk}/rerender/")

    # A ready letter is not rendered again (nor is a pending one rendered twice): nothing is enqueued.
    assert over_api.status_code == 202 and over_api.json()["pdf_status"] == "ready"
    assert on_page.status_code == 302 and enqueued == []
    letter.refresh_from_db()
    assert (letter.pdf_status, letter.pdf_rendered_at, letter.pdf_renders) == ("ready", rendered_at, renders)
    assert not AuditEvent.objects.filter(action="rerender").exists()


def test_a_gp_of_another_clinic_cannot_ask_for_a_render_or_see_that_it_failed(
    other_gp, letter, settings, tmp_path, django_capture_on_commit_callbacks
):
    failed_render(letter, settings, tmp_path)
    stranger_web = Client()
    stranger_web.force_login(other_gp)
    stranger_api = api_client_for(other_gp)

    with django_capture_on_commit_callbacks() as enqueued:
        assert stranger_api.post(f"/api/v1/referrals/{letter.pk}/pdf/").status_code == 404
        assert stranger_web.post(f"/referrals/{letter.pk}/rerender/").status_code == 404
    assert stranger_api.get(f"/api/v1/referrals/{letter.pk}/pdf/").status_code == 404
    assert stranger_web.get(f"/referrals/{letter.pk}/status/").status_code == 404

    assert enqueued == []
    letter.refresh_from_db()
    assert letter.pdf_status == "failed"


def test_an_anonymous_caller_cannot_ask_for_a_render(anonymous, client, letter):
    assert anonymous.post(f"/api/v1/referrals/{letter.pk}/pdf/").status_code == 401
    response = client.post(f"/referrals/{letter.pk}/rerender/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
