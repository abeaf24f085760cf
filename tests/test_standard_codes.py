"""Standard codes (ehr/standard_codes.yaml, ehr/terminology_in.yaml): the spine imaging, ultrasound and eGFR
codes confirmed against public sources, sent on orders and recognised on an EHR's draft orders; codes that
could not be confirmed are on record with a note and neither sent nor recognised."""

import datetime

import pytest
import yaml
from django.utils import translation

from ehr import standard_codes as standard_codes_module
from ehr.cds_hooks import _draft_service_request, _item_of_order
from ehr.standard_codes import LOINC, SNOMED, item_for_coding, order_item_for_coding, standard_codes
from ehr.terminology_in import read_observations
from tests.test_cds_hooks import (  # noqa: F401 (fixtures: call, clinic, ehr, rsa_key)
    IMAGING,
    MINOR_TRAUMA,
    call,
    cards_of,
    clinic,
    ehr,
    fhir_patient,
    order_select,
    rsa_key,
)

TODAY = datetime.date.today()


def test_every_code_names_its_source_and_every_unconfirmed_one_says_why():
    data = yaml.safe_load(standard_codes_module.PATH.read_text(encoding="utf-8"))
    for section in ("imaging", "orders_in"):
        for item, entries in data[section].items():
            for entry in entries:
                assert entry.get("source"), (section, item, entry)
                if entry.get("verified") is False:
                    assert entry.get("note"), (section, item, entry)
    unconfirmed = {(row["item"], row["code"]) for row in standard_codes()["unconfirmed"]}
    assert {("us_kidneys", "306005"), ("us_prostate", "24884-9")} <= unconfirmed
    assert {row["item"] for row in standard_codes()["unconfirmed"]} >= {"doppler_neck_vessels", "doppler_lower_limb"}


@pytest.mark.parametrize(
    ("item", "loinc", "snomed"),
    [
        ("xray_lumbar_spine", "24972-2", "840361000"),
        ("xray_thoracic_spine", "24983-9", "1290654008"),
        ("mri_lumbar_spine", "24968-0", None),
        ("mri_thoracic_spine", "24980-5", None),
        ("ct_spine", None, "241577003"),
        ("us_abdomen", "24558-9", "45036003"),
        ("us_spine", "24926-8", "241516003"),
    ],
)
def test_a_spine_imaging_order_carries_its_loinc_and_snomed_codes_on_one_service_request(item, loinc, snomed):
    with translation.override("en"):
        order = _draft_service_request("p-1", item, "routine", "why")
    codes = {(coding["system"], coding["code"]) for coding in order["code"]["coding"]}
    assert (LOINC, loinc) in codes if loinc else all(system != LOINC for system, _ in codes)
    assert (SNOMED, snomed) in codes if snomed else all(system != SNOMED for system, _ in codes)


@pytest.mark.parametrize(
    ("system", "code", "item"),
    [
        (LOINC, "24968-0", "mri_lumbar_spine"),  # MR Lumbar spine
        (SNOMED, "394451000119106", "mri_lumbar_spine"),  # MRI of lumbar spine without contrast
        (SNOMED, "91333005", "mri_thoracic_spine"),  # MRI of thoracic spine with contrast
        (LOINC, "24963-1", "ct_spine"),  # CT Lumbar spine
        (SNOMED, "572081000119108", "ct_spine"),  # CT of thoracic spine without contrast
        (SNOMED, "1290654008", "xray_thoracic_spine"),
        (LOINC, "24884-9", "us_prostate"),  # recognised on an order, though not sent (transrectal only)
    ],
)
def test_an_ehrs_imaging_order_coded_only_in_loinc_or_snomed_is_recognised(system, code, item):
    assert _item_of_order({"code": {"coding": [{"system": system, "code": code}]}}) == item


def test_an_unconfirmed_code_is_neither_sent_nor_recognised():
    assert item_for_coding(SNOMED, "306005") is None and order_item_for_coding(SNOMED, "306005") is None
    assert item_for_coding(LOINC, "24884-9") is None  # on record as unconfirmed for export
    with translation.override("en"):
        kidneys = _draft_service_request("p-1", "us_kidneys", "routine", "why")
    assert [coding["code"] for coding in kidneys["code"]["coding"]] == ["us_kidneys"]


def test_a_loinc_coded_lumbar_xray_for_a_pregnant_patient_gets_the_critical_card(call):  # noqa: F811
    body = order_select(
        MINOR_TRAUMA, {"sr-9": "xray_lumbar_spine"}, patient=fhir_patient(gender="female", age=29), pregnant=True
    )
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {"coding": [{"system": LOINC, "code": "24972-2", "display": "XR Lumbar spine Views"}]}

    cards = cards_of(call(IMAGING, body))

    assert [card["indicator"] for card in cards] == ["critical"]


def _egfr(code, value):
    return {
        "resourceType": "Observation",
        "status": "final",
        "effectiveDateTime": TODAY.isoformat(),
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}", "code": "mL/min/{1.73_m2}"},
    }


@pytest.mark.parametrize("code", ["62238-1", "98979-8"])
def test_a_ckd_epi_egfr_is_read_as_the_egfr_result(code):
    assert read_observations([_egfr(code, 48)], today=TODAY)[0] == {"res_egfr": 48}


def test_83086_5_is_not_read_as_a_pregnancy_test():
    positive = {**_egfr("83086-5", 1), "valueBoolean": True}
    del positive["valueQuantity"]
    assert read_observations([positive], today=TODAY) == ({}, [])
