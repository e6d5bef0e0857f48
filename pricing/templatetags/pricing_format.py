"""``{{ amount|comma }}``: an integer with thousands separators (126,000), as humanize's intcomma
shows it in Korean, without its locale machinery (the SKU page formats a few thousand numbers)."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def comma(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return value


@register.simple_tag
def proposal_refusal(user: object, proposal: object) -> str:
    """``{% proposal_refusal user p as refusal %}``: why this user may not decide this proposal ("" if they may)."""
    from pricing.deciders import proposal_decide_refusal

    return proposal_decide_refusal(user, proposal) or ""  # type: ignore[arg-type]
