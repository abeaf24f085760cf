"""When a recommendation was first accepted (ordered), so that an order taken back is exported as revoked.
Rows accepted before this migration were ordered when they were decided."""

from django.db import migrations, models


def accepted_were_ordered(apps, schema_editor):
    for name in ("WorkupItem", "WorkupReferral"):
        model = apps.get_model("workups", name)
        model.objects.filter(decision="accepted", ordered_at__isnull=True).update(ordered_at=models.F("decided_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("workups", "0007_awaiting_and_clinic_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="workupitem",
            name="ordered_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="ordered at"),
        ),
        migrations.AddField(
            model_name="workupreferral",
            name="ordered_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="ordered at"),
        ),
        migrations.RunPython(accepted_were_ordered, migrations.RunPython.noop),
    ]
