"""The vision-LLM verifier inside the project: which pairs to send, the verdict cache, money and batches.

- `config`: switches, keys, prompt version, the verifier and its rate limiter, bulk mode by run size
- `spend`: spend today, per run and per SKU; the daily cap
- `online`: `verify_pairs`, the ledger and cache of verdicts (`LlmVerdictRecord`)
- `batch`: Batch API jobs (`LlmBatchJob`): submit, poll, collect; submitting the pairs awaiting one
- `writeback`: the marker of a pair awaiting a batch verdict, and writing verdicts back to Match rows
- `images`: the photos a request carries

The call itself lives in matcher/pipeline/verify/ (plain Python). The names callers use are
re-exported here.
"""
from matcher.decisions import verdict_from_evidence, verdict_to_evidence
from matcher.llm.batch import (
    BATCH_INLINE_MAX_BYTES,
    BATCH_PREPARING_STALE,
    batch_jobs_open,
    batch_poll_and_collect,
    batch_submit_awaiting,
)
from matcher.llm.config import (
    DEFAULT_ESCALATE_BAND,
    DEFAULT_PROMPT_VERSION,
    OFF_ERROR,
    LlmPairRequest,
    batch_mode_for_pairs,
    batch_mode_for_run,
    cache_key,
    prompt_version,
    verifier,
    verifier_enabled,
)
from matcher.llm.online import verify_pairs
from matcher.llm.spend import Spend, spend_cap_reached, spend_for_product, spend_for_run, spend_today
from matcher.llm.stage import BatchLlmStage, LlmStage, OnlineLlmStage, PairToVerify, llm_stage_for_run
from matcher.llm.writeback import (
    BATCH_AWAITING_REASON,
    BATCH_ESCALATING_REASON,
    WriteBack,
    awaiting_decision,
    batch_marker,
)

__all__ = [
    "BatchLlmStage",
    "LlmStage",
    "OnlineLlmStage",
    "PairToVerify",
    "llm_stage_for_run",
    "BATCH_AWAITING_REASON",
    "BATCH_ESCALATING_REASON",
    "BATCH_INLINE_MAX_BYTES",
    "BATCH_PREPARING_STALE",
    "DEFAULT_ESCALATE_BAND",
    "DEFAULT_PROMPT_VERSION",
    "OFF_ERROR",
    "LlmPairRequest",
    "Spend",
    "WriteBack",
    "awaiting_decision",
    "batch_jobs_open",
    "batch_marker",
    "batch_mode_for_pairs",
    "batch_mode_for_run",
    "batch_poll_and_collect",
    "batch_submit_awaiting",
    "cache_key",
    "prompt_version",
    "spend_cap_reached",
    "spend_for_product",
    "spend_for_run",
    "spend_today",
    "verdict_from_evidence",
    "verdict_to_evidence",
    "verifier",
    "verifier_enabled",
    "verify_pairs",
]
