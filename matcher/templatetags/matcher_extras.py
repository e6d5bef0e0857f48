from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def box_style(box, width, height) -> str:
    """CSS placing an outline over a pixel box of an image shown at any size."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = float(width), float(height)
    except (TypeError, ValueError):
        return "display:none"
    if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
        return "display:none"
    return format_html(
        "left:{}%;top:{}%;width:{}%;height:{}%",
        f"{100 * x0 / w:.2f}", f"{100 * y0 / h:.2f}", f"{100 * (x1 - x0) / w:.2f}", f"{100 * (y1 - y0) / h:.2f}",
    )
