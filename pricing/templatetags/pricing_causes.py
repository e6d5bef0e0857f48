"""``{{ text|cause }}``: a stored cause (matcher.causes) in Korean with a link to what it names."""
from __future__ import annotations

from django import template

from pricing.sku_page import CauseView, cause_view

register = template.Library()


@register.filter(name="cause")
def cause(text: str | None) -> CauseView | None:
    return cause_view(text or "")
