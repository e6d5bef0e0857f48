"""Threshold edits write the product's own audit row: each ThresholdSet version names who saved it and the
values before and after, whether saved from the calibration page or the Django admin, and the versions
cannot be changed or deleted (issue 29, item 6)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from matcher.models import ThresholdSet
from matcher.services import threshold_set_create, thresholds_active
from review.models import ThresholdChange
from tests.review.factories import reviewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):
    user = reviewer("boss", admin=True)
    client.force_login(user)
    return user


def test_a_threshold_edit_through_the_calibration_form_writes_one_version_naming_the_user(client, boss):
    before = thresholds_active()
    versions = ThresholdSet.objects.count()

    response = client.post("/review/calibration/thresholds/", {"auto": "0.85", "review": "0.7", "note": "완화"})
    assert response.status_code == 302

    assert ThresholdSet.objects.count() == versions + 1
    new = thresholds_active()
    assert (new.created_by, new.previous, new.note) == (boss, before, "완화")
    assert new.before == {"auto_threshold": "0.900", "review_threshold": "0.700", "policy": before.policy}
    assert new.after == {"auto_threshold": "0.850", "review_threshold": "0.700", "policy": before.policy}
    assert new.changes() == {"auto_threshold": ("0.900", "0.850")}
    assert ThresholdChange.objects.get().threshold_set == new  # the simulator's record, alongside


def test_a_refused_threshold_edit_writes_nothing(client, boss):
    thresholds_active()
    versions = ThresholdSet.objects.count()
    client.post("/review/calibration/thresholds/", {"auto": "NaN", "review": "0.7", "note": "x"})
    client.post("/review/calibration/thresholds/", {"auto": "0.6", "review": "0.7", "note": "x"})
    assert ThresholdSet.objects.count() == versions


def test_the_calibration_page_shows_who_changed_what(client, boss):
    client.post("/review/calibration/thresholds/", {"auto": "0.88", "review": "0.65", "note": "조정"})
    page = client.get("/review/calibration/").content.decode()
    assert "기준 변경 기록" in page
    assert "자동 매칭 기준: 0.900 → 0.880; 검토 기준: 0.700 → 0.650" in page
    assert "boss" in page and "조정" in page


def test_a_version_added_in_the_admin_names_the_admin_with_before_and_after(client):
    root = reviewer("root", admin=True)
    root.is_staff = root.is_superuser = True
    root.save()
    client.force_login(root)
    before = thresholds_active()

    response = client.post(
        "/admin/matcher/thresholdset/add/",
        {"auto_threshold": "0.95", "review_threshold": "0.75", "policy": "{}", "note": "관리 화면"},
    )
    assert response.status_code == 302

    new = thresholds_active()
    assert (new.created_by, new.previous, new.note) == (root, before, "관리 화면")
    assert new.changes() == {"auto_threshold": ("0.900", "0.950"), "review_threshold": ("0.700", "0.750")}
    changelist = client.get("/admin/matcher/thresholdset/").content.decode()
    assert "자동 매칭 기준: 0.900 → 0.950" in changelist


def test_the_admin_refuses_a_pair_out_of_order_and_offers_no_delete(client):
    root = reviewer("root", admin=True)
    root.is_staff = root.is_superuser = True
    root.save()
    client.force_login(root)
    current = thresholds_active()

    response = client.post(
        "/admin/matcher/thresholdset/add/",
        {"auto_threshold": "0.6", "review_threshold": "0.8", "policy": "{}", "note": ""},
    )
    assert response.status_code == 200 and "검토 기준 ≤ 자동 매칭 기준" in response.content.decode()
    assert thresholds_active() == current
    assert client.post(f"/admin/matcher/thresholdset/{current.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ThresholdSet.objects.filter(pk=current.pk).exists()


def test_threshold_versions_cannot_be_changed_or_deleted():
    version = thresholds_active()

    version.auto_threshold = Decimal("0.5")
    with pytest.raises(ValidationError):
        version.save()
    with pytest.raises(ValidationError):
        version.delete()
    with pytest.raises(ValidationError):
        ThresholdSet.objects.update(auto_threshold=Decimal("0.5"))
    with pytest.raises(ValidationError):
        ThresholdSet.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE matcher_thresholdset SET auto_threshold = 0.5 WHERE id = %s", [version.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM matcher_thresholdset WHERE id = %s", [version.pk])
    assert ThresholdSet.objects.get(pk=version.pk).auto_threshold == Decimal("0.900")


def test_deleting_the_user_who_saved_a_version_keeps_the_version():
    user = reviewer("leaver", admin=True)
    new = threshold_set_create(
        auto_threshold=Decimal("0.91"), review_threshold=Decimal("0.7"), policy={}, note="", user=user
    )
    user.delete()
    new.refresh_from_db()
    assert new.created_by is None and new.after["auto_threshold"] == "0.910"
