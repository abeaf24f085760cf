from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workups", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="workup",
            name="translations",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
