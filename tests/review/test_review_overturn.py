"""Overturning a decided pair from outside the queue (the SKU page): the same audit row and signal as a
queue decision, the QC flag and any lease cleared, and refusals that write nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from matcher.models import Match
from matcher.signals import matches_changed
from review import services
from review.models import Claim, ReviewDecision
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    """What matches_changed carried. Pricing's receiver still runs; its tasks run inline so no message is
    left on the shared broker for another suite's worker."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    calls: list[dict] = []

    def receive(**kwargs):  # noqa: ANN003, ANN202 - a signal receiver
        calls.append(kwargs)

    matches_changed.connect(receive, weak=False)
    yield calls
    matches_changed.disconnect(receive)
    app.conf.task_always_eager = previous


def test_an_audited_automatic_match_is_rejected_with_its_qc_flag_and_an_expired_lease_cleared(
    sent, django_capture_on_commit_callbacks
):
    kim, lee = reviewer("kim"), reviewer("lee")
    pair = make_pair(status=Match.Status.MATCHED, bucket=Match.Bucket.AUTO, audit_sample=True)
    now = timezone.now()
    stale = Claim.objects.create(match=pair, user=lee, claimed_at=now - timedelta(hours=1),
                                 expires_at=now - timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        decision = services.decision_overturn(user=kim, match_id=pair.pk, action="reject", reason="kids")

    pair.refresh_from_db()
    assert (pair.status, pair.decided_by_human, pair.audit_sample) == ("rejected", True, False)
    assert (decision.action, decision.reason, decision.audit_item, decision.claim_id) == ("reject", "kids", True, stale.pk)
    assert (decision.status_before, decision.status_after, decision.bulk) == ("matched", "rejected", False)
    assert Claim.objects.get(pk=stale.pk).release_reason == Claim.Release.DECIDED
    assert len(sent) == 1
    assert sent[0]["reprice_ids"] == [pair.product_id] and sent[0]["actor_id"] == kim.pk
    assert sent[0]["cause"] == f"review:reject:match={pair.pk}"


def test_a_rejection_is_approved_and_a_pending_pair_is_left_to_the_queue():
    kim = reviewer("kim")
    rejected = make_pair(status=Match.Status.REJECTED, bucket=Match.Bucket.REJECT)
    pending = make_pair()

    services.decision_overturn(user=kim, match_id=rejected.pk, action="approve")
    with pytest.raises(services.ReviewRefused, match="뒤집을 수 없습니다"):
        services.decision_overturn(user=kim, match_id=pending.pk, action="approve")

    assert Match.objects.get(pk=rejected.pk).status == Match.Status.MATCHED
    assert Match.objects.get(pk=pending.pk).status == Match.Status.PENDING
    assert ReviewDecision.objects.count() == 1


def test_a_second_overturn_of_the_same_pair_is_refused():
    kim = reviewer("kim")
    pair = make_pair(status=Match.Status.MATCHED, bucket=Match.Bucket.AUTO)
    services.decision_overturn(user=kim, match_id=pair.pk, action="reject", reason="other_model")

    # Now a reviewer's rejection: it can be approved, not rejected again.
    with pytest.raises(services.ReviewRefused):
        services.decision_overturn(user=kim, match_id=pair.pk, action="reject", reason="other_model")
    assert ReviewDecision.objects.count() == 1
