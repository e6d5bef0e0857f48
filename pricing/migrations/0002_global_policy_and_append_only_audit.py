from django.db import migrations

# The audit log is append-only at the database too, so neither a stray .update() nor a SQL
# console can rewrite history. The one update allowed: a referenced row's deletion nulling its
# foreign key (the entry keeps its SKU, prices and match snapshot).
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION pricing_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'pricing_priceauditentry is append-only: delete refused';
  END IF;
  IF (NEW.id, NEW.action, NEW.sku, NEW.old_price, NEW.new_price, NEW.reason, NEW.cause,
      NEW.match_snapshot, NEW.automatic, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.action, OLD.sku, OLD.old_price, OLD.new_price, OLD.reason, OLD.cause,
      OLD.match_snapshot, OLD.automatic, OLD.created_at)
  OR (NEW.product_id IS NOT NULL AND NEW.product_id IS DISTINCT FROM OLD.product_id)
  OR (NEW.proposal_id IS NOT NULL AND NEW.proposal_id IS DISTINCT FROM OLD.proposal_id)
  OR (NEW.change_id IS NOT NULL AND NEW.change_id IS DISTINCT FROM OLD.change_id)
  OR (NEW.run_id IS NOT NULL AND NEW.run_id IS DISTINCT FROM OLD.run_id)
  OR (NEW.match_id IS NOT NULL AND NEW.match_id IS DISTINCT FROM OLD.match_id)
  OR (NEW.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id) THEN
    RAISE EXCEPTION 'pricing_priceauditentry is append-only: update refused';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER pricing_audit_append_only
  BEFORE UPDATE OR DELETE ON pricing_priceauditentry
  FOR EACH ROW EXECUTE FUNCTION pricing_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS pricing_audit_append_only ON pricing_priceauditentry;
DROP FUNCTION IF EXISTS pricing_audit_append_only();
"""


def create_global_policy(apps, schema_editor):
    # Blank fields inherit the code defaults (pricing.rules.DEFAULTS); the row exists so admins
    # have one place to change them.
    PricingPolicy = apps.get_model("pricing", "PricingPolicy")
    PricingPolicy.objects.get_or_create(scope="global", key="", defaults={"note": "전체 기본 정책"})


class Migration(migrations.Migration):
    dependencies = [("pricing", "0001_initial")]
    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP),
        migrations.RunPython(create_global_policy, migrations.RunPython.noop),
    ]
