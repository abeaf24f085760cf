"""Results and workup items keep their encounter's clinic, and an item keeps whether (and since when) it awaits its
result (filled in by 0006, required and indexed by 0007: PostgreSQL cannot index or alter a table in the transaction
that updated its rows under a deferred foreign key, so each step is a migration of its own)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0014_auditevent_endpoint"),
        ("workups", "0004_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="result",
            name="clinic",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="clinic.clinic",
                verbose_name="clinic",
            ),
        ),
        migrations.AddField(
            model_name="workupitem",
            name="clinic",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="clinic.clinic",
                verbose_name="clinic",
            ),
        ),
        migrations.AddField(
            model_name="workupitem",
            name="awaiting_since",
            field=models.DateTimeField(blank=True, null=True, verbose_name="awaiting its result since"),
        ),
    ]
