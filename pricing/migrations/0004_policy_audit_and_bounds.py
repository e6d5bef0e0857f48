from decimal import Decimal

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The policy audit is append-only at the database too (as the price audit, 0002). The one update
# allowed: the policy's or the user's deletion nulling its foreign key (scope, key and values stay).
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION pricing_policyaudit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'pricing_policyauditentry is append-only: delete refused';
  END IF;
  IF (NEW.id, NEW.action, NEW.scope, NEW.key, NEW.before, NEW.after, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.action, OLD.scope, OLD.key, OLD.before, OLD.after, OLD.created_at)
  OR (NEW.policy_id IS NOT NULL AND NEW.policy_id IS DISTINCT FROM OLD.policy_id)
  OR (NEW.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id) THEN
    RAISE EXCEPTION 'pricing_policyauditentry is append-only: update refused';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER pricing_policyaudit_append_only
  BEFORE UPDATE OR DELETE ON pricing_policyauditentry
  FOR EACH ROW EXECUTE FUNCTION pricing_policyaudit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS pricing_policyaudit_append_only ON pricing_policyauditentry;
DROP FUNCTION IF EXISTS pricing_policyaudit_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('pricing', '0003_price_change_import'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='pricingpolicy',
            name='auto_apply_max_change_percent',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).'), django.core.validators.MaxValueValidator(Decimal('100'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).')], verbose_name='자동 적용 최대 변동 (%)'),
        ),
        migrations.AlterField(
            model_name='pricingpolicy',
            name='max_change_percent',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).'), django.core.validators.MaxValueValidator(Decimal('100'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).')], verbose_name='1회 최대 변동 (%)'),
        ),
        migrations.AlterField(
            model_name='pricingpolicy',
            name='max_daily_change_percent',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).'), django.core.validators.MaxValueValidator(Decimal('100'), '0에서 100 사이의 값이어야 합니다 (percent 0–100).')], verbose_name='24시간 최대 변동 (%)'),
        ),
        migrations.AlterField(
            model_name='pricingpolicy',
            name='min_margin_percent',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'), '0에서 500 사이의 값이어야 합니다 (percent 0–500).'), django.core.validators.MaxValueValidator(Decimal('500'), '0에서 500 사이의 값이어야 합니다 (percent 0–500).')], verbose_name='최소 마진 (%)'),
        ),
        migrations.AlterField(
            model_name='pricingpolicy',
            name='raise_ceiling_markup_percent',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'), '0에서 500 사이의 값이어야 합니다 (percent 0–500).'), django.core.validators.MaxValueValidator(Decimal('500'), '0에서 500 사이의 값이어야 합니다 (percent 0–500).')], verbose_name='인상 상한 = 원가 × (1 + %)'),
        ),
        migrations.CreateModel(
            name='PolicyAuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('created', '정책 생성'), ('updated', '정책 수정'), ('deactivated', '정책 사용 중지'), ('activated', '정책 다시 사용'), ('deleted', '정책 삭제')], max_length=12, verbose_name='작업')),
                ('scope', models.CharField(choices=[('global', '전체 global'), ('category', '카테고리 category'), ('brand', '브랜드 brand'), ('sku', 'SKU')], max_length=10, verbose_name='범위')),
                ('key', models.CharField(blank=True, default='', max_length=120, verbose_name='키')),
                ('before', models.JSONField(blank=True, default=dict, verbose_name='이전 값')),
                ('after', models.JSONField(blank=True, default=dict, verbose_name='이후 값')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='언제')),
                ('policy', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_entries', to='pricing.pricingpolicy')),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='누가')),
            ],
            options={
                'verbose_name': '정책 변경 기록 policy audit entry',
                'verbose_name_plural': '정책 변경 기록 policy audit log',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
