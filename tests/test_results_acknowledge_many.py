"""Several abnormal results of one encounter acknowledged with one note (a blood panel with three values out of
range): all or none, each audited as if signed off alone, through the service, the API and the workup page."""

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.formats import date_format

from clinic.models import AuditEvent
from tests.record_factories import URINARY, actor_for, api_client_for, clinic_today, encounter_of, screened, workup_for
from workups.models import Decision, Result
from workups.services import (
    NotAcknowledgeable,
    recommendation_decide,
    result_acknowledge,
    result_enter,
    results_acknowledge,
)

pytestmark = pytest.mark.django_db


def urinary_encounter(gp):
    """Lumbar numbness with urinary symptoms seen two days ago, every test and referral accepted."""
    encounter = encounter_of(
        gp, findings=screened(URINARY), visit_date=timezone.localdate() - datetime.timedelta(days=2)
    )
    workup = workup_for(gp, encounter)
    for row in [*workup.items.all(), *workup.referrals.all()]:
        recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    return encounter


def panel(gp, encounter):
    """Three abnormal results (low haemoglobin, high Nechiporenko leukocytes, positive nitrite) and a normal one."""
    actor = actor_for(gp)
    values = {"res_hemoglobin": 90, "res_nech_leukocytes": 6500, "res_ua_nitrite": True, "res_wbc": 7.2}
    return {
        code: result_enter(actor=actor, encounter=encounter, code=code, value=value) for code, value in values.items()
    }


def acknowledgements(results):
    return AuditEvent.objects.filter(
        action="acknowledge", object_type="result", object_id__in=[str(result.pk) for result in results]
    ).count()


def abnormal(results):
    return [results[code] for code in ("res_hemoglobin", "res_nech_leukocytes", "res_ua_nitrite")]


# -- the service ------------------------------------------------------------------------------------


def test_a_gp_signs_three_abnormal_results_off_with_one_note_each_audited(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)

    done = results_acknowledge(
        actor=actor_for(gp), encounter=encounter, results=abnormal(results), note="  Iron started, urine culture  "
    )

    assert [result.pk for result in done] == [result.pk for result in abnormal(results)]
    for result in abnormal(results):
        result.refresh_from_db()
        assert result.acknowledged_by == gp and result.acknowledgement_note == "Iron started, urine culture"
    assert acknowledgements(abnormal(results)) == 3


def test_one_result_that_cannot_be_acknowledged_saves_none_and_every_such_result_is_named(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    result_acknowledge(actor=actor_for(gp), result=results["res_ua_nitrite"], note="Antibiotic started")
    asked = [*abnormal(results), results["res_wbc"]]

    # The service speaks the caller's language (a request activates it); outside a request, say which.
    with pytest.raises(NotAcknowledgeable) as refused, translation.override("en"):
        results_acknowledge(actor=actor_for(gp), encounter=encounter, results=asked, note="Seen, repeat tests")

    assert set(refused.value.problems) == {results["res_ua_nitrite"].pk, results["res_wbc"].pk}
    assert "acknowledged already" in refused.value.problems[results["res_ua_nitrite"].pk]
    assert "within its reference" in refused.value.problems[results["res_wbc"].pk]
    for code in ("res_hemoglobin", "res_nech_leukocytes"):
        results[code].refresh_from_db()
        assert results[code].acknowledged_at is None
    assert acknowledgements(asked) == 1  # the nitrite's own, earlier


def test_a_superseded_result_refuses_the_whole_list(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=88)

    with pytest.raises(NotAcknowledgeable) as refused:
        results_acknowledge(actor=actor_for(gp), encounter=encounter, results=abnormal(results), note="Iron")

    assert list(refused.value.problems) == [results["res_hemoglobin"].pk]
    assert not Result.objects.filter(encounter=encounter, acknowledged_at__isnull=False).exists()


def test_another_encounters_result_an_id_twice_or_none_is_a_validation_error_saving_nothing(gp):
    from django.core.exceptions import ValidationError

    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    other = urinary_encounter(gp)
    elsewhere = result_enter(actor=actor_for(gp), encounter=other, code="res_hemoglobin", value=90)
    hemoglobin = results["res_hemoglobin"]

    for asked, words in (
        ([hemoglobin, elsewhere], f"No result {elsewhere.pk} in this encounter."),
        ([hemoglobin.pk, hemoglobin.pk], f"Listed more than once: {hemoglobin.pk}."),
        ([], "Choose at least one result."),
    ):
        with pytest.raises(ValidationError) as refused, translation.override("en"):
            results_acknowledge(actor=actor_for(gp), encounter=encounter, results=asked, note="Iron")
        assert refused.value.message_dict == {"results": [words]}
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


# -- the API ----------------------------------------------------------------------------------------


def url(encounter):
    return f"/api/v1/encounters/{encounter.pk}/results/acknowledge/"


def test_the_api_acknowledges_the_listed_results_and_answers_them_as_the_single_endpoint_does(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    api = api_client_for(gp)
    ids = [result.pk for result in abnormal(results)]

    response = api.post(url(encounter), {"results": ids, "note": "Iron started"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [row["id"] for row in body] == ids
    assert all(row["acknowledged"] and row["acknowledgement_note"] == "Iron started" for row in body)
    assert body[0] == api.get(f"/api/v1/results/{ids[0]}/").json()
    assert acknowledgements(abnormal(results)) == 3


def test_results_come_back_after_the_visit_is_finalized_and_are_still_signed_off_together(gp):
    # Finalizing locks the visit, not what comes back later (the single acknowledgement works the same).
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    assert api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json").status_code == 200
    ids = [result.pk for result in abnormal(results)]

    response = api_client_for(gp).post(url(encounter), {"results": ids, "note": "Iron started"}, format="json")

    assert response.status_code == 200, response.json()
    assert Result.objects.filter(pk__in=ids, acknowledged_at__isnull=False).count() == 3


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"results": [], "note": "x"}, "results", "Choose at least one result."),
        ({"results": 5, "note": "x"}, "results", "Expected a list"),
        ({"results": "1,2", "note": "x"}, "results", "Expected a list"),
        ({"results": ["1"], "note": "x"}, "results", "Must be a whole number."),
        ({"results": [True], "note": "x"}, "results", "Must be a whole number."),
        ({"results": [1.5], "note": "x"}, "results", "Must be a whole number."),
        ({"results": "twice", "note": "x"}, "results", "Listed more than once"),
        ({"results": "unknown", "note": "x"}, "results", "in this encounter."),
        ({"results": "elsewhere", "note": "x"}, "results", "in this encounter."),
        ({"results": "mine"}, "note", "This field is required."),
        ({"results": "mine", "note": "   "}, "note", "may not be blank"),
        ({"results": "mine", "note": "x" * 2001}, "note", "2000"),
        ({"results": "mine", "note": "Iron\x00"}, "note", "Control characters are not allowed."),
        ({"results": "mine", "note": 5}, "note", "Must be text."),
        ({"results": "mine", "note": "x", "result": 1}, "result", "Unknown field."),
    ],
)
def test_a_bad_body_is_a_400_naming_its_field_and_nothing_is_saved(gp, body, field, words):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    other = urinary_encounter(gp)
    elsewhere = result_enter(actor=actor_for(gp), encounter=other, code="res_hemoglobin", value=90)
    mine = results["res_hemoglobin"].pk
    lists = {"mine": [mine], "twice": [mine, mine], "unknown": [mine, 10**9], "elsewhere": [mine, elsewhere.pk]}
    if isinstance(body.get("results"), str):
        body = {**body, "results": lists.get(body["results"], body["results"])}

    response = api_client_for(gp).post(url(encounter), body, format="json")

    assert response.status_code == 400
    assert words in str(response.json()[field]), response.json()
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


def test_a_result_not_acknowledgeable_is_a_409_naming_it_and_nothing_is_saved(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    api = api_client_for(gp)
    normal = results["res_wbc"]
    ids = [results["res_hemoglobin"].pk, normal.pk]

    response = api.post(url(encounter), {"results": ids, "note": "Iron started"}, format="json")

    assert response.status_code == 409
    assert response.json()["results"] == {
        str(normal.pk): ["This result is within its reference: there is nothing to acknowledge."]
    }
    assert str(normal.pk) in response.json()["detail"]
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()
    assert acknowledgements(results.values()) == 0


def test_a_gp_of_another_clinic_gets_a_404_and_an_anonymous_caller_a_401(gp, other_gp, anonymous):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    body = {"results": [results["res_hemoglobin"].pk], "note": "Iron started"}

    assert api_client_for(other_gp).post(url(encounter), body, format="json").status_code == 404
    assert anonymous.post(url(encounter), body, format="json").status_code == 401
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


def test_the_endpoint_is_documented_in_the_schema(anonymous):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/encounters/{id}/results/acknowledge/"]["post"]
    assert operation["operationId"] == "encounter_results_acknowledge"
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][request]["required"]) == {"results", "note"}
    assert {"200", "400", "404", "409"} <= set(operation["responses"])
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


# -- the workup page --------------------------------------------------------------------------------


def web(user, language="en"):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def page_of(response):
    return response.content.decode()


def selected_form(page):
    match = re.search(r'<form [^>]*id="acknowledge-selected".*?</form>', page, re.S)
    assert match, "the form acknowledging several results is on the page"
    return match.group(0)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("Acknowledge several at once", "Action taken (required)", "Acknowledge selected", "Select all")),
        ("ru", ("Принятые меры (обязательно)", "Подтвердить выбранные")),
    ],
)
def test_the_workup_page_offers_every_unacknowledged_abnormal_result_unticked_with_one_note(gp, language, words):
    # None ticked: an older result may have nothing to do with what the GP is acting on today.
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)

    form = selected_form(page_of(web(gp, language).get(f"/encounters/{encounter.pk}/workup/")))

    for text in words:
        assert text in form
    boxes = re.findall(r'<input type="checkbox" name="results" value="(\d+)">', form)
    assert sorted(map(int, boxes)) == sorted(result.pk for result in abnormal(results))
    assert " checked" not in form
    # "Select all" needs JavaScript: hidden until forms.js shows it, and it submits nothing.
    assert re.search(r'<button type="button" class="link select-all" data-select-all hidden>', form)
    assert f'value="{results["res_wbc"].pk}"' not in form  # normal: nothing to acknowledge
    names = ("Haemoglobin", "Urine nitrite") if language == "en" else ("Гемоглобин", "Нитриты в моче")
    assert all(name in form for name in names)
    assert "90" in form and ("g/L" if language == "en" else "г/л") in form
    assert "autofocus" not in form


def test_one_unacknowledged_result_keeps_only_its_own_form(gp):
    encounter = urinary_encounter(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)

    page = page_of(web(gp).get(f"/encounters/{encounter.pk}/workup/"))

    assert 'id="acknowledge-selected"' not in page and 'class="acknowledge"' in page


def test_the_ticked_results_are_acknowledged_with_the_note(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    ticked = [results["res_hemoglobin"].pk, results["res_ua_nitrite"].pk]

    client = web(gp)
    response = client.post(
        f"/encounters/{encounter.pk}/results/acknowledge/", {"results": ticked, "note": "Iron, urine culture"}
    )

    assert response.status_code == 302 and response["Location"].endswith(f"/encounters/{encounter.pk}/workup/#results")
    assert set(Result.objects.filter(acknowledgement_note="Iron, urine culture").values_list("pk", flat=True)) == set(
        ticked
    )
    page = page_of(client.get(response["Location"]))
    # Said in the results panel, where the redirect lands, not at the top of the page.
    panel_ = page[page.index('<section class="card" id="results"') :]
    panel_ = panel_[: panel_.index("</section>")]
    assert '<li class="at-results success">Results acknowledged: 2.</li>' in panel_
    assert page.count("Results acknowledged: 2.") == 1
    assert 'id="acknowledge-selected"' not in page  # one left: its own form is enough


def test_a_blank_note_comes_back_with_the_ticks_kept_and_the_note_in_focus(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    ticked = results["res_hemoglobin"].pk

    response = web(gp).post(f"/encounters/{encounter.pk}/results/acknowledge/", {"results": [ticked], "note": "  "})

    assert response.status_code == 200
    page = page_of(response)
    form = selected_form(page)
    assert "Say what was done about this result." in form
    textarea = re.search(r'<textarea id="ack-selected-note"[^>]*>', form).group(0)
    assert "autofocus" in textarea and 'aria-invalid="true"' in textarea
    assert page.count("autofocus") == 1
    assert re.findall(r'value="(\d+)" checked', form) == [str(ticked)]
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_nothing_ticked_is_refused_with_the_note_kept_and_the_list_in_focus(gp, language):
    encounter = urinary_encounter(gp)
    panel(gp, encounter)

    page = page_of(web(gp, language).post(f"/encounters/{encounter.pk}/results/acknowledge/", {"note": "Iron started"}))

    form = selected_form(page)
    assert ("Choose at least one result." if language == "en" else "Выберите хотя бы один результат.") in form
    assert ">Iron started</textarea>" in form
    assert page.count("autofocus") == 1 and re.search(r'<input type="checkbox"[^>]*autofocus', form)
    assert " checked" not in form


def rows_of(form):
    return {
        int(pk): row
        for pk, row in re.findall(r'<li><label><input [^>]*value="(\d+)".*?>(.*?)</label></li>', form, re.S)
    }


def test_each_result_shows_its_day_performed_or_else_entered_and_a_true_false_result_its_flag_too(gp):
    encounter = urinary_encounter(gp)
    actor = actor_for(gp)
    performed = encounter.visit_date + datetime.timedelta(days=1)
    hemoglobin = result_enter(actor=actor, encounter=encounter, code="res_hemoglobin", value=90, performed_on=performed)
    nitrite = result_enter(actor=actor, encounter=encounter, code="res_ua_nitrite", value=True)

    rows = rows_of(selected_form(page_of(web(gp).get(f"/encounters/{encounter.pk}/workup/"))))

    assert f'<time datetime="{performed.isoformat()}">' in rows[hemoglobin.pk]
    assert f'<time datetime="{clinic_today().isoformat()}">' in rows[nitrite.pk]  # entered today, no day performed
    with translation.override("en"):
        assert f">{date_format(performed, 'SHORT_DATE_FORMAT')}</time>" in rows[hemoglobin.pk]
    # The same chip for a positive nitrite as for a low haemoglobin.
    assert '<span class="flag flag-low abnormal">' in rows[hemoglobin.pk] and "90 g/L" in rows[hemoglobin.pk]
    assert '<span class="flag flag-positive abnormal">' in rows[nitrite.pk]


def test_a_result_acknowledged_meanwhile_is_named_and_nothing_else_is_saved(gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    ticked = [result.pk for result in abnormal(results)]
    result_acknowledge(actor=actor_for(gp), result=results["res_ua_nitrite"], note="Antibiotic started")

    page = page_of(
        web(gp, "ru").post(f"/encounters/{encounter.pk}/results/acknowledge/", {"results": ticked, "note": "Железо"})
    )

    form = selected_form(page)
    assert "Ничего не подтверждено." in form and "Нитриты в моче: Этот результат уже подтверждён." in form
    assert ">Железо</textarea>" in form
    assert Result.objects.filter(acknowledged_at__isnull=False).count() == 1


def test_another_clinic_gets_a_404_anonymous_is_sent_to_log_in_and_a_get_leads_back(gp, other_gp):
    encounter = urinary_encounter(gp)
    results = panel(gp, encounter)
    address = f"/encounters/{encounter.pk}/results/acknowledge/"
    body = {"results": [results["res_hemoglobin"].pk], "note": "x"}

    assert web(other_gp).post(address, body).status_code == 404
    assert web(other_gp).get(address).status_code == 404
    anonymous = Client().post(address, body)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    back = web(gp).get(address)
    assert back.status_code == 302 and back["Location"] == f"/encounters/{encounter.pk}/workup/#acknowledge-selected"
    assert web(gp).post(address, {"results": ["x"], "note": "Iron"}).status_code == 200
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


def test_a_bad_list_and_a_bad_note_are_both_named_in_one_answer(gp):
    # A GP (or an EHR) fixes everything at once: the list's problem does not hide the note's.
    encounter = urinary_encounter(gp)
    panel(gp, encounter)

    api = api_client_for(gp).post(url(encounter), {"results": [], "note": "Iron\x00"}, format="json").json()
    page = selected_form(page_of(web(gp).post(f"/encounters/{encounter.pk}/results/acknowledge/", {"note": "  "})))

    assert "Choose at least one result." in str(api["results"]) and "Control characters" in str(api["note"])
    assert "Choose at least one result." in page and "Say what was done about this result." in page
