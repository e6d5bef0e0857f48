"""Quality control (audit samples, Wilson estimate, pricing pause), calibration, simulator, stats."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from matcher.models import Match, ThresholdSet
from review import selectors, services
from review.models import AuditSampleDraw, ReviewDecision, ReviewSettings, ThresholdChange
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db


def _decide(user, match: Match, action: str, reason: str = "other") -> ReviewDecision:
    held = services.claim_pair(user=user, match_id=match.pk)
    assert held is not None and held.pk == match.pk
    return services.decision_record(
        user=user,
        match_id=match.pk,
        action=action,
        claim_id=held.claim_id,
        reason=reason if action == "reject" else "",
    )


def _audited(n_approve: int, n_reject: int, user) -> None:
    for i in range(n_approve + n_reject):
        m = make_pair(
            bucket=Match.Bucket.AUTO,
            status=Match.Status.MATCHED,
            audit_sample=True,
            confidence=Decimal("0.9500"),
        )
        _decide(user, m, "approve" if i < n_approve else "reject")


def _settings(**values) -> ReviewSettings:
    row = selectors.review_settings()
    for k, v in values.items():
        setattr(row, k, v)
    row.save()
    return row


def test_wilson_interval_matches_the_textbook_values():
    low, high = selectors.wilson_interval(95, 100, 1.959963984540054)
    assert round(low, 4) == 0.8882 and round(high, 4) == 0.9785
    assert selectors.wilson_interval(0, 0, 1.96) == (0.0, 1.0)
    assert selectors.audits_needed(0.99, 1.959963984540054) == 381


def test_the_precision_estimate_counts_only_audits_of_auto_matches_and_ignores_undone_ones():
    user = reviewer("qc")
    _audited(8, 2, user)
    rejected_audit = make_pair(
        bucket=Match.Bucket.REJECT,
        status=Match.Status.REJECTED,
        audit_sample=True,
        confidence=Decimal("0.2000"),
    )
    _decide(user, rejected_audit, "approve")  # the pipeline threw away a real match
    services.decision_undo(user=user)  # ...then the reviewer changed their mind: it no longer counts

    qc = selectors.qc_estimate()

    assert (qc.n, qc.approved, qc.precision) == (10, 8, 0.8)
    assert (qc.reject_n, qc.reject_missed) == (0, 0)
    low, high = selectors.wilson_interval(8, 10, selectors.z_value(Decimal("0.95")))
    assert (qc.low, qc.high) == (low, high)
    assert qc.pending_audit == 1  # the undone audit item is back in the queue


def test_pricing_pauses_when_the_lower_bound_is_below_target_with_enough_audits():
    user = reviewer("qc")
    _settings(min_audit_sample=20, precision_target=Decimal("0.90"))
    _audited(18, 2, user)  # 90% observed: the lower bound is well below 0.90

    assert selectors.auto_pricing_paused() is True


def test_pricing_does_not_pause_on_too_few_audits():
    user = reviewer("qc")
    _settings(min_audit_sample=20, precision_target=Decimal("0.90"))
    _audited(5, 5, user)

    assert selectors.qc_estimate().n == 10
    assert selectors.auto_pricing_paused() is False


def test_pricing_runs_when_the_lower_bound_clears_the_target():
    user = reviewer("qc")
    _settings(min_audit_sample=20, precision_target=Decimal("0.80"))
    _audited(40, 0, user)  # Wilson lower bound of 40/40 at 95% ≈ 0.912

    assert selectors.auto_pricing_paused() is False


def test_a_rejected_audit_item_clears_the_cached_pause_verdict(
    django_capture_on_commit_callbacks, broker_messages
):
    user = reviewer("qc")
    _settings(min_audit_sample=2, precision_target=Decimal("0.5"))
    _audited(1, 0, user)
    assert selectors.auto_pricing_paused() is False  # 1 audit < 2: cached as "not paused"
    m = make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED, audit_sample=True)

    with django_capture_on_commit_callbacks(execute=True):
        _decide(user, m, "reject")

    assert selectors.auto_pricing_paused() is True  # 1/2 approved: lower bound ≈ 0.09 < 0.5
    broker_messages("pricing.tasks.reprice_product_task")
    broker_messages("pricing.tasks.money_at_risk_refresh_task")


def test_audit_sampling_marks_the_share_of_new_automatic_decisions_and_leaves_status_alone():
    _settings(audit_share=Decimal("1"), audit_max_per_draw=500)
    auto = [make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED) for _ in range(3)]
    rejects = [make_pair(bucket=Match.Bucket.REJECT, status=Match.Status.REJECTED) for _ in range(2)]
    human = make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED, decided_by_human=True)
    pending = make_pair()

    draw = services.audit_sample_draw()

    assert (draw.candidates, draw.sampled_auto, draw.sampled_reject) == (5, 3, 2)
    sampled = set(Match.objects.filter(audit_sample=True).values_list("pk", flat=True))
    assert sampled == {m.pk for m in auto + rejects}
    assert human.pk not in sampled and pending.pk not in sampled
    assert Match.objects.filter(pk__in=[m.pk for m in auto], status=Match.Status.MATCHED).count() == 3
    # The next draw only looks at decisions made after this one.
    assert services.audit_sample_draw().candidates == 0


def test_audit_sampling_with_a_zero_share_samples_nothing_and_caps_apply():
    _settings(audit_share=Decimal("0"))
    make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED)
    assert services.audit_sample_draw().sampled_auto == 0

    _settings(audit_share=Decimal("1"), audit_max_per_draw=2)
    AuditSampleDraw.objects.update(until=timezone.now() - timedelta(minutes=1))
    for _ in range(5):
        make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED)
    later = services.audit_sample_draw()
    assert later.sampled_auto == 2


def test_calibration_reports_the_approval_rate_per_confidence_band():
    user = reviewer("cal")
    for conf, action in [
        ("0.7200", "approve"),
        ("0.7300", "reject"),
        ("0.7400", "reject"),
        ("0.8600", "approve"),
        ("0.8800", "approve"),
    ]:
        _decide(user, make_pair(confidence=Decimal(conf)), action)
    make_pair(confidence=Decimal("0.7100"))  # undecided: counted as a pair, not as a decision

    bands = {str(b.low): b for b in selectors.calibration_bands()}

    assert (bands["0.70"].approved, bands["0.70"].rejected) == (1, 2)
    assert bands["0.70"].approval_rate == pytest.approx(1 / 3)
    assert bands["0.85"].approval_rate == 1.0
    assert bands["0.70"].pairs == 1  # only pairs no person decided


def test_the_simulator_counts_moves_and_estimates_precision_from_reviewer_decisions():
    user = reviewer("sim")
    # Reviewers approved 3 of 4 in the 0.85 band.
    for action in ("approve", "approve", "approve", "reject"):
        _decide(user, make_pair(confidence=Decimal("0.8700")), action)
    # Automatic pairs to simulate over.
    make_pair(confidence=Decimal("0.8600"), bucket=Match.Bucket.REVIEW)
    make_pair(confidence=Decimal("0.8800"), bucket=Match.Bucket.REVIEW)
    make_pair(
        confidence=Decimal("0.8900"), bucket=Match.Bucket.REVIEW, reasons=["blocks auto: title conflict"]
    )
    make_pair(confidence=Decimal("0.9500"), bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED)
    make_pair(confidence=Decimal("0.7200"), bucket=Match.Bucket.REVIEW)

    sim = selectors.threshold_simulation(auto_threshold=Decimal("0.85"), review_threshold=Decimal("0.75"))

    assert sim.moves["review"]["auto"] == 2  # 0.86 and 0.88; the blocked 0.89 stays in review
    assert sim.moves["review"]["review"] == 1
    assert sim.moves["review"]["reject"] == 1  # 0.72 drops below the new review threshold
    assert sim.moves["auto"]["auto"] == 1
    assert sim.moved == 3
    # New auto: two pairs in band 0.85 (rate 0.75), one in 0.95 (no reviewer data → not covered).
    assert sim.precision == pytest.approx(0.75)
    assert sim.covered == pytest.approx(2 / 3)


def test_saving_thresholds_creates_a_version_and_an_audit_row_with_the_simulation():
    admin = reviewer("boss", admin=True)
    before = ThresholdSet.objects.order_by("-version").first()

    change = services.thresholds_save(
        user=admin, auto_threshold="0.92", review_threshold="0.72", note="보수적으로"
    )

    new = ThresholdSet.objects.order_by("-version").first()
    assert new.version == (before.version if before else 0) + 1
    assert (new.auto_threshold, new.review_threshold) == (Decimal("0.920"), Decimal("0.720"))
    assert ThresholdChange.objects.get() == change
    assert change.previous == before and change.user == admin and change.note == "보수적으로"
    assert change.simulation["auto_threshold"] == "0.92"


def test_saving_thresholds_refuses_a_review_threshold_above_auto():
    with pytest.raises(services.ReviewRefused):
        services.thresholds_save(
            user=reviewer("boss", admin=True), auto_threshold="0.7", review_threshold="0.8"
        )
    assert not ThresholdChange.objects.exists()


def test_reviewer_stats_count_decisions_per_active_hour_and_audit_agreement():
    user = reviewer("fast")
    start = timezone.now() - timedelta(hours=1)
    pairs = [make_pair(confidence=Decimal("0.8")) for _ in range(4)]
    audit = make_pair(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED, audit_sample=True)
    for m in pairs[:3]:
        _decide(user, m, "approve")
    _decide(user, audit, "approve")  # agrees with the automatic match
    # Decisions 30 s apart, then a 2-hour break before the last one.
    rows = list(ReviewDecision.objects.filter(user=user).order_by("id"))
    for i, row in enumerate(rows):
        ReviewDecision.objects.filter(pk=row.pk).update(created_at=start + timedelta(seconds=30 * i))
    _decide(user, pairs[3], "reject")
    ReviewDecision.objects.filter(match=pairs[3]).update(created_at=start + timedelta(hours=2))

    [stats] = selectors.reviewer_stats(days=1)

    assert (stats.decisions, stats.approvals, stats.audits, stats.audit_agreements) == (5, 4, 1, 1)
    assert stats.active_seconds == 90  # the break does not count
    assert stats.per_hour == pytest.approx(5 / (90 / 3600))
    assert stats.agreement == 1.0
