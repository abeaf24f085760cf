"""Indexes for a clinic of a million patients (issue 14; measured by bench/scale.py, docs/benchmarks.md "Scale").

- patient_clinic_updated (clinic, -updated_at, -id): the unsearched patient list, most recently seen first, reads
  its first page off the index instead of sorting the clinic's patients (191 ms at 1.1 M patients).
- encounter_patient_recent (patient, clinic, -visit_date, -id) instead of (patient, -visit_date): a patient's
  encounters page by page, newest first in a stable order, read off the index; the count too, without the table.
- patient_clinic_name_key (clinic, name_search in byte order, id): the order of a search, and "starts with" as a
  range of it, which 1-2-letter search words use (clinic.selectors.patient_queryset). PostgreSQL: the column
  with the "C" collation (byte order whatever the database's locale; a LIKE 'prefix%' is a range only in it).
  SQLite, the embedded default, compares bytes already: the same columns plainly, which serve the order.

On a large table CREATE INDEX holds writes to it for its duration (about a minute for 1,000,000 patients on
two busy cores): run the migration when the clinic is closed.
"""

from django.db import migrations, models

NAME_KEY = {
    "postgresql": "CREATE INDEX IF NOT EXISTS patient_clinic_name_key"
    ' ON clinic_patient (clinic_id, name_search COLLATE "C", id)',
    "sqlite": "CREATE INDEX IF NOT EXISTS patient_clinic_name_key ON clinic_patient (clinic_id, name_search, id)",
}


def name_key_create(apps, schema_editor):
    statement = NAME_KEY.get(schema_editor.connection.vendor)
    if statement:
        schema_editor.execute(statement)


def name_key_drop(apps, schema_editor):
    if schema_editor.connection.vendor in NAME_KEY:
        schema_editor.execute("DROP INDEX IF EXISTS patient_clinic_name_key")


class Migration(migrations.Migration):
    dependencies = [("clinic", "0012_clinic_two_factor_required")]

    operations = [
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["clinic", "-updated_at", "-id"], name="patient_clinic_updated"),
        ),
        migrations.AddIndex(
            model_name="encounter",
            index=models.Index(fields=["patient", "clinic", "-visit_date", "-id"], name="encounter_patient_recent"),
        ),
        migrations.RemoveIndex(model_name="encounter", name="encounter_patient_date"),
        migrations.RunPython(name_key_create, name_key_drop),
    ]
