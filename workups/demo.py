"""Example consultations for the demo clinic, so that a first look at the app has something to open: one
patient for each tier a GP meets most (an urgent kidney infection, a cauda equina emergency, and positional
numbness to watch), each with the encounter recorded and its workup made, as the GP would have done them.
The kidney infection is taken further, so that the worklist has the loop to show: its recommendations are
accepted and the urine results are back, abnormal and not yet acknowledged, while the rest are awaited.
They go through the same validation and services as a GP's own entries, and are audit-logged like them."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from clinic import services as record
from clinic.audit import Actor
from clinic.models import Patient
from clinic.serializers import EncounterWriteSerializer
from workups.engine import get_knowledge_base
from workups.services import result_enter, workup_accept_all, workup_generate

# The red-flag screen answered: every flag the knowledge base asks about absent unless a case says otherwise.
RED_FLAGS_ABSENT = {code: False for code in get_knowledge_base().red_flags}

DEMO_CONSULTATIONS = (
    {
        "patient": {
            "family_name": "Иванова",
            "given_name": "Мария",
            "middle_name": "Петровна",
            "birth_date": date(1968, 3, 2),
            "sex": "female",
            "snils": "11223344595",
        },
        "encounter": {
            "chief_complaint": "Онемение в пояснице справа, частое мочеиспускание, озноб",
            "duration_days": 4,
            "pregnant": False,
            "temperature_c": 38.4,
            "findings": {
                **RED_FLAGS_ABSENT,
                "rf_fever": True,
                "loc_lumbar": True,
                "sx_urinary_frequency": True,
                "sx_dysuria": True,
                "ex_cva_tenderness": True,
            },
        },
        # Accepted, and these came back the same day: pyuria on the Nechiporenko test and a positive nitrite.
        "results": {"res_nech_leukocytes": 6500, "res_ua_nitrite": True},
    },
    {
        "patient": {
            "family_name": "Смирнов",
            "given_name": "Алексей",
            "middle_name": "Игоревич",
            "birth_date": date(1979, 9, 14),
            "sex": "male",
        },
        "encounter": {
            "chief_complaint": "Онемение в промежности и пояснице, с утра не может помочиться",
            "duration_days": 2,
            "findings": {
                **RED_FLAGS_ABSENT,
                "rf_saddle_anesthesia": True,
                "rf_bladder_dysfunction": True,
                "loc_lumbar": True,
                "sx_leg_pain": True,
            },
        },
    },
    {
        "patient": {
            "family_name": "Кузнецова",
            "given_name": "Ольга",
            "middle_name": "Андреевна",
            "birth_date": date(1994, 6, 21),
            "sex": "female",
        },
        "encounter": {
            "chief_complaint": "Онемение в пояснице после долгого сидения за компьютером, проходит при ходьбе",
            "duration_days": 3,
            "pregnant": False,
            "temperature_c": 36.6,
            "findings": {
                **RED_FLAGS_ABSENT,
                "loc_lumbar": True,
                "pattern_positional": True,
                "hx_prolonged_static_posture": True,
            },
        },
    },
)


@transaction.atomic
def demo_consultations_ensure(*, actor: Actor) -> list[Patient]:
    """The example patients, their encounters and workups, in the actor's clinic when it has no patient yet
    (a clinic in use is never touched); the patients made, or none."""
    if actor.clinic is None:
        raise ValidationError("The demo GP is not a member of a clinic.")
    if Patient.objects.filter(clinic=actor.clinic).exists():
        return []
    made = []
    for consultation in DEMO_CONSULTATIONS:
        patient = record.patient_create(actor=actor, **consultation["patient"])
        data = EncounterWriteSerializer(data=consultation["encounter"], context={"patient": patient})
        data.is_valid(raise_exception=True)  # the examples are data like any other: checked as a GP's are
        encounter = record.encounter_create(actor=actor, patient=patient, data=data.validated_data)
        workup = workup_generate(actor=actor, encounter=encounter)
        if "results" in consultation:
            workup_accept_all(actor=actor, workup=workup)
            for code, value in consultation["results"].items():
                result_enter(
                    actor=actor, encounter=encounter, code=code, value=value, performed_on=encounter.visit_date
                )
        made.append(patient)
    return made
