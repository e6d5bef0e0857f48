"""Writes of the pricing app, by noun: repricing a SKU, proposals, rollbacks, runs, the webhook and
editing the policies (each edit with its PolicyAuditEntry).

Every applied change writes its PriceChange, its PriceAuditEntry, Product.price and the webhook
outbox row in one transaction; the webhook is sent after commit. Callers import from here
(`from pricing import services`).
"""

from pricing.deciders import proposal_decide_refusal, proposal_move_percent
from pricing.exceptions import PriceBelowFloor, WebhookDeliveryError
from pricing.services.catalogue_price import catalogue_price_record
from pricing.services.halt import HALTED_REASON, auto_pricing_halt_current, auto_pricing_halt_set
from pricing.services.policies import policy_delete, policy_save
from pricing.services.proposals import BulkResult, proposal_approve, proposal_reject, proposals_decide_bulk
from pricing.services.repricing import (
    DUE_CAUSE,
    PAUSED_REASON,
    Evaluation,
    PricePreview,
    auto_pricing_paused,
    price_preview,
    reprice_due,
    reprice_product,
)
from pricing.services.rollback import RunRollbackResult, change_rollback, run_rollback
from pricing.services.runs import RUN_BATCH, pricing_run_create, pricing_run_execute
from pricing.services.webhooks import webhook_deliver, webhook_signature, webhooks_requeue_stuck

__all__ = [
    "DUE_CAUSE",
    "HALTED_REASON",
    "PAUSED_REASON",
    "RUN_BATCH",
    "BulkResult",
    "Evaluation",
    "PriceBelowFloor",
    "PricePreview",
    "RunRollbackResult",
    "WebhookDeliveryError",
    "auto_pricing_halt_current",
    "auto_pricing_halt_set",
    "auto_pricing_paused",
    "catalogue_price_record",
    "change_rollback",
    "policy_delete",
    "policy_save",
    "price_preview",
    "pricing_run_create",
    "pricing_run_execute",
    "proposal_approve",
    "proposal_decide_refusal",
    "proposal_move_percent",
    "proposal_reject",
    "proposals_decide_bulk",
    "reprice_due",
    "reprice_product",
    "run_rollback",
    "webhook_deliver",
    "webhook_signature",
    "webhooks_requeue_stuck",
]
