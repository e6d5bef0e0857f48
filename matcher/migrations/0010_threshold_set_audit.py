"""Threshold versions become the thresholds' audit log: each names the version it replaced and the
values before and after, and the table is append-only at the database too."""

import django.db.models.deletion
from django.db import migrations, models

AUDITED = ("auto_threshold", "review_threshold", "policy")


def backfill(apps, schema_editor):
    ThresholdSet = apps.get_model("matcher", "ThresholdSet")
    previous = None
    for row in ThresholdSet.objects.order_by("version"):
        row.after = {name: _json(getattr(row, name)) for name in AUDITED}
        row.before = previous.after if previous else {}
        row.previous = previous
        row.save(update_fields=["after", "before", "previous"])
        previous = row


def _json(value):
    return value if isinstance(value, dict) else str(value)


# The one update allowed: a user's deletion nulling created_by (the row keeps its values).
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION matcher_thresholdset_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'matcher_thresholdset is append-only: delete refused';
  END IF;
  IF (NEW.id, NEW.version, NEW.auto_threshold, NEW.review_threshold, NEW.policy, NEW.note, NEW.created_at,
      NEW.previous_id, NEW.before, NEW.after)
     IS DISTINCT FROM
     (OLD.id, OLD.version, OLD.auto_threshold, OLD.review_threshold, OLD.policy, OLD.note, OLD.created_at,
      OLD.previous_id, OLD.before, OLD.after)
  OR (NEW.created_by_id IS NOT NULL AND NEW.created_by_id IS DISTINCT FROM OLD.created_by_id) THEN
    RAISE EXCEPTION 'matcher_thresholdset is append-only: update refused';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER matcher_thresholdset_append_only
  BEFORE UPDATE OR DELETE ON matcher_thresholdset
  FOR EACH ROW EXECUTE FUNCTION matcher_thresholdset_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS matcher_thresholdset_append_only ON matcher_thresholdset;
DROP FUNCTION IF EXISTS matcher_thresholdset_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('matcher', '0009_api_token_scopes_expiry'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='thresholdset',
            options={'ordering': ['-version'], 'verbose_name': '매칭 기준 버전 threshold version', 'verbose_name_plural': '매칭 기준 버전 threshold versions'},
        ),
        migrations.AddField(
            model_name='thresholdset',
            name='after',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='thresholdset',
            name='before',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='thresholdset',
            name='previous',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='matcher.thresholdset'),
        ),
        migrations.AlterField(
            model_name='thresholdset',
            name='note',
            field=models.CharField(blank=True, default='', max_length=300, verbose_name='변경 사유'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
