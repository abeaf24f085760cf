"""The clinics filled in by 0006 are required from now on, and the open rows get their partial indexes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("workups", "0006_awaiting_and_clinic_fill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="result",
            name="clinic",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.clinic", verbose_name="clinic"
            ),
        ),
        migrations.AlterField(
            model_name="workupitem",
            name="clinic",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.clinic", verbose_name="clinic"
            ),
        ),
        migrations.AddIndex(
            model_name="result",
            index=models.Index(
                condition=models.Q(
                    ("acknowledged_at__isnull", True),
                    ("flag__in", ("low", "high", "positive", "present")),
                    ("superseded_at__isnull", True),
                ),
                fields=["clinic", "entered_at"],
                name="result_unacknowledged",
            ),
        ),
        migrations.AddIndex(
            model_name="workupitem",
            index=models.Index(
                condition=models.Q(("awaiting_since__isnull", False)),
                fields=["clinic", "awaiting_since"],
                include=["urgency"],
                name="workup_item_awaiting",
            ),
        ),
    ]
