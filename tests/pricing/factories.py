"""Factories for pricing tests; names prefixed so they never collide with tests/factories.py."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from matcher.models import Match, Product
from pricing.models import PricingPolicy
from tests.factories import ListingFactory, ProductFactory, UserFactory


class PricingProductFactory(ProductFactory):
    """A SKU priced 100,000 with cost 60,000 and no explicit minimum: the floor is cost × (1 + margin)."""

    sku = factory.Sequence(lambda n: f"PR-{n:05d}")
    price = 100_000
    cost = 60_000
    min_price = None


class PricingListingFactory(ListingFactory):
    product = factory.SubFactory(PricingProductFactory)
    mall = factory.Sequence(lambda n: f"쇼핑몰{n}")
    price = 95_000
    first_seen = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))
    last_seen = factory.LazyFunction(timezone.now)


def _thresholds():
    from matcher.services import thresholds_active

    return thresholds_active()


class PricingMatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Match

    listing = factory.SubFactory(PricingListingFactory)
    product = factory.LazyAttribute(lambda o: o.listing.product)
    bucket = Match.Bucket.AUTO
    status = Match.Status.MATCHED
    confidence = Decimal("0.95")
    embedder = "test-embedder"
    thresholds = factory.LazyFunction(_thresholds)
    fingerprint = factory.Sequence(lambda n: f"fp{n}")
    decided_at = factory.LazyFunction(timezone.now)


def policy_set(scope: str = PricingPolicy.Scope.GLOBAL, key: str = "", **fields: object) -> PricingPolicy:
    """Create or change one policy layer (the global row already exists from the migration)."""
    policy, _ = PricingPolicy.objects.update_or_create(scope=scope, key=key, defaults=fields)
    return policy


def pricing_admin(**kwargs) -> User:  # noqa: ANN003
    return UserFactory(groups=["admin"], is_staff=True, **kwargs)


def pricing_merchandiser(**kwargs) -> User:  # noqa: ANN003
    return UserFactory(groups=["merchandiser"], **kwargs)


def match_for(product: Product, *, price: int, shipping_fee: int = 0, status: str = Match.Status.MATCHED,
              last_seen=None, mall: str | None = None) -> Match:
    listing_kwargs = {"product": product, "price": price, "shipping_fee": shipping_fee}
    if last_seen is not None:
        listing_kwargs["last_seen"] = last_seen
    if mall is not None:
        listing_kwargs["mall"] = mall
    listing = PricingListingFactory(**listing_kwargs)
    bucket = {Match.Status.MATCHED: Match.Bucket.AUTO, Match.Status.PENDING: Match.Bucket.REVIEW}.get(
        status, Match.Bucket.REJECT
    )
    return PricingMatchFactory(listing=listing, product=product, status=status, bucket=bucket)
