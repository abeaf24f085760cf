"""order-select, a spine study the workup does not recommend while it recommends another: the card offers the
recommended one in its place, and the order it drafts is the same order the workup's own card drafts, with the
workup's reason for that study (what the EHR files as the order's reason), not the warning about the other."""

from tests.test_cds_hooks import (  # noqa: F401 (fixtures)
    IMAGING,
    WORKUP,
    call,
    cards_of,
    claims_for,
    clinic,
    created,
    ehr,
    order_select,
    our_code,
    patient_view,
    rsa_key,
    sign,
)

NIGHT_PAIN = {"loc_lumbar": True, "rf_night_pain": True}


def xray_drafted_by_the_workup_card(call) -> dict:  # noqa: F811
    [workup_card] = [card for card in cards_of(call(WORKUP, patient_view(NIGHT_PAIN))) if card.get("suggestions")]
    return next(resource for resource in created(workup_card) if our_code(resource) == "xray_lumbar_spine")


def test_the_study_offered_instead_carries_the_workups_reason_for_it(call):  # noqa: F811
    [card] = cards_of(call(IMAGING, order_select(NIGHT_PAIN, {"sr-1": "mri_lumbar_spine"})))

    assert card["detail"].startswith("The workup recommends X-ray of the lumbar spine instead")
    [xray] = created(card)
    reason = xray["reasonCode"][0]["text"]
    assert "instead" not in reason
    assert "night pain" in reason
    workup_xray = xray_drafted_by_the_workup_card(call)
    assert (xray["reasonCode"], xray["priority"]) == (workup_xray["reasonCode"], workup_xray["priority"])


def test_the_study_offered_instead_carries_the_workups_reason_in_the_callers_language(client, ehr, rsa_key):  # noqa: F811
    response = client.post(
        f"/cds-services/{IMAGING}",
        data=order_select(NIGHT_PAIN, {"sr-1": "mri_lumbar_spine"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign(claims_for(IMAGING), rsa_key)}",
        HTTP_ACCEPT_LANGUAGE="ru",
    )

    [card] = cards_of(response)
    assert card["detail"].startswith("Вместо этого")
    [xray] = created(card)
    reason = xray["reasonCode"][0]["text"]
    assert "Вместо этого" not in reason and "ночн" in reason
