from decimal import Decimal

from django.db import migrations


def create_groups_and_thresholds(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("merchandiser", "admin"):
        Group.objects.get_or_create(name=name)
    ThresholdSet = apps.get_model("matcher", "ThresholdSet")
    if not ThresholdSet.objects.exists():
        ThresholdSet.objects.create(
            version=1, auto_threshold=Decimal("0.9"), review_threshold=Decimal("0.7"), policy={}, note="defaults"
        )


class Migration(migrations.Migration):
    dependencies = [("matcher", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_groups_and_thresholds, migrations.RunPython.noop)]
