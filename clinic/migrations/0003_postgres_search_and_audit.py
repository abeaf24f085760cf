"""PostgreSQL only: a trigram index for the patient name search, and an append-only audit table.

On SQLite (the embedded default) both are skipped: the search still works (name_search is
case-folded), it is just not index-backed, and the audit table is append-only by convention.
"""
from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    # One index for "this clinic's patients whose name contains ...": the clinic and the trigrams together.
    "CREATE INDEX IF NOT EXISTS patient_name_search_trgm ON clinic_patient USING gin (clinic_id, name_search gin_trgm_ops)",
    """
    CREATE OR REPLACE FUNCTION clinic_auditevent_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'the audit trail is append-only';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER clinic_auditevent_append_only
    BEFORE UPDATE OR DELETE ON clinic_auditevent
    FOR EACH ROW EXECUTE FUNCTION clinic_auditevent_append_only()
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS clinic_auditevent_append_only ON clinic_auditevent",
    "DROP FUNCTION IF EXISTS clinic_auditevent_append_only()",
    "DROP INDEX IF EXISTS patient_name_search_trgm",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0002_records")]
    operations = [migrations.RunPython(forward, backward)]
