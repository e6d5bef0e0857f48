"""The SKU page's header: the floor and why, the policy in force field by field with its layer."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from matcher.models import Product
from pricing import rules, selectors


@dataclass(frozen=True)
class FloorView:
    amount: int
    basis: str  # "min_price" | "cost_margin" | "none"
    by_cost: int
    min_price: int | None
    margin: Decimal

    @property
    def reason(self) -> str:
        """Why the floor is what it is, in Korean."""
        margin = rules.pct(self.margin)
        if self.basis == "none":
            return "원가와 최저가가 없어 하한가를 정할 수 없습니다 (자동 적용하지 않습니다)"
        if self.basis == "min_price":
            other = f"; 원가 기준 {rules.won(self.by_cost)}보다 높음" if self.by_cost else ""
            return f"설정한 최저가 {rules.won(self.amount)}{other}"
        other = f"; 설정한 최저가 {rules.won(self.min_price)}보다 높음" if self.min_price else ""
        return f"원가 × (1 + 최소 마진 {margin}) = {rules.won(self.by_cost)}{other}"


def floor_view(product: Product, policy: rules.Policy) -> FloorView:
    numbers = selectors.product_numbers(product)
    amount = rules.floor_price(numbers, policy)
    by_cost = rules.floor_by_cost(numbers, policy)
    if not amount:
        basis = "none"
    elif product.min_price and product.min_price >= by_cost:
        basis = "min_price"
    else:
        basis = "cost_margin"
    return FloorView(amount=amount, basis=basis, by_cost=by_cost, min_price=product.min_price,
                     margin=policy.min_margin_percent)


@dataclass(frozen=True)
class PolicyLine:
    name: str
    label: str
    value: str
    source: str

    @property
    def inherited(self) -> bool:
        return self.source == rules.DEFAULT_SOURCE


_MONEY_FIELDS = {"undercut_amount", "rounding", "raise_ceiling_price"}
_MODES = {"amount": "금액", "percent": "비율"}


def _policy_value(name: str, value: object) -> str:
    if value is None:
        return "없음"
    if isinstance(value, bool):
        return "예" if value else "아니오"
    if isinstance(value, Decimal):
        return rules.pct(value)
    if name in _MONEY_FIELDS and isinstance(value, int):
        return rules.won(value)
    if name == "stale_after_hours":
        return f"{value}시간"
    if name == "undercut_mode":
        return _MODES.get(str(value), str(value))
    return str(value)


def policy_lines(policy: rules.Policy) -> list[PolicyLine]:
    return [
        PolicyLine(
            name=name,
            label=rules.FIELD_LABELS[name],
            value=_policy_value(name, getattr(policy, name)),
            source=policy.sources.get(name, rules.DEFAULT_SOURCE),
        )
        for name in rules.POLICY_FIELDS
    ]
