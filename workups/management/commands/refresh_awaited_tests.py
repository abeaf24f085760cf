"""Work out again which accepted tests await their results, for every encounter.

    python manage.py refresh_awaited_tests

The app keeps this on each test (WorkupItem.awaiting_since) as decisions, workups and results change. Which
results answer which test is the knowledge base's vocabulary: after upgrading to a base that changes it, run
this once so that the worklist follows the new vocabulary. Two set-wise statements, whatever the number of rows;
safe to run at any time and more than once.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from clinic.models import Encounter
from workups.models import WorkupItem
from workups.services import awaiting_refresh


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        with transaction.atomic():
            awaiting_refresh(encounters=Encounter.objects.all())
        awaiting = WorkupItem.objects.filter(awaiting_since__isnull=False).count()
        self.stdout.write(f"{awaiting} accepted tests await their results.")
