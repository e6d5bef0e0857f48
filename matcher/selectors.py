"""Reads that pages need, with a fixed number of queries each."""
from __future__ import annotations

from django.db.models import Count, Q

from matcher.models import Listing, Match, MatchRun, Product


def dashboard_summary() -> dict:
    matches = Match.objects.aggregate(
        matched=Count("id", filter=Q(status=Match.Status.MATCHED)),
        pending=Count("id", filter=Q(status=Match.Status.PENDING)),
        rejected=Count("id", filter=Q(status=Match.Status.REJECTED)),
    )
    return {
        "products": Product.objects.filter(active=True).count(),
        "listings": Listing.objects.count(),
        **matches,
        "last_run": MatchRun.objects.order_by("-created_at").first(),
    }
