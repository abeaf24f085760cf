"""Work out again which accepted tests await their results, for every encounter.

    python manage.py refresh_awaited_tests

The app keeps this on each test (WorkupItem.awaiting_since) as decisions, workups and results change. Which
results answer which test is the knowledge base's vocabulary: after upgrading to a base that changes it, run
this once so that the worklist follows the new vocabulary. An encounter at a time (each in its own transaction,
under its lock, as the app's writes): safe to run while the app is in use, and more than once.
"""

from django.core.management.base import BaseCommand

from clinic.models import Encounter
from workups.models import WorkupItem
from workups.services import encounter_awaiting_refresh


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        encounters = Encounter.objects.filter(workups__items__isnull=False).distinct().order_by("pk")
        for encounter_id in encounters.values_list("pk", flat=True).iterator():
            encounter_awaiting_refresh(encounter_id=encounter_id)
        awaiting = WorkupItem.objects.filter(awaiting_since__isnull=False).count()
        self.stdout.write(f"{awaiting} accepted tests await their results.")
