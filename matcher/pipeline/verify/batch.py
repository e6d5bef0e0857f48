"""The Batch API's jobs: their state, and the verdicts read from a finished one."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from google.genai import types as gt

from matcher.pipeline.verify.cost import cost_usd
from matcher.pipeline.verify.schema import Usage, VerifyResult, error_verdict, parse_response, usage_of

FINISHED_JOB_STATES = frozenset(
    {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
)


@dataclass
class BatchStatus:
    name: str
    state: str  # JOB_STATE_PENDING / RUNNING / SUCCEEDED / FAILED / CANCELLED / EXPIRED
    # Only when SUCCEEDED: (request metadata key or None, result) in response order.
    results: list[tuple[str | None, VerifyResult]] | None = None
    error: str = ""

    @property
    def done(self) -> bool:
        return self.state in FINISHED_JOB_STATES


class BatchError(Exception):
    pass


def job_status(
    job: gt.BatchJob, name: str, *, model: str, prompt_version: str, prices: Mapping[str, tuple[Decimal, Decimal]]
) -> BatchStatus:
    """The status of a fetched batch job; with the verdicts of its items, in response order, once it succeeded."""
    state = job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED"
    status = BatchStatus(name=name, state=state)
    if job.error is not None:
        status.error = f"{job.error.code or ''} {job.error.message or ''}".strip()
    if state != "JOB_STATE_SUCCEEDED":
        return status
    inlined = (job.dest.inlined_responses if job.dest else None) or []
    results: list[tuple[str | None, VerifyResult]] = []
    for item in inlined:
        key = (item.metadata or {}).get("key")
        if item.error is not None or item.response is None:
            error = item.error
            why = f"{error.code or ''} {error.message or ''}".strip() if error else "no response"
            verdict = error_verdict(f"batch item failed: {why}", model=model, prompt_version=prompt_version)
            results.append((key, VerifyResult(verdict, Usage())))
            continue
        usage = usage_of(item.response)
        verdict = parse_response(item.response, model=model, prompt_version=prompt_version)
        verdict.cost_usd = str(cost_usd(prices, model, usage, batch=True))
        results.append((key, VerifyResult(verdict, usage, 1)))
    status.results = results
    return status
