from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clinic.audit import Actor
from workups.demo import demo_consultations_ensure


class Command(BaseCommand):
    help = (
        "Give the demo GP's clinic three example patients, each with an encounter and its workup (urgent, emergency,"
        " watch and wait; the urgent one accepted, with two abnormal urine results back), when the clinic has no"
        " patient yet; a clinic in use is left alone. Run after seed_demo."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo", help="the demo GP's login (default: demo)")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).select_related("membership__clinic").first()
        membership = getattr(user, "membership", None) if user else None
        if membership is None:
            raise CommandError(f"No GP {username!r} with a clinic: run seed_demo first.")
        made = demo_consultations_ensure(actor=Actor(user=user, clinic=membership.clinic, channel="admin"))
        if made:
            self.stdout.write(f"example patients: {', '.join(patient.family_name for patient in made)}")
        else:
            self.stdout.write("example patients: none added (the clinic has patients already)")
