from django.db import migrations


def create_settings_row(apps, schema_editor):
    ReviewSettings = apps.get_model("review", "ReviewSettings")
    if not ReviewSettings.objects.exists():
        ReviewSettings.objects.create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial"), ("matcher", "0003_import_products_llm_batches")]
    operations = [
        migrations.RunPython(create_settings_row, migrations.RunPython.noop),
        # The queue is pending pairs plus QC samples, in money-at-risk order: a partial index over exactly
        # that predicate keeps "next pair" an index walk with 100,000+ pending pairs. Kept in the review app
        # because only the queue reads it; the matcher's model does not need to know.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS review_queue_order ON matcher_match (money_at_risk DESC, id) "
            "WHERE (status = 'pending' OR audit_sample);",
            "DROP INDEX IF EXISTS review_queue_order;",
        ),
    ]
