"""The patient's identifiers in FHIR: the record's own number (or the EHR's, in its system), and the Russian
national ones the HL7 FHIR Russia core guide (RuCoreIG) names: SNILS and the OMS policy number.

Sources (HL7 FHIR Russia, RuCoreIG, https://build.fhir.org/ig/fhir-ru/RuCoreIG/ and github.com/fhir-ru/RuCoreIG):
- NamingSystem core-ns-rf-snils: SNILS system https://fhir.ru/ig/core/systems/snils;
- NamingSystem core-ns-rf-oms: OMS policy number system https://fhir.ru/ig/core/systems/oms;
- CodeSystem core-cs-semd-identifier-type: identifier.type codes `snils` ("СНИЛС") and `oms-policy`
  ("Полис ОМС"); the Core_Patient profile (StructureDefinition core-patient) slices identifier by this type,
  and its omsPolicy slice also requires core-cs-nsi-coverage-document code 1 ("Полис ОМС");
- earlier RuCoreIG builds (0.1-0.2) fixed both types to HL7 v2-0203 SB, which is sent beside them so a
  receiver on an older build still finds its slice.

SNILS goes out as the guide's examples write it (example-core-patient-ivanov-min: "123-456-789-01", three
groups of three digits and the two check digits, all joined by hyphens); the OMS policy as its 16 digits
(example-core-patient-oms-oid: "1234567890123456"). Coming in, any separators are accepted (the record keeps
digits only), and the systems of older guides are synonyms: RuSEMD's http://fhir.ru/ig/RuSEMD/systems/snils
and .../OMS, the NamingSystem's earlier http://fhir.ru/core/systems/snils, RuCoreIG 0.1-0.2's
https://fhir.ru/ig/core/systems/OMS and Core_Coverage's http://fhir.ru/ig/core/systems/oms.
"""

from __future__ import annotations

import operator
from functools import reduce

from django.conf import settings
from django.db.models import Q

from clinic.identifiers import digits_only
from clinic.models import Patient

SNILS_SYSTEM = "https://fhir.ru/ig/core/systems/snils"
OMS_SYSTEM = "https://fhir.ru/ig/core/systems/oms"
CORE_PATIENT_PROFILE = "https://fhir.ru/ig/core/StructureDefinition/core-patient"
IDENTIFIER_TYPE = "https://fhir.ru/ig/core/CodeSystem/core-cs-semd-identifier-type"
COVERAGE_DOCUMENT = "https://fhir.ru/ig/core/CodeSystem/core-cs-nsi-coverage-document"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

# Every system accepted on input, by the record's field it fills. Only the first of each is ever sent.
SYSTEMS = {
    "snils": (
        SNILS_SYSTEM,
        "http://fhir.ru/ig/RuSEMD/systems/snils",
        "http://fhir.ru/core/systems/snils",
    ),
    "oms_policy": (
        OMS_SYSTEM,
        "http://fhir.ru/ig/RuSEMD/systems/OMS",
        "https://fhir.ru/ig/core/systems/OMS",
        "http://fhir.ru/ig/core/systems/oms",
    ),
}
FIELD_OF_SYSTEM = {system: field for field, systems in SYSTEMS.items() for system in systems}
DIGITS = {"snils": 11, "oms_policy": 16}
LABELS = {"snils": "SNILS", "oms_policy": "OMS policy"}

SB = {"system": V2_0203, "code": "SB", "display": "Social Beneficiary Identifier"}
TYPES = {
    "snils": {"coding": [{"system": IDENTIFIER_TYPE, "code": "snils", "display": "СНИЛС"}, SB], "text": "СНИЛС"},
    "oms_policy": {
        "coding": [
            {"system": IDENTIFIER_TYPE, "code": "oms-policy", "display": "Полис ОМС"},
            {"system": COVERAGE_DOCUMENT, "code": "1", "display": "Полис ОМС"},
            SB,
        ],
        "text": "Полис ОМС",
    },
}


def field_of(system) -> str | None:
    """ "snils" or "oms_policy" for a system that names one (any accepted form), else None."""
    return FIELD_OF_SYSTEM.get(system) if isinstance(system, str) else None


def snils_text(digits: str) -> str:
    """The SNILS as RuCoreIG's examples write it: 123-456-789-01."""
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]}-{digits[9:11]}"


def national_identifier(field: str, digits: str) -> dict:
    return {
        "use": "official",
        "type": TYPES[field],
        "system": SYSTEMS[field][0],
        "value": snils_text(digits) if field == "snils" else digits,
    }


def record_identifiers(patient: Patient) -> list[dict]:
    """The patient's identifiers as a Patient resource carries them: the record's number (in the EHR's
    system when it came from one), then SNILS and the OMS policy when the record has them."""
    identifiers = []
    legacy_field = field_of(patient.identifier_system)
    # A number stored in a national system before those were mapped is the same SNILS or policy: sent once.
    if patient.identifier and not (legacy_field and digits_only(patient.identifier) == getattr(patient, legacy_field)):
        identifiers.append(
            {"system": patient.identifier_system or settings.FHIR_IDENTIFIER_SYSTEM, "value": patient.identifier}
        )
    for field in ("snils", "oms_policy"):
        digits = getattr(patient, field)
        if digits:
            identifiers.append(national_identifier(field, digits))
    return identifiers


def _printable(value: str) -> bool:
    # PostgreSQL refuses a NUL in a query, and no identifier has a control character.
    return not any(ord(char) < 32 or ord(char) == 127 for char in value)


def national_digits(field: str, value) -> str | None:
    """The digits of a SNILS or policy number however it was written, or None when it can't be one."""
    digits = digits_only(value) if isinstance(value, str) else ""
    return digits if digits.isdigit() and digits.isascii() and len(digits) == DIGITS[field] else None


def identifier_key(system, value) -> tuple | None:
    """What a (system, value) identifier matches in the record: ("snils", digits), ("oms_policy", digits) or
    ("identifier", stored system, value); None when it can match nothing. The system "" (or this app's
    FHIR_IDENTIFIER_SYSTEM) is the clinic's own numbering."""
    if not isinstance(value, str) or not value or not _printable(value):
        return None
    field = field_of(system)
    if field:
        digits = national_digits(field, value)
        return (field, digits) if digits else None
    if not isinstance(system, str) or not _printable(system):
        return None
    return ("identifier", "" if system == settings.FHIR_IDENTIFIER_SYSTEM else system, value)


def identifier_q_of_key(key: tuple) -> Q:
    if key[0] == "identifier":
        return Q(identifier_system=key[1], identifier=key[2])
    return Q(**{key[0]: key[1]})


def identifier_q(system, value) -> Q | None:
    """The patients a token `identifier` search matches; `system` None is a bare value, which matches the
    number in any system (and a SNILS or policy written with or without separators). None: nothing."""
    if system is None:
        if not isinstance(value, str) or not value or not _printable(value):
            return None
        match = Q(identifier=value)
        for field in ("snils", "oms_policy"):
            digits = national_digits(field, value)
            if digits:
                match |= Q(**{field: digits})
        return match
    key = identifier_key(system, value)
    return identifier_q_of_key(key) if key else None


def keys_of(patient: Patient) -> set[tuple]:
    keys = {("identifier", patient.identifier_system, patient.identifier)} if patient.identifier else set()
    return keys | {(field, getattr(patient, field)) for field in ("snils", "oms_policy") if getattr(patient, field)}


def patient_matching(*, clinic, identifiers) -> Patient | None:
    """The clinic's patient the first of `identifiers` ((system, value) pairs, in the caller's order) that
    matches any patient names: the EHR's own number, SNILS or the OMS policy. One query."""
    keys = [key for key in (identifier_key(system, value) for system, value in identifiers) if key]
    if not keys:
        return None
    match = reduce(operator.or_, (identifier_q_of_key(key) for key in keys))
    # Unordered in SQL (the model's default ordering made this query, run on every CDS call, ~40 % slower);
    # sorted here as that ordering would, so two patients sharing an identifier resolve as before.
    found = sorted(
        Patient.objects.filter(match, clinic=clinic).order_by()[:100],
        key=lambda patient: (patient.family_name, patient.given_name, patient.pk),
    )
    for key in keys:
        for patient in found:
            if key in keys_of(patient):
                return patient
    return None
