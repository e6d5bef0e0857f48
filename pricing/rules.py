"""The arithmetic of a price: plain Python, no database, so property tests can hammer it.

``decide_price`` takes what services.py loaded (the resolved policy, our product's numbers, the
candidate listings) and returns the price with its explanation in Korean. Money is int KRW;
percentages are Decimal numbers of percent. No float anywhere.

Order of the rules, and why:
1. Only confirmed (status "matched") listings seen within the stale cut-off count.
2. Target = cheapest counted total (with or without shipping) minus the undercut, rounded down.
3. A higher target is ignored unless raising is on, and then capped by a ceiling; with no
   ceiling we do not raise (a raise without a cap can chase a mistaken listing upwards).
   Exception: a correction — the listing our current price followed no longer counts (rejected,
   pending or stale) — may raise back up to the price before that change.
4. The move is clamped to the per-change and per-24-hours limits (corrections are exempt: they
   undo our own move).
5. The floor always wins: the price is never below max(min price, cost × (1 + margin)), even if
   that means a move beyond the limits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

MATCHED = "matched"

DEFAULTS: dict[str, object] = {
    "undercut_mode": "amount",
    "undercut_amount": 100,
    "undercut_percent": Decimal("1.00"),
    "rounding": 10,
    "min_margin_percent": Decimal("10.00"),
    "max_change_percent": Decimal("10.00"),
    "max_daily_change_percent": Decimal("20.00"),
    "include_shipping": True,
    "stale_after_hours": 48,
    "raise_when_cheapest_rises": False,
    "raise_ceiling_price": None,
    "raise_ceiling_markup_percent": None,
    "auto_apply": True,
    "auto_apply_max_change_percent": Decimal("5.00"),
}
POLICY_FIELDS = tuple(DEFAULTS)


@dataclass(frozen=True)
class Policy:
    undercut_mode: str = "amount"
    undercut_amount: int = 100
    undercut_percent: Decimal = Decimal("1.00")
    rounding: int = 10
    min_margin_percent: Decimal = Decimal("10.00")
    max_change_percent: Decimal = Decimal("10.00")
    max_daily_change_percent: Decimal = Decimal("20.00")
    include_shipping: bool = True
    stale_after_hours: int = 48
    raise_when_cheapest_rises: bool = False
    raise_ceiling_price: int | None = None
    raise_ceiling_markup_percent: Decimal | None = None
    auto_apply: bool = True
    auto_apply_max_change_percent: Decimal = Decimal("5.00")
    # field name → the layer that set it ("기본값", "전체", "카테고리 아우터", …); for the explanation.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in POLICY_FIELDS:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Decimal) else value
        out["sources"] = dict(self.sources)
        return out


@dataclass(frozen=True)
class Candidate:
    """A competitor listing with its match status, as the rules see it."""

    listing_id: int
    match_id: int | None
    status: str
    price: int
    shipping_fee: int
    last_seen: datetime
    mall: str = ""
    title: str = ""

    def total(self, include_shipping: bool) -> int:
        return self.price + self.shipping_fee if include_shipping else self.price


@dataclass(frozen=True)
class ProductNumbers:
    price: int
    cost: int | None
    min_price: int | None


@dataclass
class Decision:
    old_price: int
    price: int
    floor: int
    target: int | None = None
    followed: Candidate | None = None
    counted: int = 0
    limits_hit: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    correction: bool = False

    @property
    def changed(self) -> bool:
        return self.price != self.old_price


FIELD_LABELS = {
    "undercut_mode": "차감 방식",
    "undercut_amount": "차감 금액",
    "undercut_percent": "차감 비율",
    "rounding": "내림 단위",
    "min_margin_percent": "최소 마진",
    "max_change_percent": "1회 변동 한도",
    "max_daily_change_percent": "24시간 변동 한도",
    "include_shipping": "배송비 포함",
    "stale_after_hours": "미확인 기준",
    "raise_when_cheapest_rises": "인상",
    "raise_ceiling_price": "인상 상한가",
    "raise_ceiling_markup_percent": "인상 상한 마크업",
    "auto_apply": "자동 적용",
    "auto_apply_max_change_percent": "자동 적용 한도",
}
DEFAULT_SOURCE = "기본값"


def _policy_layers(policy: Policy) -> str:
    """"카테고리 아우터(최소 마진), SKU A1(차감 금액)": which layer set which rule, defaults left out."""
    by_layer: dict[str, list[str]] = {}
    for name in POLICY_FIELDS:
        source = policy.sources.get(name, DEFAULT_SOURCE)
        if source != DEFAULT_SOURCE:
            by_layer.setdefault(source, []).append(FIELD_LABELS[name])
    return ", ".join(f"{layer}({', '.join(names)})" for layer, names in by_layer.items())


def won(amount: int) -> str:
    return f"{amount:,}원"


def pct(value: Decimal) -> str:
    return f"{value.normalize():f}%"


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def round_down(amount: int, unit: int) -> int:
    return (amount // unit) * unit


def round_up(amount: int, unit: int) -> int:
    return -((-amount) // unit) * unit


def floor_by_cost(product: ProductNumbers, policy: Policy) -> int:
    """cost × (1 + minimum margin), rounded up to a whole won; 0 without a cost."""
    if not product.cost:
        return 0
    return _ceil(Decimal(product.cost) * (Decimal(100) + policy.min_margin_percent) / Decimal(100))


def floor_price(product: ProductNumbers, policy: Policy) -> int:
    """max(explicit minimum price, cost × (1 + minimum margin)), rounded up to a whole won; 0 if unknown."""
    return max(product.min_price or 0, floor_by_cost(product, policy))


def counts(candidate: Candidate, policy: Policy, now: datetime) -> bool:
    """Confirmed, priced and seen within the stale cut-off; pending, rejected, 0-won and stale listings
    never count (a 0-won listing is a scraper's misreading or a placeholder, never a price to follow)."""
    if candidate.status != MATCHED or candidate.price <= 0:
        return False
    return now - candidate.last_seen <= timedelta(hours=policy.stale_after_hours)


def counted_candidates(candidates: list[Candidate], policy: Policy, now: datetime) -> list[Candidate]:
    return [c for c in candidates if counts(c, policy, now)]


def cheapest(candidates: list[Candidate], policy: Policy) -> Candidate | None:
    if not candidates:
        return None
    # Ties go to the lower listing id so the same inputs always follow the same listing.
    return min(candidates, key=lambda c: (c.total(policy.include_shipping), c.listing_id))


def undercut_target(total: int, policy: Policy) -> int:
    if policy.undercut_mode == "percent":
        raw = _floor(Decimal(total) * (Decimal(100) - policy.undercut_percent) / Decimal(100))
    else:
        raw = total - policy.undercut_amount
    return max(round_down(raw, policy.rounding), 0)


def raise_ceiling(product: ProductNumbers, policy: Policy) -> int | None:
    caps: list[int] = []
    if policy.raise_ceiling_price:
        caps.append(policy.raise_ceiling_price)
    if policy.raise_ceiling_markup_percent is not None and product.cost:
        caps.append(_floor(Decimal(product.cost) * (Decimal(100) + policy.raise_ceiling_markup_percent) / 100))
    return min(caps) if caps else None


def limit_window(old: int, day_baseline: int, policy: Policy) -> tuple[int, int]:
    """The prices reachable now: within the per-change limit of the current price and the 24-hour
    limit of the price 24 hours ago. Bounds are rounded inwards so they never exceed a limit."""
    per = Decimal(old) * policy.max_change_percent / Decimal(100)
    day = Decimal(day_baseline) * policy.max_daily_change_percent / Decimal(100)
    low = max(_ceil(Decimal(old) - per), _ceil(Decimal(day_baseline) - day), 0)
    high = min(_floor(Decimal(old) + per), _floor(Decimal(day_baseline) + day))
    return low, high


def decide_price(
    *,
    product: ProductNumbers,
    policy: Policy,
    candidates: list[Candidate],
    now: datetime,
    day_baseline: int | None = None,
    correction_cap: int | None = None,
) -> Decision:
    """The price the rules want now.

    ``day_baseline``: our price 24 hours ago (the old price of the first change since), or None for
    the current price. ``correction_cap``: set when the listing our current price followed no
    longer counts; the price before that change, which a correction may restore at most.
    """
    old = product.price
    unit = policy.rounding
    floor = floor_price(product, policy)
    decision = Decision(old_price=old, price=old, floor=floor)
    notes = decision.notes

    counted = counted_candidates(candidates, policy, now)
    decision.counted = len(counted)
    ignored = len(candidates) - len(counted)
    best = cheapest(counted, policy)

    # Background for the reader, after the steps: which layers set the rules, the floor, what was left out.
    context: list[str] = []
    layers = _policy_layers(policy)
    if layers:
        context.append(f"적용 정책: {layers}")
    if floor:
        context.append(f"하한가 {won(floor)} (최저가·원가×(1+최소 마진 {pct(policy.min_margin_percent)}) 중 큰 값)")
    else:
        context.append("원가와 최저가가 없어 하한가를 정할 수 없습니다 — 자동 적용하지 않습니다")
    if ignored:
        context.append(
            f"확정되지 않았거나 {policy.stale_after_hours}시간 넘게 확인되지 않은 경쟁 상품 {ignored}개는 제외했습니다"
        )

    if best is None and correction_cap is None and old >= round_up(max(floor, 1), unit):
        notes.append(f"가격 유지 {won(old)}: 반영할 확정·최신 경쟁 상품이 없습니다")
        notes.extend(context)
        return decision

    desired: int
    if best is None and correction_cap is None:
        # No competitor to follow, but our price sits below the floor (a raised minimum or cost): the
        # floor below lifts it, whatever the limits say.
        desired = old
        notes.append("반영할 확정·최신 경쟁 상품이 없지만 현재 가격이 하한가보다 낮습니다")
    elif best is not None:
        total = best.total(policy.include_shipping)
        decision.followed = best
        decision.target = target = undercut_target(total, policy)
        shipping = f" + 배송비 {won(best.shipping_fee)}" if policy.include_shipping and best.shipping_fee else ""
        notes.append(
            f"가장 싼 확정 경쟁 상품: {best.mall} {won(best.price)}{shipping} = {won(total)} "
            f"(확정·최신 {len(counted)}개 중)"
        )
        undercut = won(policy.undercut_amount) if policy.undercut_mode == "amount" else pct(policy.undercut_percent)
        notes.append(f"{undercut} 낮게, {won(unit)} 단위 내림 → 목표가 {won(target)}")
        desired = target
    else:
        assert correction_cap is not None
        desired = correction_cap
        notes.append("반영할 확정·최신 경쟁 상품이 없습니다")

    if correction_cap is not None and desired > old:
        # Our price followed a listing that no longer counts: undo that move, re-priced from the rest.
        decision.correction = True
        if desired > correction_cap:
            desired = correction_cap
            decision.limits_hit.append("correction_cap")
        notes.append(
            f"현재 가격이 따르던 경쟁 상품이 더 이상 확정·최신이 아니어서 다시 계산합니다 "
            f"(그 변경 전 가격 {won(correction_cap)}까지, 변동 한도 미적용)"
        )
    elif desired > old:
        ceiling = raise_ceiling(product, policy)
        if not policy.raise_when_cheapest_rises:
            notes.append("경쟁가가 올랐지만 인상 설정이 꺼져 있어 가격을 유지합니다")
            desired = old
        elif ceiling is None:
            notes.append("인상 설정은 켜져 있지만 인상 상한이 없어 가격을 유지합니다")
            desired = old
        elif desired > ceiling:
            desired = max(round_down(ceiling, unit), old)
            decision.limits_hit.append("ceiling")
            notes.append(f"인상 상한 {won(ceiling)} 적용")

    # The floor first, so the limits move us towards it; it is enforced again after the limits.
    # Without a known floor, one rounding unit keeps the price from reaching zero.
    floor_unit = round_up(max(floor, 1), unit)
    floor_forced = desired < floor_unit
    if floor_forced:
        desired = floor_unit

    if desired != old and not decision.correction:
        baseline = day_baseline if day_baseline is not None else old
        low, high = limit_window(old, baseline, policy)
        if low > high:
            # Our price already sits outside the 24-hour window (a rollback or a manual edit put it
            # there): no move is within both limits, so none is made until the window moves on.
            desired = old
            decision.limits_hit.append("max_change")
            notes.append(
                f"24시간 변동 한도 {pct(policy.max_daily_change_percent)} (기준 {won(baseline)})를 "
                "이미 다 써서 이번에는 바꾸지 않습니다"
            )
        elif desired < low:
            # The lowest whole-unit price inside the window; none (a narrow window) means no move.
            stepped = round_up(low, unit)
            desired = stepped if stepped < old and stepped <= high else old
            decision.limits_hit.append("max_change")
            notes.append(
                f"이동 한도 적용: 1회 {pct(policy.max_change_percent)}, "
                f"24시간 {pct(policy.max_daily_change_percent)} (기준 {won(baseline)}) → 최저 {won(low)}"
            )
        elif desired > high:
            stepped = round_down(high, unit)
            desired = stepped if stepped > old and stepped >= low else old
            decision.limits_hit.append("max_change")
            notes.append(
                f"이동 한도 적용: 1회 {pct(policy.max_change_percent)}, "
                f"24시간 {pct(policy.max_daily_change_percent)} (기준 {won(baseline)}) → 최고 {won(high)}"
            )

    if desired < floor_unit:
        if "max_change" in decision.limits_hit:
            notes.append("하한가가 이동 한도보다 우선합니다")
        desired = floor_unit
        floor_forced = True
    if floor_forced and desired == floor_unit and desired != old:
        decision.limits_hit.append("floor")
        notes.append(f"하한가에 걸려 {won(floor_unit)}로 정했습니다")

    decision.price = desired
    # The headline first: the lists show the first sentence.
    basis = f" ({best.mall} {won(best.total(policy.include_shipping))} 기준)" if best is not None else ""
    if desired == old:
        notes.insert(0, f"가격 유지 {won(old)}{basis}")
    else:
        notes.insert(0, f"{won(old)} → {won(desired)}{basis}")
    notes.extend(context)
    return decision


def auto_apply_verdict(decision: Decision, policy: Policy) -> tuple[bool, str]:
    """Whether the policy lets this change apply without an admin, and if not, why (Korean)."""
    if not policy.auto_apply:
        return False, "정책상 자동 적용이 꺼져 있습니다"
    if not decision.floor:
        return False, "하한가를 알 수 없어 관리자 승인이 필요합니다"
    if decision.correction:
        return True, ""
    if "floor" in decision.limits_hit and decision.price > decision.old_price:
        return False, "하한가 때문에 가격을 올리는 변경은 관리자 승인이 필요합니다"
    if decision.old_price:
        moved = abs(Decimal(decision.price) - decision.old_price) * 100 / decision.old_price
        if moved > policy.auto_apply_max_change_percent:
            return False, (
                f"변동 {pct(moved.quantize(Decimal('0.01')))}이(가) 자동 적용 한도 "
                f"{pct(policy.auto_apply_max_change_percent)}를 넘습니다"
            )
    return True, ""


def policy_with(**changes: Any) -> Policy:
    return dataclasses.replace(Policy(), **changes)
