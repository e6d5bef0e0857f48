"""Why a SKU was re-priced: the ``cause`` that travels with ``matches_changed`` / ``catalogue_changed`` and
pricing runs into PriceProposal, PriceAuditEntry, CompetitorPriceObservation and PricingRun.

Every cause string our code writes is ``Cause(...).text`` from here, and ``Cause.read`` turns exactly those
strings (today's and every earlier row's, the formats are unchanged) back into a Cause. Anything else — a
test's or an operator's free text — reads as None and is shown as it is; nothing parses a sentence.
Plain Python: every layer writes causes, so this module imports nothing of the apps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class CauseKind(StrEnum):
    REVIEW_APPROVE = "review_approve"
    REVIEW_REJECT = "review_reject"
    REVIEW_UNDO = "review_undo"
    REVIEW_BULK_APPROVE = "review_bulk_approve"
    REVIEW_BULK_REJECT = "review_bulk_reject"
    MATCH_RUN = "match_run"
    CATALOGUE_IMPORT = "catalogue_import"
    PRODUCT_ADMIN = "product_admin"
    LIMIT_RETRY = "limit_retry"
    POLICY_CHANGE = "policy_change"
    FULL_RUN = "full_run"


# kind → (the text without a reference, the text with one); None where the kind never has that form.
# The Korean texts are what pricing runs have always been named on the pricing page.
_FORMS: dict[CauseKind, tuple[str | None, str | None]] = {
    CauseKind.REVIEW_APPROVE: (None, "review:approve:match={ref}"),
    CauseKind.REVIEW_REJECT: (None, "review:reject:match={ref}"),
    CauseKind.REVIEW_UNDO: (None, "review:undo:match={ref}"),
    CauseKind.REVIEW_BULK_APPROVE: ("review:bulk_approve", None),
    CauseKind.REVIEW_BULK_REJECT: ("review:bulk_reject", None),
    CauseKind.MATCH_RUN: ("match_run", None),
    CauseKind.CATALOGUE_IMPORT: ("catalogue_import", "catalogue_import:report={ref}"),
    CauseKind.PRODUCT_ADMIN: (None, "admin:product={ref}"),
    CauseKind.LIMIT_RETRY: ("이동 한도 이후 재계산", None),
    CauseKind.POLICY_CHANGE: (None, "정책 변경 기록 #{ref}"),
    CauseKind.FULL_RUN: ("관리자 전체 재계산", None),
}

LABELS: dict[CauseKind, str] = {
    CauseKind.REVIEW_APPROVE: "검토 승인",
    CauseKind.REVIEW_REJECT: "검토 제외",
    CauseKind.REVIEW_UNDO: "검토 결정 되돌리기",
    CauseKind.REVIEW_BULK_APPROVE: "검토 일괄 승인",
    CauseKind.REVIEW_BULK_REJECT: "검토 일괄 제외",
    CauseKind.MATCH_RUN: "매칭 실행",
    CauseKind.CATALOGUE_IMPORT: "카탈로그 가져오기",
    CauseKind.PRODUCT_ADMIN: "관리 화면에서 상품 수정",
    CauseKind.LIMIT_RETRY: "이동 한도 이후 재계산",
    CauseKind.POLICY_CHANGE: "정책 변경",
    CauseKind.FULL_RUN: "관리자 전체 재계산",
}

# What the reference number names, in Korean ("매칭 #159").
REF_LABELS: dict[CauseKind, str] = {
    CauseKind.REVIEW_APPROVE: "매칭",
    CauseKind.REVIEW_REJECT: "매칭",
    CauseKind.REVIEW_UNDO: "매칭",
    CauseKind.CATALOGUE_IMPORT: "가져오기 보고서",
    CauseKind.PRODUCT_ADMIN: "상품",
    CauseKind.POLICY_CHANGE: "정책 기록",
}

REVIEW_KINDS = {"approve": CauseKind.REVIEW_APPROVE, "reject": CauseKind.REVIEW_REJECT, "undo": CauseKind.REVIEW_UNDO}
REVIEW_BULK_KINDS = {"approve": CauseKind.REVIEW_BULK_APPROVE, "reject": CauseKind.REVIEW_BULK_REJECT}


def _pattern(form: str) -> re.Pattern[str]:
    before, after = form.split("{ref}")
    return re.compile(re.escape(before) + r"(\d+)" + re.escape(after))


_BARE = {bare: kind for kind, (bare, _) in _FORMS.items() if bare is not None}
_WITH_REF = [(kind, _pattern(form)) for kind, (_, form) in _FORMS.items() if form is not None]


@dataclass(frozen=True)
class Cause:
    kind: CauseKind
    ref: int | None = None

    def __post_init__(self) -> None:
        bare, with_ref = _FORMS[self.kind]
        if (bare if self.ref is None else with_ref) is None:
            raise ValueError(f"{self.kind} {'needs' if self.ref is None else 'takes no'} reference")

    @property
    def text(self) -> str:
        """The string stored in the ``cause`` columns (at most 200 characters)."""
        bare, with_ref = _FORMS[self.kind]
        if self.ref is None:
            assert bare is not None
            return bare
        assert with_ref is not None
        return with_ref.format(ref=self.ref)

    def __str__(self) -> str:
        return self.text

    @property
    def label(self) -> str:
        """Korean, for the merchandiser: "검토 제외 · 매칭 #159"."""
        if self.ref is None:
            return LABELS[self.kind]
        return f"{LABELS[self.kind]} · {REF_LABELS[self.kind]} #{self.ref}"

    @classmethod
    def read(cls, text: str) -> Cause | None:
        """The Cause whose ``text`` this is, or None for a string this module did not write."""
        text = text or ""
        if text in _BARE:
            return cls(_BARE[text])
        for kind, pattern in _WITH_REF:
            found = pattern.fullmatch(text)
            if found:
                return cls(kind, int(found.group(1)))
        return None


def review_decision(action: str, match_id: int) -> Cause:
    """A reviewer's approve / reject / undo of one pair (the queue's and the SKU page's alike)."""
    return Cause(REVIEW_KINDS[action], match_id)


def review_bulk(action: str) -> Cause:
    return Cause(REVIEW_BULK_KINDS[action])


def catalogue_import(report_id: int | None) -> Cause:
    return Cause(CauseKind.CATALOGUE_IMPORT, report_id)
