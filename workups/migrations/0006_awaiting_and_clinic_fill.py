"""Fill in the clinic of every result and workup item, and when each test still awaiting its result started to:
set-wise (a statement per column, whatever the number of rows), as workups.services.awaiting_refresh keeps them."""

from functools import reduce
from operator import or_

from django.db import migrations
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce


def fill_clinics(apps, schema_editor):
    Encounter = apps.get_model("clinic", "Encounter")
    Workup = apps.get_model("workups", "Workup")
    apps.get_model("workups", "Result").objects.update(
        clinic_id=Subquery(Encounter.objects.filter(pk=OuterRef("encounter_id")).values("clinic_id"))
    )
    apps.get_model("workups", "WorkupItem").objects.update(
        clinic_id=Subquery(Workup.objects.filter(pk=OuterRef("workup_id")).values("encounter__clinic_id"))
    )


def fill_awaiting(apps, schema_editor):
    # As workups.services.awaiting_refresh, on the models as of this migration and the knowledge base installed.
    from workups.engine import get_knowledge_base

    Workup = apps.get_model("workups", "Workup")
    WorkupItem = apps.get_model("workups", "WorkupItem")
    Result = apps.get_model("workups", "Result")
    answers: dict[str, set[str]] = {}
    for code, meta in get_knowledge_base().vocabulary.results.items():
        for item in meta["items"]:
            answers.setdefault(item, set()).add(code)
    if not answers:
        return
    started = OuterRef("workup__created_at")
    later = Workup.objects.filter(encounter=OuterRef("workup__encounter")).filter(
        Q(created_at__gt=started) | Q(created_at=started, pk__gt=OuterRef("workup_id"))
    )
    current = Result.objects.filter(encounter=OuterRef("workup__encounter"), superseded_at__isnull=True)
    unanswered = reduce(
        or_, (Q(code=item) & ~Exists(current.filter(code__in=sorted(codes))) for item, codes in answers.items())
    )
    awaiting = WorkupItem.objects.filter(unanswered, ~Exists(later), decision="accepted")
    created = Workup.objects.filter(pk=OuterRef("workup_id")).values("created_at")
    WorkupItem.objects.filter(pk__in=awaiting.values("pk")).update(
        awaiting_since=Coalesce("decided_at", Subquery(created))
    )


class Migration(migrations.Migration):

    dependencies = [
        ("workups", "0005_awaiting_and_clinic"),
    ]

    operations = [
        migrations.RunPython(fill_clinics, migrations.RunPython.noop),
        migrations.RunPython(fill_awaiting, migrations.RunPython.noop),
    ]
