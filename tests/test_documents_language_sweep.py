"""Every document in its language, for every public vignette: the requisition, the patient leaflet and a letter
for each referral, made from a workup whose every recommendation the GP accepted (with the vignette's results
entered), rendered as the workers render them and read back with pypdf.

A Russian document may hold no Latin word and an English one no Cyrillic. The record's own data is written in
the document's language (a Moscow polyclinic for Russian, an English clinic for English), so whatever is left
in the other script came from the app or its knowledge base: a term the catalogue or the base lacks in that
language shows up here, on paper, where the page sweep cannot see it."""

import datetime
import io
import re
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader

from referrals import services
from referrals.models import Leaflet, PdfStatus, Referral, Requisition
from tests.factories import MOSCOW_POLYCLINIC, ClinicFactory, MembershipFactory
from tests.record_factories import actor_for, encounter_of, patient_of, workup_for
from workups.engine import get_knowledge_base
from workups.models import Decision
from workups.services import result_enter, workup_accept_all
from workups.vignettes import vignette_body

pytestmark = pytest.mark.django_db

VIGNETTES = yaml.safe_load((Path(__file__).parent / "data" / "vignettes.yaml").read_text())
VISIT = datetime.date(2026, 11, 30)

# What a Russian document may print in Latin letters: "cito" (the requisition's mark for an emergency test).
LATIN_ALLOWED = {"cito"}

PEOPLE = {
    "ru": {
        "clinic": MOSCOW_POLYCLINIC,
        "gp": {"full_name": "Петрова Анна Сергеевна", "position": "врач-терапевт участковый"},
        "patient": {"family_name": "Смирнова", "given_name": "Ольга", "middle_name": "Ивановна"},
        "address": "г. Москва, ул. Ленина, д. 1, кв. 5",
        "complaint": "Онемение в спине",
    },
    "en": {
        "clinic": {"name": "Riverside Practice", "language": "en", "time_zone": "Europe/London"},
        "gp": {"full_name": "Anna Peters", "position": "General practitioner"},
        "patient": {"family_name": "Smith", "given_name": "Olga", "middle_name": ""},
        "address": "1 High Street, Leeds",
        "complaint": "Numbness in the back",
    },
}


def words_in_the_other_script(text: str, language: str) -> set[str]:
    if language == "ru":
        return {word for word in re.findall(r"[A-Za-z]{2,}", text) if word.lower() not in LATIN_ALLOWED}
    return set(re.findall(r"[А-Яа-яЁё]+", text))


def document_text(document) -> str:
    kind = {Referral: "referral", Requisition: "requisition", Leaflet: "leaflet"}[type(document)]
    services.document_render(kind=kind, pk=document.pk, claimant=f"sweep:{kind}:{document.pk}")
    document.refresh_from_db()
    assert document.pdf_status == PdfStatus.READY, document.pdf_error
    with document.pdf_file.open("rb") as handle:
        pages = PdfReader(io.BytesIO(handle.read())).pages
        return " ".join(" ".join(page.extract_text() for page in pages).split())


def documents_of(vignette, language):
    """The vignette's encounter in a clinic of `language`, every recommendation accepted, its results entered,
    and its documents made by the services in that language."""
    people = PEOPLE[language]
    gp = MembershipFactory(clinic=ClinicFactory(**people["clinic"]), **people["gp"]).user
    actor = actor_for(gp)
    body = vignette_body(vignette["case"], get_knowledge_base().red_flags)
    patient = patient_of(
        gp,
        sex=body["sex"],
        birth_date=VISIT.replace(year=VISIT.year - body["age"] - 1),
        address=people["address"],
        **people["patient"],
    )
    encounter = encounter_of(
        gp,
        patient=patient,
        visit_date=VISIT,
        chief_complaint=people["complaint"],
        duration_days=body["duration_days"],
        pregnant=body.get("pregnant"),
        temperature_c=body.get("temperature_c"),
        findings=body["findings"],
    )
    workup = workup_for(gp, encounter)
    workup_accept_all(actor=actor, workup=workup)
    for code, value in (body.get("results") or {}).items():
        result_enter(actor=actor, encounter=encounter, code=code, value=value, performed_on=VISIT)
    documents = [services.leaflet_request(actor=actor, encounter=encounter, language=language)]
    if workup.items.filter(decision=Decision.ACCEPTED).exists():
        documents.append(services.requisition_request(actor=actor, encounter=encounter, language=language))
    for referral in workup.referrals.filter(decision=Decision.ACCEPTED):
        documents.append(
            services.referral_create(actor=actor, encounter=encounter, recommendation=referral, language=language)
        )
    return documents


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_every_document_of_a_vignette_is_in_its_language_alone(vignette, language):
    documents = documents_of(vignette, language)
    leftovers = {}
    for document in documents:
        words = words_in_the_other_script(document_text(document), language)
        if words:
            leftovers[f"{type(document).__name__} {getattr(document, 'specialty', '')}".strip()] = sorted(words)
    assert leftovers == {}
