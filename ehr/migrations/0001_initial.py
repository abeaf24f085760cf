import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """EhrClient moves here from the clinic app: the table stays, only Django's idea of its owner changes."""

    initial = True
    dependencies = [("clinic", "0008_due_days_and_holidays")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="EhrClient",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=200, verbose_name="name")),
                        ("issuer", models.CharField(help_text="The JWT `iss` claim the EHR signs with.", max_length=255,
                                                    unique=True, verbose_name="issuer")),
                        ("client_id", models.CharField(help_text="The JWT `sub` claim.", max_length=255,
                                                       verbose_name="client id")),
                        ("public_key", models.TextField(help_text="PEM public key (RSA or EC) that verifies the EHR's JWTs.",
                                                        verbose_name="public key")),
                        ("active", models.BooleanField(default=True, verbose_name="active")),
                        ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                        ("clinic", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="ehr_clients",
                                                     to="clinic.clinic", verbose_name="clinic")),
                    ],
                    options={"verbose_name": "EHR client", "verbose_name_plural": "EHR clients",
                             "db_table": "clinic_ehrclient"},
                ),
            ],
            database_operations=[],
        ),
    ]
