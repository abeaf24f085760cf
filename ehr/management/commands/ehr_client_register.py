"""Register an EHR as a CDS Hooks client:

manage.py ehr_client_register --name NAME --issuer ISS (--jwks-url URL | --public-key FILE)
                              [--clinic NAME] [--client-id ID] [--jku URL ...] [--fhir-server URL ...]
"""

from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations
from django.core.validators import URLValidator

from clinic.models import Clinic
from ehr.models import EhrClient
from ehr.validators import validate_fhir_base


class Command(BaseCommand):
    help = "Register an EHR client for the CDS Hooks services (keys from a JWKS URL or a PEM public key)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--issuer", required=True, help="the JWT iss claim the EHR signs with")
        keys = parser.add_mutually_exclusive_group(required=True)
        keys.add_argument("--jwks-url", help="the EHR's JWKS URL (keys chosen by kid)")
        keys.add_argument("--public-key", help="a file holding the EHR's PEM public key")
        parser.add_argument("--clinic", help="the clinic's name (default: the only clinic)")
        parser.add_argument("--client-id", default="", help="optional: a token's sub, when present, must equal it")
        parser.add_argument("--jku", action="append", default=[], help="a JWKS URL a token may name in jku")
        parser.add_argument(
            "--fhir-server",
            action="append",
            default=[],
            help="an https FHIR server base the CDS services may read a call's chart from (repeatable)",
        )

    @no_translations  # its messages are in English, like the rest of the command's
    def handle(self, *args, name, issuer, jwks_url, public_key, clinic, client_id, jku, fhir_server, **options):
        clinic_obj = self._clinic(clinic)
        if EhrClient.objects.filter(issuer=issuer).exists():
            raise CommandError(f"An EHR client with issuer {issuer!r} is already registered.")
        for url in ([jwks_url] if jwks_url else []) + jku:
            try:
                URLValidator(schemes=["https", "http"])(url)
            except ValidationError:
                raise CommandError(f"Not a URL: {url!r}") from None
        for url in fhir_server:
            try:
                validate_fhir_base(url)
            except ValidationError as error:
                raise CommandError(f"--fhir-server: {' '.join(error.messages)}") from None
        pem = ""
        if public_key:
            try:
                pem = Path(public_key).read_text(encoding="utf-8")
                load_pem_public_key(pem.encode())
            except (OSError, ValueError, UnicodeDecodeError) as error:
                raise CommandError(f"{public_key}: not a readable PEM public key ({error})") from None
        client = EhrClient.objects.create(
            clinic=clinic_obj,
            name=name,
            issuer=issuer,
            client_id=client_id,
            public_key=pem,
            jwks_url=jwks_url or "",
            jku_allowlist=jku,
            fhir_servers=fhir_server,
            active=True,
        )
        self.stdout.write(f"Registered EHR client {client.name} ({client.issuer}) for {clinic_obj.name}.")

    def _clinic(self, name):
        if name:
            found = Clinic.objects.filter(name=name).first()
            if found is None:
                choices = ", ".join(Clinic.objects.order_by("name").values_list("name", flat=True)) or "none"
                raise CommandError(f"No clinic named {name!r}. Clinics: {choices}.")
            return found
        clinics = list(Clinic.objects.order_by("name")[:51])
        if len(clinics) == 1:
            return clinics[0]
        if not clinics:
            raise CommandError("There is no clinic yet: create one first.")
        raise CommandError(
            "Several clinics: choose one with --clinic. Clinics: " + ", ".join(clinic.name for clinic in clinics) + "."
        )
