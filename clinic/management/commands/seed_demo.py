import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic.services import DEMO_CLINIC_NAME, demo_clinician_ensure


class Command(BaseCommand):
    help = "Create the demo clinic and its GP (idempotent). Password: $DEMO_PASSWORD, or a random one printed here."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", default=DEMO_CLINIC_NAME, help=f"clinic name (default: {DEMO_CLINIC_NAME})")
        parser.add_argument("--username", default="demo", help="GP login (default: demo)")

    def handle(self, *args, clinic, username, **options):
        try:
            clinic_obj, user, password, token = demo_clinician_ensure(
                clinic_name=clinic, username=username, password=os.environ.get("DEMO_PASSWORD") or None
            )
        except ValidationError as error:
            raise CommandError(f"DEMO_PASSWORD is not acceptable: {' '.join(error.messages)}") from None
        self.stdout.write(f"clinic:   {clinic_obj.name}")
        self.stdout.write(f"login:    {user.username}")
        self.stdout.write(f"password: {password}")
        self.stdout.write(f"api token: {token}")
