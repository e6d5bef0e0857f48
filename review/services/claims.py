"""Claims: a reviewer leases one pair at a time, so two reviewers never decide the same pair."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from matcher.models import Match
from review import selectors
from review.models import Claim
from review.queue import Cursor, Direction, QueueFilters

log = logging.getLogger(__name__)


def claim_lease() -> timedelta:
    """How long a claim holds its pair without a heartbeat."""
    return timedelta(seconds=settings.REVIEW_CLAIM_SECONDS)


def claim_attach(match: Match, *, claim_id: int, expires_at: datetime) -> None:
    """Put the reviewer's lease on a pair row the way selectors.my_open_claim annotates it, for the pair
    page (``claim_id``, ``claim_expires_at``)."""
    # Plain attributes set on the row, not queryset annotations, so the model's stubs cannot know them.
    match.claim_id = claim_id  # type: ignore[attr-defined]
    match.claim_expires_at = expires_at  # type: ignore[attr-defined]


def claim_pair(
    *,
    user,
    filters: QueueFilters | None = None,
    cursor: Cursor | None = None,
    direction: Direction = "next",
    match_id: int | None = None,
    exclude_skipped: bool | None = None,
) -> Match | None:
    """Lease one pair to this reviewer and return it (from selectors.pair_queryset, with claim_id and
    claim_expires_at set), or None when nothing is available.

    Without cursor or match_id: the pair the reviewer already holds (if it still fits the filters), else the
    first free pair in queue order they have not skipped lately. With a cursor: the next/previous free pair
    in queue order (J/K). With match_id: that pair, if nobody else holds it. Any other pair the reviewer
    held is released ("navigated"): a reviewer holds one pair at a time. Pairs the reviewer skipped lately
    are left out unless they navigate explicitly (exclude_skipped defaults to "no cursor and no match_id";
    auto-advance after a decision passes True with a cursor).

    Two reviewers never get the same pair: candidates are locked with SKIP LOCKED and pairs with another
    reviewer's unexpired claim are excluded; the partial unique index on open claims catches the remaining
    race (a claim committed between our snapshot and our lock), after which we simply try again.
    """
    filters = filters or QueueFilters()
    navigating = cursor is not None or match_id is not None
    held_elsewhere = False
    if not navigating:
        mine = selectors.my_open_claim(user=user, filters=filters)
        if mine is not None:
            if mine.fits:
                expires = timezone.now() + claim_lease()
                Claim.objects.filter(pk=mine.claim_id, released_at__isnull=True).update(expires_at=expires)
                mine.claim_expires_at = expires
                return mine
            held_elsewhere = True
    for attempt in range(3):
        try:
            return _claim_candidate(
                user=user,
                filters=filters,
                cursor=cursor,
                direction=direction,
                match_id=match_id,
                release_mine=navigating or held_elsewhere or attempt > 0,
                exclude_skipped=(not navigating) if exclude_skipped is None else exclude_skipped,
            )
        except IntegrityError:
            log.info("claim race on attempt %s for user %s; retrying", attempt, user.pk)
    return None


@transaction.atomic
def _claim_candidate(
    *,
    user,
    filters: QueueFilters,
    cursor: Cursor | None,
    direction: Direction,
    match_id: int | None,
    release_mine: bool,
    exclude_skipped: bool,
) -> Match | None:
    now = timezone.now()
    qs = selectors.queue_candidates(
        user=user, filters=filters, cursor=cursor, direction=direction, exclude_skipped=exclude_skipped
    )
    if match_id is not None:
        qs = qs.filter(pk=match_id)
    candidate = qs.select_for_update(skip_locked=True, of=("self",)).first()
    if candidate is not None and candidate.open_claim_id and candidate.open_claim_user_id == user.pk:
        # Navigating to the pair we already hold: keep the lease, extend it.
        expires = now + claim_lease()
        Claim.objects.filter(pk=candidate.open_claim_id).update(expires_at=expires)
        claim_attach(candidate, claim_id=candidate.open_claim_id, expires_at=expires)
        return candidate
    if release_mine:
        Claim.objects.filter(user=user, released_at__isnull=True).update(
            released_at=now, release_reason=Claim.Release.NAVIGATED
        )
    if candidate is None:
        return None
    if candidate.open_claim_id:
        # Another reviewer's lease ran out (an open tab closed): free it before taking the pair.
        Claim.objects.filter(pk=candidate.open_claim_id, released_at__isnull=True).update(
            released_at=now, release_reason=Claim.Release.EXPIRED
        )
    claim = Claim.objects.create(match=candidate, user=user, claimed_at=now, expires_at=now + claim_lease())
    claim_attach(candidate, claim_id=claim.pk, expires_at=claim.expires_at)
    return candidate


def claim_renew(*, user, claim_id: int) -> bool:
    """Extend an open lease of this reviewer (heartbeat of an open tab); False if it is gone."""
    updated = Claim.objects.filter(pk=claim_id, user=user, released_at__isnull=True).update(
        expires_at=timezone.now() + claim_lease()
    )
    return updated == 1


def claim_release(*, user, reason: str = Claim.Release.NAVIGATED, claim_id: int | None = None) -> int:
    """Release this reviewer's open lease (one claim, or all of theirs)."""
    qs = Claim.objects.filter(user=user, released_at__isnull=True)
    if claim_id is not None:
        qs = qs.filter(pk=claim_id)
    return qs.update(released_at=timezone.now(), release_reason=reason)
