"""Conflicts between two titles' attributes: a group both name with no value in common, or a flag
(condition, shipping, kids) only the listing names; and where on a person a titled garment sits."""
from __future__ import annotations

from dataclasses import dataclass

from matcher.pipeline.attributes.lexicon import DEFAULT_FLAG_GROUPS, DEFAULT_FLAG_VALUES, Attributes, Lexicon
from matcher.pipeline.types import RegionKind

GROUP_LABELS: dict[str, str] = {
    "material": "소재/material",
    "audience": "대상/audience",
    "garment": "품목/garment",
    "lining": "안감/lining",
    "condition": "상태/condition",
    "shipping": "배송/shipping",
    "colour": "색상/colour",
    "season": "시즌/season",
    "year": "연도/year",
    "sleeve": "소매/sleeve",
}

# Garment values that are kinds of a broader one. A title naming only the broad value ("top",
# "상의") agrees with any of its kinds; a T-shirt and a sweatshirt are different garments even
# though both are tops (the same print on both is a common copy: see the lexicon's garment rows).
GARMENT_FAMILY: dict[str, str] = {
    kind: "top" for kind in ("tshirt", "sweatshirt", "hoodie", "knit", "cardigan", "shirt", "sleeveless")
}

GARMENT_REGION: dict[str, RegionKind] = {
    "top": "upper",
    **{kind: "upper" for kind in GARMENT_FAMILY},
    "jacket": "upper",
    "vest": "upper",
    "bottom": "lower",
    "dress": "outfit",
}



@dataclass(frozen=True)
class Conflict:
    """One conflict: its reason for people, the group, and the values each side names that make it."""

    reason: str
    group: str
    ours: frozenset[str]
    theirs: frozenset[str]


def conflicts(ours: Attributes, theirs: Attributes, lexicon: Lexicon | None = None) -> list[str]:
    """Human-readable reasons why the listing cannot be our SKU as titled (see find_conflicts)."""
    return [c.reason for c in find_conflicts(ours, theirs, lexicon)]


def find_conflicts(ours: Attributes, theirs: Attributes, lexicon: Lexicon | None = None) -> list[Conflict]:
    """Why the listing cannot be our SKU as titled.

    A conflict is a group both sides name with no value in common, or a flag (condition,
    shipping, kids) the listing names and our SKU does not (then `theirs` is the flag alone).
    """
    flag_groups = lexicon.flag_groups if lexicon else DEFAULT_FLAG_GROUPS
    flag_values = lexicon.flag_values if lexicon else DEFAULT_FLAG_VALUES
    found: list[Conflict] = []
    reasons: list[str] = []
    for group in sorted(set(ours) & set(theirs)):
        a, b = ours[group], theirs[group]
        if a and b and not _agree(group, a, b):
            reasons.append(f"{GROUP_LABELS.get(group, group)}: ours {_fmt(a)} vs listing {_fmt(b)}")
            found.append(Conflict(reasons[-1], group, frozenset(a), frozenset(b)))
    for group in sorted(theirs):
        for value in sorted(theirs[group]):
            is_flag = group in flag_groups or (group, value) in flag_values
            if is_flag and value not in ours.get(group, set()) and not _already(reasons, group):
                reasons.append(f"{GROUP_LABELS.get(group, group)}: listing only — {value} (목록에만 표기)")
                found.append(Conflict(reasons[-1], group, frozenset(ours.get(group, set())), frozenset({value})))
    return found


def _agree(group: str, a: set[str], b: set[str]) -> bool:
    if group != "garment":
        return bool(a & b)
    # "top" beside "tshirt" in one title says nothing more; alone it agrees with every kind of top.
    a, b = _narrowest(a), _narrowest(b)
    return bool(a & b) or any(GARMENT_FAMILY.get(x) == y or GARMENT_FAMILY.get(y) == x for x in a for y in b)


def _narrowest(values: set[str]) -> set[str]:
    broader = {GARMENT_FAMILY[v] for v in values if v in GARMENT_FAMILY}
    return values - broader


def _already(reasons: list[str], group: str) -> bool:
    prefix = GROUP_LABELS.get(group, group) + ":"
    return any(r.startswith(prefix) for r in reasons)


def _fmt(values: set[str]) -> str:
    return "/".join(sorted(values))


def garment_region_kind(attrs: Attributes) -> RegionKind | None:
    """Where on a person the SKU's garment sits, from its title: 'upper', 'lower', 'outfit' or None."""
    kinds = {GARMENT_REGION[v] for v in attrs.get("garment", set()) if v in GARMENT_REGION}
    return kinds.pop() if len(kinds) == 1 else None

