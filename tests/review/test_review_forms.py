"""The threshold rule in one place, and the bulk POST validated by its form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import reverse

from matcher.services import thresholds_validate
from review import services
from review.forms import BulkDecisionForm, ThresholdsForm
from review.models import ReviewDecision
from tests.review.factories import reviewer


@pytest.mark.parametrize(
    ("auto", "review", "ok"),
    [
        ("0.9", "0.7", True),
        ("0.8", "0.8", True),
        ("1", "0.001", True),
        ("0.7", "0.8", False),  # review above auto
        ("1.01", "0.7", False),
        ("0.9", "0", False),
        ("0.9", "-0.1", False),
        ("abc", "0.7", False),
        ("NaN", "0.7", False),
        ("Infinity", "0.7", False),
    ],
)
def test_one_rule_for_thresholds_and_the_form_applies_it(auto, review, ok):
    form = ThresholdsForm({"auto": auto, "review": review})

    assert form.is_valid() is ok
    if ok:
        assert (form.cleaned_data["auto"], form.cleaned_data["review"]) == (Decimal(auto), Decimal(review))
        assert thresholds_validate(auto_threshold=auto, review_threshold=review)
    else:
        assert form.error  # one Korean sentence for the page
        with pytest.raises(ValidationError):
            thresholds_validate(auto_threshold=auto, review_threshold=review)


def _bulk(**data: object) -> BulkDecisionForm:
    query = QueryDict(mutable=True)
    for key, value in data.items():
        query.setlist(key, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    return BulkDecisionForm(query)


def test_the_bulk_form_needs_ids_an_action_and_a_reason_to_reject():
    assert _bulk(action="approve").error == "처리할 항목을 선택해 주세요."
    assert _bulk(ids=[1, 2], action="maybe").error == "승인 또는 제외를 골라 주세요."
    assert _bulk(ids=[1, 2], action="reject").error == "제외 사유를 골라 주세요."
    form = _bulk(ids=[1, "x", 2], action="reject", reason="vest", confirm="1")
    assert form.is_valid() and form.cleaned_data["ids"] == [1, 2] and form.cleaned_data["confirm"]


def test_the_bulk_form_refuses_more_than_the_bulk_limit_before_the_confirmation():
    form = _bulk(ids=list(range(1, services.BULK_MAX + 2)), action="approve")

    assert not form.is_valid() and form.error == f"한 번에 {services.BULK_MAX}건까지 처리할 수 있습니다."


@pytest.mark.django_db
def test_an_oversized_bulk_post_is_refused_on_the_confirmation_page(client):
    client.force_login(reviewer("merch"))

    page = client.post(
        reverse("review:bulk"), {"ids": list(range(1, services.BULK_MAX + 2)), "action": "approve"}
    )

    assert page.status_code == 400 and f"{services.BULK_MAX}건까지" in page.content.decode()
    assert not ReviewDecision.objects.exists()
