"""Reads that pages need, with a fixed number of queries each."""
from __future__ import annotations

from matcher.models import ImportReport, MatchRun


def run_list(limit: int = 50):
    return MatchRun.objects.select_related("requested_by").order_by("-created_at")[:limit]


STAGE_LABELS = {
    "load": "이미지 읽기 decode",
    "regions": "영역 검출 regions",
    "cutout": "배경 제거 background removal",
    "embed": "임베딩 embedding",
    "geometry": "특징점 기하 keypoints",
    "colour": "색상 colour",
    "ocr": "OCR",
    "llm": "LLM 검증",
    "decide": "판정 decide",
    "batch_total": "배치 전체 batch total",
}


def run_stage_rows(run: MatchRun) -> list[dict]:
    """Per-stage seconds and how often each expensive stage ran, for the run page."""
    rows = []
    for key, seconds in sorted(run.timings.items(), key=lambda kv: -kv[1]):
        rows.append({"key": key, "label": STAGE_LABELS.get(key, key), "seconds": seconds,
                     "count": run.counts.get(f"stage:{key}")})
    return rows


def import_reports_recent(limit: int = 20):
    """The latest imports, whoever ran them (upload, command or the scraper's API): 1 query."""
    return ImportReport.objects.select_related("user").order_by("-created_at")[:limit]
