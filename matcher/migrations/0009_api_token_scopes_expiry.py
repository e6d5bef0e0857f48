"""API tokens get scopes and an expiry. Tokens made before could do everything and never expired: they
keep both scopes, so the scraper and the price upload go on working, and expire a year from the upgrade."""
from datetime import timedelta

import django.contrib.postgres.fields
from django.db import migrations, models
from django.utils import timezone

import matcher.models

BOTH = ["ingest", "export"]


def existing_tokens_keep_both_scopes(apps, schema_editor) -> None:
    ApiToken = apps.get_model("matcher", "ApiToken")
    ApiToken.objects.update(scopes=BOTH, expires_at=timezone.now() + timedelta(days=365))


class Migration(migrations.Migration):
    dependencies = [("matcher", "0008_import_warnings")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(
                    choices=[
                        ("ingest", "수집: 경쟁 상품 올리기 (POST /matcher/api/listings)"),
                        ("export", "내보내기: 바뀐 가격 읽기 (GET /pricing/api/changes)"),
                    ],
                    max_length=10,
                ),
                default=list,
                help_text="이 토큰으로 할 수 있는 일 (scopes)",
                size=None,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                default=matcher.models.api_token_default_expiry,
                help_text="비워 두면 만료되지 않습니다 (never expires)",
            ),
        ),
        migrations.RunPython(existing_tokens_keep_both_scopes, migrations.RunPython.noop),
    ]
