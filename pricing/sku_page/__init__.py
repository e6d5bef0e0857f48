"""The SKU page's read: our price, the floor and why, the policy in force layer by layer, every competitor
listing of the SKU with its decision and whether it counts for pricing now, and the price history on a
time axis with its causes in Korean.

``sku_page`` runs 7 queries whatever the number of listings, changes, observations and proposals:
product, policy layers, listings (with their match and first photo), changes, observations, proposals,
audit entries. ``listing_rows`` (the table alone, after an overturn) runs 3: product, policy, listings.
"""
from pricing.sku_page.header import FloorView, PolicyLine, floor_view, policy_lines
from pricing.sku_page.history import (
    HISTORY_ROWS_SHOWN,
    AuditRow,
    CauseView,
    CauseViews,
    HistoryRow,
    ProposalRow,
    cause_view,
    chart_data,
    history_rows,
    telling,
)
from pricing.sku_page.listings import ListingRow, ago, listing_rows, listing_rows_of, pair_url
from pricing.sku_page.page import AUDIT_SHOWN, PROPOSALS_SHOWN, SkuPage, sku_page

__all__ = [
    "AUDIT_SHOWN", "HISTORY_ROWS_SHOWN", "PROPOSALS_SHOWN", "AuditRow", "CauseView", "CauseViews", "FloorView",
    "HistoryRow", "ListingRow", "PolicyLine", "ProposalRow", "SkuPage", "ago", "cause_view", "chart_data",
    "floor_view", "history_rows", "listing_rows", "listing_rows_of", "pair_url", "policy_lines", "sku_page",
    "telling",
]
