from django.db import migrations, models


def snapshot_finalized(apps, schema_editor):
    """Encounters finalized before this change keep the patient as they are now (the best record there is)."""
    Encounter = apps.get_model("clinic", "Encounter")
    for encounter in Encounter.objects.filter(status="finalized").select_related("patient").iterator():
        born, day = encounter.patient.birth_date, encounter.visit_date
        encounter.patient_sex = encounter.patient.sex
        encounter.patient_age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        encounter.save(update_fields=["patient_sex", "patient_age"])


class Migration(migrations.Migration):
    dependencies = [("clinic", "0010_patient_version")]

    operations = [
        migrations.AddField(model_name="encounter", name="patient_sex",
                            field=models.CharField(blank=True, max_length=6, verbose_name="sex at the visit")),
        migrations.AddField(model_name="encounter", name="patient_age",
                            field=models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="age at the visit")),
        migrations.RunPython(snapshot_finalized, migrations.RunPython.noop),
    ]
