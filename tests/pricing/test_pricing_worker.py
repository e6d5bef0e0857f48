"""End to end through a real Celery worker on the real Redis broker: a review decision → a price.

The review app sets Match.status and enqueues pricing.tasks.reprice_product_task on commit; the
arrange steps here do exactly that. The worker thread has its own database connection, so these
tests commit (transaction=True).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import pytest
from django.db import transaction
from django.urls import reverse

from matcher.models import Match, Product
from pricing.models import PriceAuditEntry, PriceChange, WebhookDelivery
from pricing.tasks import reprice_product_task
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll until the worker has done its part; the deadline only stops a broken test hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker did not {what}")


def price_of(product: Product) -> int:
    return Product.objects.values_list("price", flat=True).get(pk=product.pk)


def decide(match: Match, status: str, cause: str) -> None:
    """What the review app does: record the decision, then enqueue the reprice once it is committed."""
    with transaction.atomic():
        Match.objects.filter(pk=match.pk).update(status=status, decided_by_human=True)
        transaction.on_commit(lambda: reprice_product_task.delay(match.product_id, cause))


@pytest.mark.django_db(transaction=True)
def test_approval_rejection_and_rollback_move_the_price_through_the_worker_and_are_all_audited(
    client, settings, webhook_receiver, pricing_worker
):
    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    settings.PRICING_WEBHOOK_SECRET = "worker-secret"
    admin = pricing_admin()
    product = PricingProductFactory(sku="FLOW-1", price=100_000, cost=60_000)
    waiting = match_for(product, price=97_000, status=Match.Status.PENDING, mall="무신사")
    remaining = match_for(product, price=99_000, mall="29CM")

    # 1. A reviewer approves the pending pair: the worker prices just under it.
    decide(waiting, Match.Status.MATCHED, "review: approved")
    wait_for(lambda: price_of(product) == 96_900, "apply the approval's price")

    client.force_login(admin)
    page = client.get(reverse("pricing:sku_history", args=["FLOW-1"])).content.decode()
    chart = json.loads(page.split('id="pr-history-data" type="application/json">')[1].split("</script>")[0])
    assert chart["ours"][-1]["y"] == 96_900 and chart["changes"][-1]["y"] == 96_900
    assert "무신사" in page

    # 2. The reviewer later rejects that pair: the price is re-derived from the remaining match.
    decide(waiting, Match.Status.REJECTED, "review: rejected")
    wait_for(lambda: price_of(product) == 98_900, "re-price from the remaining match")

    # 3. The remaining listing's price drops; the matcher enqueues a reprice; an admin rolls it back.
    remaining.listing.price = 98_000
    remaining.listing.save()
    reprice_product_task.delay(product.pk, "match run")
    wait_for(lambda: price_of(product) == 97_900, "follow the remaining listing down")
    last = PriceChange.objects.filter(product=product).order_by("-created_at", "-id").first()
    response = client.post(reverse("pricing:change_rollback", args=[last.pk]))
    assert response.status_code == 302
    assert price_of(product) == 98_900

    entries = list(PriceAuditEntry.objects.filter(product=product).order_by("created_at", "id"))
    assert [(e.action, e.old_price, e.new_price) for e in entries] == [
        ("applied", 100_000, 96_900),
        ("applied", 96_900, 98_900),
        ("applied", 98_900, 97_900),
        ("rolled_back", 97_900, 98_900),
    ]
    assert entries[0].match_id == waiting.pk and entries[0].cause == "review: approved"
    assert entries[1].match_id == remaining.pk and entries[1].cause == "review: rejected"
    assert entries[3].user == admin and not entries[3].automatic
    assert all(e.automatic for e in entries[:3])

    # Every change reached the upload automation, signed.
    wait_for(lambda: WebhookDelivery.objects.filter(state="delivered").count() == 4, "deliver the webhooks")
    for headers, body in webhook_receiver.received:
        mac = hmac.new(b"worker-secret", headers["X-PriceMatch-Timestamp"].encode() + b"." + body, hashlib.sha256)
        assert headers["X-PriceMatch-Signature"] == "sha256=" + mac.hexdigest()
    assert sorted(json.loads(b)["new_price"] for _, b in webhook_receiver.received) == [
        96_900, 97_900, 98_900, 98_900
    ]


@pytest.mark.django_db(transaction=True)
def test_running_the_task_twice_with_nothing_changed_changes_the_price_once(pricing_worker):
    product = PricingProductFactory(price=100_000)
    match_for(product, price=97_000)

    reprice_product_task.delay(product.pk, "match run")
    reprice_product_task.delay(product.pk, "match run (duplicate message)")
    wait_for(lambda: PriceChange.objects.filter(product=product).exists(), "apply the price")
    reprice_product_task.delay(product.pk, "a third time")
    # The third message is processed after the first two (one solo worker, one queue); wait for
    # an unrelated marker task queued behind it to prove it ran.
    marker = PricingProductFactory(price=100_000)
    match_for(marker, price=97_000)
    reprice_product_task.delay(marker.pk, "marker")
    wait_for(lambda: price_of(marker) == 96_900, "process the messages queued before the marker")

    assert price_of(product) == 96_900
    assert PriceChange.objects.filter(product=product).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_reviewers_approval_moves_the_price_through_the_signal_and_worker_and_the_audit_names_them(
    pricing_worker,
):
    # The real producer: review's decision service commits, sends matches_changed, pricing's receiver
    # enqueues the reprice with the reviewer, the worker applies it.
    from review import services as review_services
    from tests.review.factories import reviewer

    product = PricingProductFactory(sku="WHO-1", price=100_000, cost=60_000)
    waiting = match_for(product, price=97_000, status=Match.Status.PENDING, mall="무신사")
    merchandiser = reviewer("who")
    held = review_services.claim_pair(user=merchandiser, match_id=waiting.pk)

    review_services.decision_record(user=merchandiser, match_id=waiting.pk, action="approve", claim_id=held.claim_id)

    wait_for(lambda: price_of(product) == 96_900, "apply the approval's price")
    entry = PriceAuditEntry.objects.get(product=product, action=PriceAuditEntry.Action.APPLIED)
    assert entry.user == merchandiser and entry.automatic  # applied by the rules, caused by this person
    assert entry.cause == f"review:approve:match={waiting.pk}"
    assert PriceChange.objects.get(product=product).proposal.requested_by == merchandiser
