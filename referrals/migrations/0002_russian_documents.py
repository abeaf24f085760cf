import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0005_russian_record"),
        ("referrals", "0001_initial"),
        ("workups", "0002_workup_translations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="referral", name="language",
            field=models.CharField(choices=[("ru", "Русский"), ("en", "English")], default="ru", max_length=2),
        ),
        migrations.AddField(model_name="referral", name="icd10", field=models.CharField(blank=True, max_length=8)),
        migrations.AddField(model_name="referral", name="diagnosis", field=models.CharField(blank=True, max_length=300)),
        migrations.AddField(
            model_name="requisition", name="language",
            field=models.CharField(choices=[("ru", "Русский"), ("en", "English")], default="ru", max_length=2),
        ),
        migrations.CreateModel(
            name="Leaflet",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("pdf_status", models.CharField(choices=[("pending", "Pending"), ("rendering", "Rendering"), ("ready", "Ready"), ("failed", "Failed")], default="pending", max_length=10)),
                ("pdf_error", models.TextField(blank=True)),
                ("pdf_file", models.FileField(blank=True, upload_to="documents/%Y/%m/")),
                ("pdf_generation", models.PositiveIntegerField(default=1)),
                ("pdf_enqueued_at", models.DateTimeField(blank=True, null=True)),
                ("pdf_claimed_by", models.CharField(blank=True, max_length=200)),
                ("pdf_claimed_at", models.DateTimeField(blank=True, null=True)),
                ("pdf_rendered_at", models.DateTimeField(blank=True, null=True)),
                ("pdf_renders", models.PositiveIntegerField(default=0, help_text="Completed renders, for the record.")),
                ("language", models.CharField(choices=[("ru", "Русский"), ("en", "English")], default="ru", max_length=2)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("clinic", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="leaflets", to="clinic.clinic")),
                ("created_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("encounter", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="leaflets", to="clinic.encounter")),
                ("workup", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="leaflets", to="workups.workup")),
            ],
            options={"ordering": ["-created_at", "-id"],
                     "indexes": [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="leaflet_pdf_sweep")]},
        ),
    ]
