"""Policy edits in the Django admin: each writes the product's own audit row (who, when, before and after)
through pricing.services, and the form refuses limits out of range, an auto-apply limit above the change
limits it inherits, NaN/Infinity, and keys the catalogue does not have (issue 29, items 6 and 7)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from pricing import rules, services
from pricing.models import PolicyAuditEntry, PricingPolicy
from tests.factories import UserFactory
from tests.pricing.factories import PricingProductFactory, policy_set

pytestmark = pytest.mark.django_db

CHANGE_URL = "/admin/pricing/pricingpolicy/{}/change/"
ADD_URL = "/admin/pricing/pricingpolicy/add/"


@pytest.fixture
def admin_user():
    return UserFactory(username="pricing-lead", is_staff=True, is_superuser=True, groups=["admin"])


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def form_data(policy: PricingPolicy | None = None, *, confirmed: bool = True, **changes: Any) -> dict[str, str]:
    """The admin form as a browser posts it: the policy's current values with `changes` applied.

    confirmed: posted from the preview page (saves); False is the first post, which shows the preview."""
    values: dict[str, Any] = {"scope": "global", "key": "", "active": True, "note": ""}
    values.update({name: None for name in rules.POLICY_FIELDS})
    if policy is not None:
        values.update({name: getattr(policy, name) for name in values})
    values.update(changes)
    data: dict[str, str] = {}
    for name, value in values.items():
        field = PricingPolicy._meta.get_field(name)
        if name == "active":
            if value:
                data[name] = "on"
        elif field.get_internal_type() == "BooleanField":  # null=True: a yes/no/unknown select
            data[name] = {None: "unknown", True: "true", False: "false"}[value]
        else:
            data[name] = "" if value is None else str(value)
    if confirmed:
        data["_confirm_preview"] = "1"
    return data


def errors_of(response) -> str:
    assert response.status_code == 200, "the form is shown again with its errors"
    return " ".join(str(e) for errors in response.context["adminform"].form.errors.values() for e in errors)


def test_editing_a_policy_in_the_admin_writes_one_audit_row_naming_the_user(admin_client, admin_user):
    policy = policy_set(max_change_percent=Decimal("10.00"), note="기본")
    response = admin_client.post(
        CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent="7.5", undercut_amount="300")
    )
    assert response.status_code == 302, errors_of(response)

    entry = PolicyAuditEntry.objects.get()
    assert (entry.action, entry.user, entry.policy, entry.scope, entry.key) == (
        PolicyAuditEntry.Action.UPDATED, admin_user, policy, "global", ""
    )
    assert entry.changes() == {"undercut_amount": (None, 300), "max_change_percent": ("10.00", "7.50")}
    assert entry.before["note"] == entry.after["note"] == "기본"
    policy.refresh_from_db()
    assert (policy.max_change_percent, policy.updated_by) == (Decimal("7.50"), admin_user)


def test_saving_the_form_unchanged_writes_no_audit_row(admin_client):
    policy = policy_set(max_change_percent=Decimal("10.00"))
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent="10"))
    assert response.status_code == 302, errors_of(response)
    assert not PolicyAuditEntry.objects.exists()


def test_creating_switching_off_and_deleting_a_policy_are_each_audited(admin_client, admin_user):
    PricingProductFactory(sku="SKU-1")
    response = admin_client.post(ADD_URL, form_data(scope="sku", key="SKU-1", min_margin_percent="15"))
    assert response.status_code == 302, errors_of(response)
    policy = PricingPolicy.objects.get(scope="sku")

    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, active=False))
    assert response.status_code == 302, errors_of(response)
    response = admin_client.post(f"/admin/pricing/pricingpolicy/{policy.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not PricingPolicy.objects.filter(pk=policy.pk).exists()

    created, switched_off, deleted = PolicyAuditEntry.objects.order_by("id")
    assert (created.action, created.before, created.after["min_margin_percent"]) == ("created", {}, "15.00")
    assert (switched_off.action, switched_off.changes()) == ("deactivated", {"active": (True, False)})
    assert (deleted.action, deleted.after, deleted.before["key"]) == ("deleted", {}, "SKU-1")
    # The deleted policy's rows stay readable: scope, key and values are kept, only the link is gone.
    assert {e.policy_id for e in (created, switched_off, deleted)} == {None}
    assert {e.user for e in (created, switched_off, deleted)} == {admin_user}
    assert all(e.key == "SKU-1" for e in (created, switched_off, deleted))


def test_the_admin_bulk_delete_action_is_audited_too(admin_client):
    PricingProductFactory(sku="SKU-2", brand="Acme")
    policy = policy_set("brand", "Acme", undercut_amount=500)
    response = admin_client.post(
        "/admin/pricing/pricingpolicy/", {"action": "delete_selected", "_selected_action": [policy.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not PricingPolicy.objects.filter(pk=policy.pk).exists()
    assert PolicyAuditEntry.objects.get().before["undercut_amount"] == 500


def test_the_policy_page_and_the_audit_changelist_show_the_history_in_korean(admin_client):
    policy = policy_set(max_change_percent=Decimal("10.00"))
    admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent="8"))

    page = admin_client.get(CHANGE_URL.format(policy.pk)).content.decode()
    assert "변경 기록" in page and "1회 변동 한도: 10.00 → 8.00" in page and "pricing-lead" in page
    changelist = admin_client.get("/admin/pricing/policyauditentry/").content.decode()
    assert "정책 수정" in changelist and "1회 변동 한도: 10.00 → 8.00" in changelist


def test_policy_audit_rows_cannot_be_changed_or_deleted(admin_client):
    policy = policy_set(max_change_percent=Decimal("10.00"))
    admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent="8"))
    entry = PolicyAuditEntry.objects.get()

    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()
    with pytest.raises(ValidationError):
        PolicyAuditEntry.objects.update(key="x")
    with pytest.raises(ValidationError):
        PolicyAuditEntry.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE pricing_policyauditentry SET after = '{}' WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM pricing_policyauditentry WHERE id = %s", [entry.pk])
    assert PolicyAuditEntry.objects.get().after["max_change_percent"] == "8.00"
    # The admin offers no way to edit or delete them either.
    assert admin_client.post(f"/admin/pricing/policyauditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403


# --- bounds (item 7) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auto_apply_max_change_percent", "500"),
        ("max_change_percent", "101"),
        ("max_daily_change_percent", "-1"),
        ("min_margin_percent", "900"),
    ],
)
def test_a_percentage_out_of_range_is_refused_with_a_korean_message(admin_client, field, value):
    policy = policy_set()
    errors = errors_of(admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, **{field: value})))
    assert "사이의 값이어야 합니다" in errors
    assert not PolicyAuditEntry.objects.exists()


@pytest.mark.parametrize(("value", "message"), [
    ("NaN", "숫자를 입력하세요."), ("Infinity", "숫자를 입력하세요."), ("-Infinity", "숫자를 입력하세요."),
    ("1e400", "전체 자릿수가 5 개를 넘지 않도록 해주세요."),
])
def test_nan_and_infinity_are_refused_with_a_korean_message(admin_client, value, message):
    # A guard: Django's DecimalField already refuses these in Korean; the service must not undo that.
    policy = policy_set()
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent=value))
    assert errors_of(response) == message
    policy.refresh_from_db()
    assert policy.max_change_percent is None


def test_an_auto_apply_limit_above_the_inherited_change_limit_is_refused(admin_client):
    PricingProductFactory(sku="SKU-3", category="아우터")
    policy_set(max_change_percent=Decimal("4.00"))  # global: each move at most 4 %
    policy = policy_set("category", "아우터", min_margin_percent=Decimal("12.00"))
    errors = errors_of(
        admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, auto_apply_max_change_percent="6"))
    )
    assert "자동 적용 최대 변동 6%(카테고리 아우터 정책)" in errors
    assert "1회 변동 한도 4%(전체 정책)" in errors and "변동 한도 이하여야 합니다" in errors
    assert not PolicyAuditEntry.objects.exists()


def test_lowering_a_change_limit_below_an_auto_apply_limit_set_elsewhere_is_refused(admin_client):
    PricingProductFactory(sku="SKU-4", brand="Acme")
    policy_set("sku", "SKU-4", auto_apply_max_change_percent=Decimal("8.00"))
    policy = policy_set()
    errors = errors_of(admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_change_percent="5")))
    assert "자동 적용 최대 변동 8%(SKU SKU-4 정책)" in errors and "(SKU SKU-4)" in errors


def test_the_default_auto_apply_limit_counts_against_a_lowered_change_limit(admin_client):
    policy = policy_set()  # auto-apply limit inherits the code default
    errors = errors_of(admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, max_daily_change_percent="3")))
    assert f"자동 적용 최대 변동 {rules.pct(rules.Policy().auto_apply_max_change_percent)}(기본값)" in errors


def test_an_auto_apply_limit_within_the_change_limits_is_saved(admin_client):
    policy = policy_set(max_change_percent=Decimal("8.00"))
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, auto_apply_max_change_percent="8"))
    assert response.status_code == 302, errors_of(response)


@pytest.mark.parametrize(
    ("scope", "key", "message"),
    [
        ("sku", "NO-SUCH-SKU", "카탈로그에 없는 SKU입니다 (unknown sku: NO-SUCH-SKU)."),
        ("brand", "Nobody", "카탈로그에 없는 브랜드입니다 (unknown brand: Nobody)."),
        ("category", "우주복", "카탈로그에 없는 카테고리입니다 (unknown category: 우주복)."),
    ],
)
def test_a_policy_for_a_key_the_catalogue_does_not_have_is_refused(admin_client, scope, key, message):
    PricingProductFactory(sku="SKU-5", brand="Acme", category="아우터")
    errors = errors_of(admin_client.post(ADD_URL, form_data(scope=scope, key=key, undercut_amount="200")))
    assert message in errors
    assert not PricingPolicy.objects.filter(scope=scope).exists()
    assert not PolicyAuditEntry.objects.exists()


def test_a_brand_spelled_in_another_case_is_refused_with_the_catalogue_spelling(admin_client):
    PricingProductFactory(sku="SKU-6", brand="Acme")
    errors = errors_of(admin_client.post(ADD_URL, form_data(scope="brand", key="ACME", undercut_amount="200")))
    assert "대소문자까지 같아야 합니다: 'Acme'" in errors


def test_a_policy_whose_sku_left_the_catalogue_can_still_be_switched_off(admin_client):
    product = PricingProductFactory(sku="SKU-7")
    policy = policy_set("sku", "SKU-7", undercut_amount=300)
    product.delete()
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, active=False))
    assert response.status_code == 302, errors_of(response)
    assert PolicyAuditEntry.objects.get().action == "deactivated"


def test_the_service_refuses_what_the_admin_form_refuses(admin_user):
    # Any other editor calls pricing.services.policy_save, which runs the same checks before writing.
    policy = policy_set()
    policy.auto_apply_max_change_percent = Decimal("50.00")
    with pytest.raises(ValidationError) as refused:
        services.policy_save(policy=policy, user=admin_user)
    assert "변동 한도 이하여야 합니다" in str(refused.value)
    with pytest.raises(ValidationError, match="카탈로그에 없는 SKU"):
        services.policy_save(policy=PricingPolicy(scope="sku", key="NOPE"), user=admin_user)
    assert not PolicyAuditEntry.objects.exists()
