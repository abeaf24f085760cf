from django.db import migrations


class Migration(migrations.Migration):
    """EhrClient now belongs to the ehr app (same table): only the state forgets it here."""

    dependencies = [("clinic", "0008_due_days_and_holidays"), ("ehr", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="EhrClient")],
                                            database_operations=[]),
    ]
