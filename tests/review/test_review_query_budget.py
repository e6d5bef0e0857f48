"""Each queue view runs a fixed number of SQL queries (≤ 10), whatever the size of the queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from matcher.models import Match
from review import services
from review.selectors import PAUSE_CACHE_KEY
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
BUDGET = 10


def _fill(pending: int) -> None:
    for i in range(pending):
        # Every pair with photos, evidence and an audit sample mixed in: the worst case per row.
        make_pair(
            images=i < 3,
            money_at_risk=1000 + i,
            audit_sample=(i % 7 == 0),
            status=Match.Status.MATCHED if i % 7 == 0 else Match.Status.PENDING,
        )


def _count(client, django_assert_max_num_queries, request: Callable[[], object]) -> int:
    with django_assert_max_num_queries(BUDGET):
        with CaptureQueriesContext(connection) as ctx:
            response = request()
    assert response.status_code == 200
    return len(ctx.captured_queries)


VIEWS = {
    "queue page": lambda c: c.get(reverse("review:queue")),
    "queue part (htmx)": lambda c: c.get(reverse("review:queue"), **HTMX),
    "next pair (J)": lambda c: c.get(reverse("review:queue"), {"after": "5000:1", "dir": "next"}, **HTMX),
    "list page": lambda c: c.get(reverse("review:list")),
    "list page filtered": lambda c: c.get(reverse("review:list"), {"mall": "무신사", "band": "0.80"}),
    "summary part": lambda c: c.get(reverse("review:summary"), **HTMX),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_queue_views_run_the_same_number_of_queries_with_5_and_50_pending_pairs(
    client, django_assert_max_num_queries, view
):
    counts = []
    for size, name in ((5, "small"), (50, "large")):
        Match.objects.all().delete()
        _fill(size)
        client.force_login(reviewer(f"budget-{name}"))
        cache.delete(PAUSE_CACHE_KEY)  # measure the uncached QC verdict: the worst case
        counts.append(_count(client, django_assert_max_num_queries, lambda: VIEWS[view](client)))

    assert counts[0] == counts[1], f"{view}: {counts[0]} queries with 5 pending, {counts[1]} with 50"


def test_deciding_and_moving_on_runs_the_same_number_of_queries_whatever_the_queue_size(
    client, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    counts = []
    for size, name in ((5, "small"), (50, "large")):
        Match.objects.all().delete()
        _fill(size)
        user = reviewer(f"decider-{name}")
        client.force_login(user)
        held = services.claim_pair(user=user)
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                reverse("review:decide", args=[held.pk]),
                {"action": "reject", "reason": "kids", "claim": held.claim_id},
                **HTMX,
            )
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))

    assert counts[0] == counts[1]
