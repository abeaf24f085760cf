"""The specialist's conclusion on the workup page: under the completed referral's row, headed with whose it is and
the day the patient was seen (the clinic's calendar), cut sensibly with a link to the whole on the referral."""

import datetime
from html import unescape

from django.utils import timezone

from referrals import services as referral_services
from referrals.models import Referral
from tests.record_factories import actor_for, clinic_local, encounter_of, workup_for


def html(response):
    return response.content.decode()


def answered(gp, conclusion, *, status="completed"):
    """A neurology referral issued five days ago, seen three days ago and (by default) completed today."""
    actor = actor_for(gp)
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    letter = referral_services.referral_create(
        actor=actor, encounter=encounter, specialty="neurology", urgency="routine", reason="Numbness"
    )
    letter = referral_services.referral_issue(actor=actor, referral=letter)
    Referral.objects.filter(pk=letter.pk).update(issued_at=timezone.now() - datetime.timedelta(days=5))
    seen = timezone.now() - datetime.timedelta(days=3)
    letter = referral_services.referral_status_change(
        actor=actor, referral=letter, status="booked", appointment_at=seen
    )
    if status == "completed":
        letter = referral_services.referral_status_change(
            actor=actor, referral=letter, status="completed", conclusion=conclusion
        )
    return encounter, letter, clinic_local(seen).date()


def conclusion_of(page, letter):
    start = page.find(f'data-conclusion="{letter.pk}"')
    return unescape(page[start : page.index("</p>", start)]) if start >= 0 else ""


def test_the_workup_page_shows_the_neurologists_conclusion_under_the_referral(gp_web, gp):
    encounter, letter, seen = answered(gp, "L5 radiculopathy on the left; physiotherapy, review in 6 weeks.")

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en"))

    shown = conclusion_of(page, letter)
    assert f"<strong>Neurologist's conclusion ({seen.day} {seen:%B %Y}):</strong>" in shown
    assert "L5 radiculopathy on the left; physiotherapy, review in 6 weeks." in shown
    assert "Read the whole conclusion" not in shown
    assert page.index(f'href="/referrals/{letter.pk}/"') < page.index(f'data-conclusion="{letter.pk}"')


def test_in_russian_it_reads_zaklyuchenie_nevrologa_with_the_date(gp_web, gp):
    encounter, letter, seen = answered(gp, "Радикулопатия L5 слева.")

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert f"<strong>Заключение невролога ({seen:%d.%m.%Y}):</strong> Радикулопатия L5 слева." in conclusion_of(
        page, letter
    )


def test_a_long_conclusion_is_cut_with_a_link_to_the_whole(gp_web, gp):
    long = "Радикулопатия L5 слева. " + "Рекомендовано ЛФК, НПВС коротким курсом. " * 20
    encounter, letter, _ = answered(gp, long)

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en"))

    shown = conclusion_of(page, letter)
    assert long.strip() not in shown and "…" in shown
    assert f'<a href="/referrals/{letter.pk}/#tracking">Read the whole conclusion</a>' in shown


def test_no_conclusion_is_shown_before_one_is_recorded(gp_web, gp):
    encounter, letter, _ = answered(gp, "", status="booked")

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en"))

    assert conclusion_of(page, letter) == "" and "conclusion (" not in page
