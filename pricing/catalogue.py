"""The catalogue: every active SKU against its cheapest confirmed competitor, as one set-based read.

How the per-SKU policy is resolved for a whole list (exactly, not per row in Python):

- Policy layers are few (the global row, some categories and brands, a handful of SKUs), so they are
  loaded once (1 query) and turned into one SQL ``CASE`` per field the page needs (stale cut-off,
  shipping, minimum margin, rounding): SKU layers first, then brand, then category, else the global
  row, else ``rules.DEFAULTS`` — field by field, as ``selectors.policy_for_product`` stacks them.
  Layers that set a field to the same value share one ``WHEN … = ANY(…)``.
- With those, a ``LATERAL`` subquery finds each SKU's cheapest counted listing once (``rules.counts``:
  matched, price > 0, seen within that SKU's cut-off; shipping added when its policy adds it; ties to
  the lower listing id as ``rules.cheapest``), and the floor (``rules.floor_price``, numeric
  arithmetic, so exact like Decimal), gap and position are columns computed from it. Search,
  filters, sorting and pagination are therefore correct over the whole catalogue, not just a page.
- The SQL is written by hand because the ORM repeats an annotated subquery at every reference (the
  cheapest total is read by the gap, the percentage, the position and the floor test: five
  evaluations per row instead of one). Every value a user typed is a parameter; sort columns and
  filters come from whitelists.

Positions: 최저가 (our price ≤ the cheapest counted total), 하한가에 막힘 (dearer, but our price is
already at the lowest the rules may set: round_up(max(floor, 1), rounding)), N원 비쌈 (dearer
otherwise), 확정 경쟁 없음 (nothing counts). The gap is our price − the cheapest total; the
percentage is that gap over the cheapest total.

Limits:
- The ``CASE`` grows with the number of distinct (layer, value) pairs; thousands of SKU-level
  policies still work but make long SQL — a resolved-policy table would be the next step.
- "Now" is the request's instant: a listing crossing its cut-off between two loads moves the SKU.
- A filter or sort on a computed column (position, gap, cheapest, floor, below the floor) runs the
  LATERAL for every active SKU matching the text filters (index ``match_product_status``, then the
  listing by primary key); the default order (SKU) runs it for the page's rows only.
  ``benchmarks/catalogue_page.py`` measures both.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.utils import timezone

from matcher.models import Listing, Match, Product
from pricing import rules
from pricing.models import PriceChange, PricingPolicy

PER_PAGE = 50

CHEAPEST = "cheapest"
DEARER = "dearer"
FLOOR = "floor"
NO_COMPETITION = "none"
POSITION_LABELS = {CHEAPEST: "최저가", DEARER: "비쌈", FLOOR: "하한가에 막힘", NO_COMPETITION: "확정 경쟁 없음"}
POSITION_CHOICES = [(CHEAPEST, "최저가"), (DEARER, "N원 비쌈"), (FLOOR, "하한가에 막힘"), (NO_COMPETITION, "확정 경쟁 없음")]

# Sort key → SQL column of the computed rows; NULLs (no competitor, no change) always last.
SORTS = {
    "sku": "sku",
    "title": "title",
    "price": "price",
    "floor": "floor",
    "cheapest": "cheapest_total",
    "gap": "gap",
    "gap_pct": "gap_pct",
    "position": "position_rank",
    "matched": "n_matched",
    "changed": "last_change_at",
}
_RANK = {CHEAPEST: 0, DEARER: 1, FLOOR: 2, NO_COMPETITION: 3}


@dataclass(frozen=True)
class CatalogueFilters:
    q: str = ""
    brand: str = ""
    category: str = ""
    position: str = ""
    below_floor: bool = False
    sort: str = "sku"  # a key of SORTS, "-" in front for descending

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> CatalogueFilters:
        sort = data.get("sort", "") or "sku"
        position = data.get("position", "")
        return cls(
            q=data.get("q", "").strip()[:100],
            brand=data.get("brand", "").strip()[:120],
            category=data.get("category", "").strip()[:120],
            position=position if position in POSITION_LABELS else "",
            below_floor=data.get("below_floor", "") in ("1", "on", "true"),
            sort=sort if sort.lstrip("-") in SORTS else "sku",
        )

    def as_dict(self, **changes: Any) -> dict[str, str]:
        """The query string's fields without the empty ones (links that keep the view)."""
        values = replace(self, **changes) if changes else self
        out = {"q": values.q, "brand": values.brand, "category": values.category, "position": values.position,
               "below_floor": "1" if values.below_floor else "", "sort": "" if values.sort == "sku" else values.sort}
        return {k: v for k, v in out.items() if v}


@dataclass
class CatalogueRow:
    """One line of the page and of the CSV; money in whole won."""

    id: int
    sku: str
    product_number: str
    title: str
    brand: str
    category: str
    price: int
    floor: int
    cheapest_total: int | None
    cheapest_mall: str | None
    cheapest_listing_id: int | None
    gap: int | None
    gap_pct: Decimal | None
    position_rank: int
    below_floor: bool
    n_matched: int
    n_pending: int
    n_rejected: int
    last_change_at: datetime | None
    last_change_old: int | None
    last_change_new: int | None

    @property
    def position(self) -> str:
        return next(k for k, v in _RANK.items() if v == self.position_rank)

    @property
    def position_label(self) -> str:
        if self.position == DEARER:
            return f"{self.gap:,}원 비쌈"
        return POSITION_LABELS[self.position]

    @property
    def gap_pct_shown(self) -> Decimal | None:
        return None if self.gap_pct is None else self.gap_pct.quantize(Decimal("0.1"))


_COLUMNS = [f.name for f in fields(CatalogueRow)]


# --- SQL --------------------------------------------------------------------------------------------


def _layered(policies: Sequence[PricingPolicy], name: str, sql_type: str, convert: Any, params: list[Any]) -> str:
    """``CASE`` giving each SKU policy field ``name`` from its most specific layer that sets it."""
    column = {PricingPolicy.Scope.SKU: "pr.sku", PricingPolicy.Scope.BRAND: "pr.brand",
              PricingPolicy.Scope.CATEGORY: "pr.category"}
    default = rules.DEFAULTS[name]
    whens: list[str] = []
    for scope in (PricingPolicy.Scope.SKU, PricingPolicy.Scope.BRAND, PricingPolicy.Scope.CATEGORY):
        keys_by_value: dict[Any, list[str]] = {}
        for policy in policies:
            if policy.scope == scope and getattr(policy, name) is not None:
                keys_by_value.setdefault(getattr(policy, name), []).append(policy.key)
        for value, keys in keys_by_value.items():
            whens.append(f"WHEN {column[scope]} = ANY(%s) THEN %s::{sql_type}")
            params.extend([sorted(keys), convert(value)])
    for policy in policies:
        if policy.scope == PricingPolicy.Scope.GLOBAL and getattr(policy, name) is not None:
            default = getattr(policy, name)
    params.append(convert(default))
    if not whens:
        return f"%s::{sql_type}"
    return f"CASE {' '.join(whens)} ELSE %s::{sql_type} END"


def _tables() -> dict[str, str]:
    return {"product": Product._meta.db_table, "match": Match._meta.db_table, "listing": Listing._meta.db_table,
            "change": PriceChange._meta.db_table}


def _filtered_sql(filters: CatalogueFilters, policies: Sequence[PricingPolicy], now: datetime,
                  *, computed: bool) -> tuple[str, list[Any]]:
    """SELECT of the filtered SKUs; with ``computed``, every column the filters and sorts need."""
    t = _tables()
    params: list[Any] = []
    where = ["pr.active"]
    text_params: list[Any] = []
    if filters.q:
        where.append("(pr.sku ILIKE %s OR pr.product_number ILIKE %s OR pr.title ILIKE %s)")
        like = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        text_params += [like, like, like]
    if filters.brand:
        where.append("pr.brand = %s")
        text_params.append(filters.brand)
    if filters.category:
        where.append("pr.category = %s")
        text_params.append(filters.category)
    if not computed:
        return f"SELECT pr.id FROM {t['product']} pr WHERE {' AND '.join(where)}", text_params

    cutoff = _layered(policies, "stale_after_hours", "timestamptz", lambda h: now - timedelta(hours=h), params)
    ship = _layered(policies, "include_shipping", "integer", lambda b: 1 if b else 0, params)
    margin = _layered(policies, "min_margin_percent", "numeric", Decimal, params)
    unit = _layered(policies, "rounding", "integer", int, params)
    params += text_params
    params.append(str(Match.Status.MATCHED))
    sql = f"""
        SELECT f.*, f.price - f.cheapest_total AS gap,
               (f.price - f.cheapest_total)::numeric * 100 / f.cheapest_total AS gap_pct,
               CASE WHEN f.cheapest_total IS NULL THEN {_RANK[NO_COMPETITION]}
                    WHEN f.price <= f.cheapest_total THEN {_RANK[CHEAPEST]}
                    WHEN f.price <= ((GREATEST(f.floor, 1) + f.unit - 1) / f.unit) * f.unit THEN {_RANK[FLOOR]}
                    ELSE {_RANK[DEARER]} END AS position_rank,
               COALESCE(f.cheapest_total < f.floor, false) AS below_floor
        FROM (
            SELECT p.id, p.sku, p.product_number, p.title, p.brand, p.category, p.price, p.unit,
                   GREATEST(COALESCE(p.min_price, 0),
                            COALESCE(CEIL(p.cost::numeric * (100 + p.margin) / 100)::integer, 0)) AS floor,
                   best.total AS cheapest_total, best.mall AS cheapest_mall, best.listing_id AS cheapest_listing_id
            FROM (
                SELECT pr.id, pr.sku, pr.product_number, pr.title, pr.brand, pr.category, pr.price, pr.cost,
                       pr.min_price, {cutoff} AS cutoff, {ship} AS ship, {margin} AS margin, {unit} AS unit
                FROM {t['product']} pr WHERE {' AND '.join(where)}
            ) p
            LEFT JOIN LATERAL (
                SELECT l.price + l.shipping_fee * p.ship AS total, l.mall, l.id AS listing_id
                FROM {t['match']} m JOIN {t['listing']} l ON l.id = m.listing_id
                WHERE m.product_id = p.id AND m.status = %s AND l.price > 0 AND l.last_seen >= p.cutoff
                ORDER BY 1, l.id LIMIT 1
            ) best ON true
        ) f"""
    return sql, params


def _outer_where(filters: CatalogueFilters) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if filters.position:
        where.append("c.position_rank = %s")
        params.append(_RANK[filters.position])
    if filters.below_floor:
        where.append("c.below_floor")
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _count(filters: CatalogueFilters, policies: Sequence[PricingPolicy], now: datetime) -> int:
    computed = bool(filters.position or filters.below_floor)
    sql, params = _filtered_sql(filters, policies, now, computed=computed)
    where, where_params = _outer_where(filters)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) c{where}", params + where_params)
        return int(cursor.fetchone()[0])


def _rows_sql(filters: CatalogueFilters, policies: Sequence[PricingPolicy], now: datetime,
              limit: int | None, offset: int) -> tuple[str, list[Any]]:
    t = _tables()
    sql, params = _filtered_sql(filters, policies, now, computed=True)
    where, where_params = _outer_where(filters)
    key = filters.sort.lstrip("-")
    direction = "DESC" if filters.sort.startswith("-") else "ASC"
    order = f"{SORTS[key]} {direction} NULLS LAST, sku ASC"
    counts = f"""
        (SELECT count(*) FROM {t['match']} m WHERE m.product_id = c.id AND m.status = %s) AS n_matched,
        (SELECT count(*) FROM {t['match']} m WHERE m.product_id = c.id AND m.status = %s) AS n_pending,
        (SELECT count(*) FROM {t['match']} m WHERE m.product_id = c.id AND m.status = %s) AS n_rejected,
        lc.created_at AS last_change_at, lc.old_price AS last_change_old, lc.new_price AS last_change_new"""
    count_params = [str(s) for s in (Match.Status.MATCHED, Match.Status.PENDING, Match.Status.REJECTED)]
    last_change = f"""LEFT JOIN LATERAL (
            SELECT ch.created_at, ch.old_price, ch.new_price FROM {t['change']} ch
            WHERE ch.product_id = c.id ORDER BY ch.created_at DESC, ch.id DESC LIMIT 1) lc ON true"""
    page = " LIMIT %s OFFSET %s" if limit is not None else ""
    page_params = [limit, offset] if limit is not None else []
    if key in ("matched", "changed"):
        # Sorting by these needs them for every row.
        full = f"SELECT c.*, {counts} FROM ({sql}) c {last_change}{where} ORDER BY {order}{page}"
        return full, count_params + params + where_params + page_params
    # Otherwise the page is cut first and the display-only columns are read for its rows alone.
    cut = f"SELECT c.* FROM ({sql}) c{where} ORDER BY {order}{page}"
    full = f"SELECT c.*, {counts} FROM ({cut}) c {last_change} ORDER BY {order}"
    return full, count_params + params + where_params + page_params


def _fetch(sql: str, params: list[Any]) -> list[CatalogueRow]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [_row(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]


def _row(values: dict[str, Any]) -> CatalogueRow:
    return CatalogueRow(**{name: values[name] for name in _COLUMNS})


class _LazyRows(Sequence[CatalogueRow]):
    """What Paginator needs: ``count()`` and a slice, each one query."""

    def __init__(self, filters: CatalogueFilters, policies: Sequence[PricingPolicy], now: datetime) -> None:
        self.filters, self.policies, self.now = filters, policies, now

    def count(self) -> int:  # type: ignore[override]  # Paginator calls count() with no argument
        return _count(self.filters, self.policies, self.now)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        if not isinstance(index, slice):
            raise TypeError("the catalogue is read by pages")
        start = index.start or 0
        sql, params = _rows_sql(self.filters, self.policies, self.now, index.stop - start, start)
        return _fetch(sql, params)


@dataclass
class CataloguePage:
    page: Page
    rows: list[CatalogueRow]
    filters: CatalogueFilters
    brands: list[str]
    categories: list[str]


def _policies() -> list[PricingPolicy]:
    return list(PricingPolicy.objects.filter(active=True))


def catalogue_page(filters: CatalogueFilters, page_number: int | str | None, *, now: datetime | None = None,
                   per_page: int = PER_PAGE) -> CataloguePage:
    """A page of the catalogue with the filter choices. 4 queries whatever the page size or the data:
    the policy layers, the count, the page's rows (every column), the brand and category choices."""
    now = now or timezone.now()
    page = Paginator(_LazyRows(filters, _policies(), now), per_page).get_page(page_number)
    rows = list(page.object_list)
    brands: set[str] = set()
    categories: set[str] = set()
    for brand, category in Product.objects.filter(active=True).order_by().values_list("brand", "category").distinct():
        brands.add(brand)
        categories.add(category)
    return CataloguePage(page=page, rows=rows, filters=filters, brands=sorted(b for b in brands if b),
                         categories=sorted(c for c in categories if c))


def catalogue_rows(filters: CatalogueFilters, *, now: datetime | None = None,
                   chunk: int = 2000) -> Iterator[CatalogueRow]:
    """Every row of the filtered view in chunks of ``chunk`` (the CSV export): 1 query for the policies,
    then 1 per chunk; the same instant for all of them, so a SKU never moves between chunks."""
    now = now or timezone.now()
    policies = _policies()
    offset = 0
    while True:
        sql, params = _rows_sql(filters, policies, now, chunk, offset)
        rows = _fetch(sql, params)
        yield from rows
        if len(rows) < chunk:
            return
        offset += chunk


def position_counts(*, now: datetime | None = None) -> dict[str, int]:
    """Active SKUs by position over the whole catalogue, plus "below_floor" (a counted competitor under
    our floor), for the dashboard. 2 queries (policy layers, one aggregate)."""
    now = now or timezone.now()
    sql, params = _filtered_sql(CatalogueFilters(), _policies(), now, computed=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.position_rank, count(*), count(*) FILTER (WHERE c.below_floor) FROM ({sql}) c GROUP BY 1",
            params,
        )
        rows = cursor.fetchall()
    by_rank = {rank: position for position, rank in _RANK.items()}
    counts = {position: 0 for position in _RANK}
    counts["below_floor"] = 0
    for rank, n, below in rows:
        counts[by_rank[rank]] = int(n)
        counts["below_floor"] += int(below)
    return counts
