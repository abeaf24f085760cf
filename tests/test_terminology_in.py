"""Terminology In (ehr/terminology_in.yaml): ICD-10 / SNOMED CT Conditions and LOINC Observations read
into the workup vocabulary: units converted, most recent value, entered-in-error and refuted ignored,
implausible values refused with a note."""

import datetime

import pytest
import yaml
from django.utils import translation

from ehr import terminology_in
from ehr.terminology_in import read_conditions, read_observations
from ehr.terminology_in import terminology_in as table

TODAY = datetime.date.today()
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


@pytest.fixture(autouse=True)
def english():
    """The notes go on CDS cards in the caller's language (Russian by default); these tests read the English."""
    with translation.override("en"):
        yield


def days_ago(days: int) -> str:
    return (datetime.datetime.now() - datetime.timedelta(days=days)).replace(microsecond=0).isoformat()


def condition(code, system=ICD10, *, clinical="active", verification="confirmed", onset=None, body_site=None):
    resource = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code}]},
        "clinicalStatus": {"coding": [{"code": clinical}]},
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if onset:
        resource["onsetDateTime"] = onset
    if body_site:
        resource["bodySite"] = [{"coding": [{"system": SNOMED, "code": body_site}]}]
    return resource


def vital(code, value, unit, *, when=None, status="final"):
    return {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when or days_ago(0),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


# -- the table -------------------------------------------------------------------------------------


def test_the_table_loads_and_every_entry_has_a_source():
    loaded = table()
    assert loaded["icd10"] and loaded["snomed"] and loaded["observations"]
    raw = yaml.safe_load(terminology_in.PATH.read_text(encoding="utf-8"))
    entries = (
        raw["conditions"]["icd10"]
        + raw["conditions"]["snomed"]
        + raw["observations"]
        + raw["panels"]
        + raw["location"]["body_sites"]
        + raw["location"]["icd10_prefixes"]
        + raw["location"]["icd10_sites"]
    )
    assert all(entry.get("source") for entry in entries)


def test_every_hx_and_rf_finding_mapped_is_a_vocabulary_code(kb):
    for entry in table()["icd10"]:
        assert entry["finding"] in kb.vocabulary.findings


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda data: data["conditions"]["icd10"].append(
                {"from": "X00", "to": "X01", "finding": "hx_made_up", "when": "history", "source": "s"}
            ),
            "unknown",
        ),
        (lambda data: data["conditions"]["icd10"][0].pop("source"), "source"),
        (
            lambda data: data["observations"].append(
                {"code": "1-1", "target": "res_made_up", "max_age_days": 1, "source": "s"}
            ),
            "unknown target",
        ),
        (lambda data: data["observations"][0]["units"].update({"K": "kelvin"}), "units"),
    ],
)
def test_a_bad_table_refuses_to_load(tmp_path, monkeypatch, change, message):
    data = yaml.safe_load(terminology_in.PATH.read_text(encoding="utf-8"))
    change(data)
    bad = tmp_path / "terminology_in.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(terminology_in, "PATH", bad)
    table.cache_clear()
    try:
        with pytest.raises(terminology_in.TerminologyError, match=message):
            table()
    finally:
        monkeypatch.undo()
        table.cache_clear()


# -- conditions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, system, finding",
    [
        ("C50.9", ICD10, "rf_cancer_history"),
        ("C97", ICD10, "rf_cancer_history"),
        ("N18.3", ICD10, "hx_kidney_disease"),
        ("M81.0", ICD10, "hx_osteoporosis"),
        ("M80", ICD10, "hx_osteoporosis"),
        ("M51.1", ICD10, "hx_disc_herniation"),
        ("M51.16", ICD10CM, "hx_disc_herniation"),
        ("M41.2", ICD10, "hx_scoliosis_kyphosis"),
        ("M42.1", ICD10, "hx_osteochondrosis"),
        ("K86.1", ICD10, "hx_pancreatic_disease"),
        ("N41.1", ICD10, "hx_prostate_disease"),
        ("I21.9", ICD10, "hx_heart_disease"),
        ("I50.0", ICD10, "hx_heart_disease"),
        ("N80.0", ICD10, "hx_gyn_disease"),
        ("Z95.0", ICD10, "hx_mri_contraindication"),
        ("363346000", SNOMED, "rf_cancer_history"),
        ("709044004", SNOMED, "hx_kidney_disease"),
    ],
)
def test_history_conditions_map_to_their_finding(code, system, finding):
    found, _ = read_conditions([condition(code, system)], today=TODAY)
    assert found == {finding: True}


@pytest.mark.parametrize("code", ["M51.3", "D00.1", "C98", "N17.9", "I26", "M54.5"])
def test_codes_outside_the_ranges_map_to_nothing(code):
    assert read_conditions([condition(code)], today=TODAY)[0] == {}


def test_a_resolved_cancer_is_still_a_history_of_cancer():
    found, _ = read_conditions([condition("C61", clinical="resolved", onset="2015-03-01")], today=TODAY)
    assert found == {"rf_cancer_history": True}


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error", "unconfirmed", "provisional", "differential"])
def test_refuted_entered_in_error_and_unconfirmed_conditions_are_ignored(verification):
    assert read_conditions([condition("C61", verification=verification)], today=TODAY)[0] == {}


def test_a_fever_condition_counts_only_while_current_and_recent():
    assert read_conditions([condition("R50.9", onset=days_ago(2))], today=TODAY)[0] == {"rf_fever": True}
    assert read_conditions([condition("R50.9", onset="2019-05-01")], today=TODAY)[0] == {}
    assert read_conditions([condition("R50.9", onset=days_ago(2), clinical="resolved")], today=TODAY)[0] == {}
    assert read_conditions([condition("R50.9")], today=TODAY)[0] == {}  # undated: not known to be current


def test_a_recent_viral_infection_counts_within_six_weeks_even_resolved():
    recent = condition("J06.9", onset=days_ago(10), clinical="resolved")
    old = condition("J06.9", onset=days_ago(100))
    assert read_conditions([recent], today=TODAY)[0] == {"hx_recent_viral_infection": True}
    assert read_conditions([old], today=TODAY)[0] == {}


@pytest.mark.parametrize(
    "code, site, location",
    [
        ("R20.2", "1141985005", "loc_lumbar"),
        ("R20.0", "1017210004", "loc_lumbar"),
        ("M54.5", "122496007", "loc_lumbar"),
        ("R20.2", "1141986006", "loc_interscapular"),
    ],
)
def test_numbness_or_back_pain_with_a_body_site_gives_the_location(code, site, location):
    found, _ = read_conditions([condition(code, onset=days_ago(5), body_site=site)], today=TODAY)
    assert found == {location: True}


def test_numbness_without_a_body_site_gives_no_location():
    assert read_conditions([condition("R20.2", onset=days_ago(5))], today=TODAY)[0] == {}


@pytest.mark.parametrize(
    "code, system, location",
    [
        ("M54.5", ICD10, "loc_lumbar"),  # low back pain
        ("M54.50", ICD10CM, "loc_lumbar"),  # ICD-10-CM low back pain, unspecified
        ("M54.16", ICD10, "loc_lumbar"),  # radiculopathy, lumbar region
        ("M54.17", ICD10, "loc_lumbar"),  # lumbosacral
        ("M54.18", ICD10CM, "loc_lumbar"),  # sacral and sacrococcygeal
        ("M54.86", ICD10, "loc_lumbar"),  # other dorsalgia, lumbar region
        ("M54.6", ICD10, "loc_interscapular"),  # pain in thoracic spine
        ("M54.14", ICD10, "loc_interscapular"),  # radiculopathy, thoracic region
    ],
)
def test_a_code_that_states_the_site_gives_the_location_without_a_body_site(code, system, location):
    found, _ = read_conditions([condition(code, system, onset=days_ago(5))], today=TODAY)
    assert found == {location: True}


@pytest.mark.parametrize(
    "code, system",
    [
        ("M54.9", ICD10),  # dorsalgia, unspecified
        ("M54.3", ICD10),  # sciatica: a leg, not a back site
        ("M54.41", ICD10CM),  # lumbago with sciatica, right side: the fifth character is the side
        ("M54.12", ICD10),  # radiculopathy, cervical region: no numbness location of this workup
        ("M51.16", ICD10),  # a disc code with a site is a history, not where the numbness is
    ],
)
def test_a_code_without_a_back_site_gives_no_location(code, system):
    assert not any(
        key.startswith("loc_") for key in read_conditions([condition(code, system, onset=days_ago(5))], today=TODAY)[0]
    )


def test_a_body_site_wins_over_the_site_the_code_states():
    found, _ = read_conditions([condition("M54.6", onset=days_ago(5), body_site="1141985005")], today=TODAY)
    assert found == {"loc_lumbar": True}


def test_low_back_pain_from_years_ago_or_undated_gives_no_location():
    assert read_conditions([condition("M54.5", onset="2018-04-01")], today=TODAY)[0] == {}
    assert read_conditions([condition("M54.16")], today=TODAY)[0] == {}


# -- observations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, unit, celsius", [(98.6, "[degF]", 37.0), (101.3, "[degF]", 38.5), (37.4, "Cel", 37.4)])
def test_temperature_is_converted_to_celsius(value, unit, celsius):
    values, notes = read_observations([vital("8310-5", value, unit)], today=TODAY)
    assert values == {"temperature_c": celsius} and not notes


def test_the_most_recent_value_wins_over_an_older_one():
    old_fever = vital("8310-5", 101.3, "[degF]", when=days_ago(1))
    normal_now = vital("8310-5", 98.6, "[degF]", when=days_ago(0))
    values, _ = read_observations([normal_now, old_fever], today=TODAY)
    assert values["temperature_c"] == 37.0


def test_a_stale_vital_sign_is_not_used():
    values, notes = read_observations([vital("8310-5", 39.5, "Cel", when="2019-01-10T10:00:00")], today=TODAY)
    assert values == {} and "older than" in notes[0]


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered"])
def test_entered_in_error_and_cancelled_observations_are_ignored(status):
    wrong = vital("8310-5", 104.0, "[degF]", status=status)
    right = vital("8310-5", 98.6, "[degF]", when=days_ago(1))
    assert read_observations([wrong, right], today=TODAY)[0] == {"temperature_c": 37.0}


@pytest.mark.parametrize(
    "observation",
    [
        vital("8310-5", 98.6, "Cel"),  # °F sent as °C: implausible
        vital("8310-5", 37.0, "K"),  # a unit not understood
        vital("718-7", 13.2, "g/L"),  # g/dL sent as g/L: below the plausible range
    ],
)
def test_an_implausible_value_or_unknown_unit_is_refused_with_a_note(observation):
    values, notes = read_observations([observation], today=TODAY)
    assert values == {} and len(notes) == 1 and "not used" in notes[0]


def test_a_quantity_in_a_unit_system_other_than_ucum_is_not_read_as_that_unit():
    observation = vital("8310-5", 38.5, "Cel")
    observation["valueQuantity"]["system"] = "http://example.org/local-units"

    values, notes = read_observations([observation], today=TODAY)

    assert values == {}
    assert notes == [
        "LOINC 8310-5 (temperature_c) not used: the unit's system http://example.org/local-units is not UCUM."
    ]


def test_plausible_ranges_of_the_case_fields_are_those_of_their_loinc_entries():
    ranges = terminology_in.case_field_plausible()

    assert ranges["temperature_c"] == (25, 45) and ranges["spo2"] == (30, 100)
    assert ranges["duration_days"][0] == 0


def test_haemoglobin_in_g_per_dl_is_converted():
    assert read_observations([vital("718-7", 13.2, "g/dL")], today=TODAY)[0] == {"res_hemoglobin": 132.0}


def test_the_blood_pressure_panel_gives_systolic_and_diastolic():
    panel = {
        "resourceType": "Observation",
        "status": "final",
        "effectiveDateTime": days_ago(0),
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 128, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 82, "code": "mm[Hg]"},
            },
        ],
    }
    assert read_observations([panel], today=TODAY)[0] == {"systolic_bp": 128, "diastolic_bp": 82}


@pytest.mark.parametrize("answer, pregnant", [("LA15173-0", True), ("LA26683-5", False)])
def test_pregnancy_status(answer, pregnant):
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "effectiveDateTime": days_ago(1),
        "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]},
    }
    assert read_observations([observation], today=TODAY)[0] == {"pregnant": pregnant}


def test_a_positive_urine_nitrite_coded_in_snomed():
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "effectiveDateTime": days_ago(1),
        "code": {"coding": [{"system": LOINC, "code": "5802-4"}]},
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]},
    }
    assert read_observations([observation], today=TODAY)[0] == {"res_ua_nitrite": True}


def test_an_undated_observation_is_not_used():
    observation = vital("8867-4", 80, "/min")
    del observation["effectiveDateTime"]
    values, notes = read_observations([observation], today=TODAY)
    assert values == {} and "no date" in notes[0]


@pytest.mark.parametrize(
    ("observation", "russian"),
    [
        (vital("8310-5", 98.6, "Cel"), "98.6 Cel — неправдоподобное значение"),
        (vital("8310-5", 37.0, "K"), "единица K не распознана"),
        (vital("8310-5", 39.5, "Cel", when="2019-01-10T10:00:00"), "последнее значение от 2019-01-10"),
    ],
)
def test_the_notes_are_in_the_language_of_the_request(observation, russian):
    with translation.override("ru"):
        _, notes = read_observations([observation], today=TODAY)
    assert len(notes) == 1 and russian in notes[0] and "не учтён" in notes[0]
