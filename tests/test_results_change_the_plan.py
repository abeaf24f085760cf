"""Results that would change the plan say so on the workup page as soon as they are entered, not only once the GP
thinks to review with them: a result calling for an emergency (a troponin above the limit) raises a red banner to call
an ambulance and names the referral it adds; one adding a test names it; a normal result, or results already weighed
by a review, show nothing. The engine runs on the results; nothing is stored until the GP reviews.
"""

from django.test import Client
from django.utils import translation

from tests.record_factories import URINARY, actor_for, encounter_of, screened, workup_for
from tests.test_pages_results import finalized_urinary
from workups.models import Workup
from workups.services import result_enter


def page_of(gp, encounter, language="en"):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(gp)
    with translation.override(language):
        return client.get(f"/encounters/{encounter.pk}/workup/").content.decode()


def test_a_troponin_above_the_limit_calls_for_an_ambulance_at_once_and_names_cardiology(gp):
    encounter = finalized_urinary(gp)
    workups_before = Workup.objects.filter(encounter=encounter).count()
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_troponin_above_url", value=True)
    page = page_of(gp, encounter)
    assert 'id="results-change-plan"' in page and 'data-disposition="emergency"' in page
    assert "call for emergency action: call an ambulance" in page
    assert "They add: cardiology (emergency)." in page
    assert Workup.objects.filter(encounter=encounter).count() == workups_before  # nothing stored by looking


def test_the_banner_is_in_russian_on_a_russian_page(gp):
    encounter = finalized_urinary(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_troponin_above_url", value=True)
    page = page_of(gp, encounter, "ru")
    assert "Эти результаты требуют экстренных действий: вызовите скорую помощь (103 или 112)" in page


def test_a_result_that_adds_a_test_names_it_without_an_emergency(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup_for(gp, encounter)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_ua_nitrite", value=True)
    page = page_of(gp, encounter)
    assert 'id="results-change-plan"' in page and 'class="banner urgent"' in page
    assert "These results change the plan." in page or "These results raise the plan to" in page
    assert "urine culture" in page.lower()


def test_a_normal_result_shows_nothing(gp):
    encounter = finalized_urinary(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=140)
    assert 'id="results-change-plan"' not in page_of(gp, encounter)


def test_after_the_review_with_these_results_the_banner_goes(gp):
    encounter = finalized_urinary(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_troponin_above_url", value=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(gp)
    assert client.post(f"/encounters/{encounter.pk}/review/").status_code == 302
    assert 'id="results-change-plan"' not in page_of(gp, encounter)
