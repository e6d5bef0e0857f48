"""What a call costs in USD, from the model's price per million tokens (the Batch API bills half)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from matcher.pipeline.verify.schema import Usage

log = logging.getLogger(__name__)

BATCH_DISCOUNT = Decimal("0.5")  # the Batch API bills half
MTOK = Decimal(1_000_000)


def price_of(prices: Mapping[str, tuple[Decimal, Decimal]], model: str) -> tuple[Decimal, Decimal]:
    """A model missing from the table is priced as the dearest known one, so the cap never under-counts."""
    name = model.removeprefix("models/")
    if name in prices:
        return prices[name]
    if not prices:
        raise ValueError("no LLM price table configured")
    log.warning("no price for model %s; counting it at the dearest known price", name)
    return max(prices.values(), key=lambda p: (p[1], p[0]))


def cost_usd(
    prices: Mapping[str, tuple[Decimal, Decimal]], model: str, usage: Usage, *, batch: bool = False
) -> Decimal:
    price_in, price_out = price_of(prices, model)
    cost = (Decimal(usage.input_tokens) * price_in + Decimal(usage.output_tokens) * price_out) / MTOK
    if batch:
        cost *= BATCH_DISCOUNT
    return cost.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)

