"""Claims under real concurrency: reviewers claiming at the same instant on separate connections."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from review import services
from review.models import Claim
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewers_claiming_at_the_same_instant_never_share_a_pair():
    users = [reviewer(f"r{i}") for i in range(8)]
    pairs = [make_pair(money_at_risk=1000 - i) for i in range(12)]
    start = threading.Barrier(len(users))
    got: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def claim(user) -> None:
        try:
            start.wait()
            match = services.claim_pair(user=user)
            got[user.username] = match.pk if match else None
        except BaseException as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    claimed = list(got.values())
    assert None not in claimed and len(claimed) == len(users)
    assert len(set(claimed)) == len(users)  # nobody shares a pair
    assert set(claimed) <= {p.pk for p in pairs}
    open_claims = Claim.objects.filter(released_at__isnull=True)
    assert open_claims.count() == len(users)
    assert {c.match_id for c in open_claims} == set(claimed)
