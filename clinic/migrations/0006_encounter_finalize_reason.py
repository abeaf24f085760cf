from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clinic", "0005_russian_record")]

    operations = [
        migrations.AddField(model_name="encounter", name="finalize_reason", field=models.TextField(blank=True)),
    ]
