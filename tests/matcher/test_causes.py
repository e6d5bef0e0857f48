"""matcher.causes: the one place that writes the cause strings and reads them back (no database)."""
from __future__ import annotations

import pytest

from matcher import causes
from matcher.causes import Cause, CauseKind
from matcher.llm.writeback import WRITE_BACK_CAUSE
from matcher.matching import MATCH_RUN_CAUSE


@pytest.mark.parametrize(
    "cause, text, label",
    [
        (causes.review_decision("approve", 159), "review:approve:match=159", "검토 승인 · 매칭 #159"),
        (causes.review_decision("reject", 7), "review:reject:match=7", "검토 제외 · 매칭 #7"),
        (causes.review_decision("undo", 7), "review:undo:match=7", "검토 결정 되돌리기 · 매칭 #7"),
        (causes.review_bulk("reject"), "review:bulk_reject", "검토 일괄 제외"),
        (Cause(CauseKind.MATCH_RUN), "match_run", "매칭 실행"),
        (causes.catalogue_import(3), "catalogue_import:report=3", "카탈로그 가져오기 · 가져오기 보고서 #3"),
        (causes.catalogue_import(None), "catalogue_import", "카탈로그 가져오기"),
        (Cause(CauseKind.PRODUCT_ADMIN, 12), "admin:product=12", "관리 화면에서 상품 수정 · 상품 #12"),
        (Cause(CauseKind.LIMIT_RETRY), "이동 한도 이후 재계산", "이동 한도 이후 재계산"),
        (Cause(CauseKind.POLICY_CHANGE, 5), "정책 변경 기록 #5", "정책 변경 · 정책 기록 #5"),
        (Cause(CauseKind.FULL_RUN), "관리자 전체 재계산", "관리자 전체 재계산"),
    ],
)
def test_each_cause_is_written_and_read_back_the_same(cause, text, label):
    assert cause.text == text
    assert Cause.read(text) == cause
    assert cause.label == label


def test_every_kind_has_a_korean_label_and_every_reference_a_name():
    for kind in CauseKind:
        assert causes.LABELS[kind]
        _, with_ref = causes._FORMS[kind]
        if with_ref is not None:
            assert causes.REF_LABELS[kind]


@pytest.mark.parametrize(
    "text", ["", "review: approved", "review:approve:match=", "review:approve:match=12x", "x match_run", "테스트"]
)
def test_a_string_this_module_did_not_write_reads_as_nothing(text):
    assert Cause.read(text) is None


def test_a_kind_refuses_a_reference_it_does_not_take_or_lacks_one_it_needs():
    with pytest.raises(ValueError):
        Cause(CauseKind.MATCH_RUN, 3)
    with pytest.raises(ValueError):
        Cause(CauseKind.REVIEW_APPROVE)


def test_the_matchers_run_and_write_back_causes_come_from_here():
    assert Cause.read(MATCH_RUN_CAUSE) == Cause.read(WRITE_BACK_CAUSE) == Cause(CauseKind.MATCH_RUN)
