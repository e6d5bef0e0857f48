"""The vision-LLM verifier: Gemini compares two sets of product photos like a strict merchandiser.

Plain Python, no Django: configuration comes in as a `VerifierConfig`, the rate limiter as an
object (see ratelimit.py), and what comes out is an `LlmVerdict` plus the usage it cost.

Fail-safe by construction: every way a call can go wrong — an HTTP error after the retries,
a timeout, a safety block, a truncated, malformed or schema-violating answer — returns a
verdict with `error` set and `is_match=None`. The decision stage reads `error` as "no
evidence, no automatic match". Nothing here raises for a failed call.

Modules:
- schema.py: the prompt, the request, the verdict schema, reading a response (`parse_response`);
- client.py: GeminiVerifier and its VerifierConfig, the calls online and to the Batch API, with retries;
- retry.py: which failures are retried and the provider's retry hint; cost.py: USD per call;
- batch.py: a Batch API job's status and the verdicts read from a finished one.
"""
from matcher.pipeline.verify.batch import FINISHED_JOB_STATES, BatchError, BatchStatus, job_status
from matcher.pipeline.verify.client import (
    IMAGE_TOKENS,
    SAFETY_CATEGORIES,
    TEXT_TOKENS_PER_CHAR,
    GeminiVerifier,
    VerifierConfig,
)
from matcher.pipeline.verify.cost import BATCH_DISCOUNT, cost_usd, price_of
from matcher.pipeline.verify.retry import RETRYABLE_STATUS, retry_hint_s
from matcher.pipeline.verify.schema import (
    BLOCK_FINISH,
    CandidateType,
    Prompt,
    Usage,
    VerdictSchema,
    VerifyRequest,
    VerifyResult,
    error_verdict,
    jpeg_bytes,
    load_prompt,
    needs_escalation,
    parse_response,
    usage_of,
)

__all__ = [
    "BATCH_DISCOUNT",
    "BLOCK_FINISH",
    "FINISHED_JOB_STATES",
    "IMAGE_TOKENS",
    "RETRYABLE_STATUS",
    "SAFETY_CATEGORIES",
    "TEXT_TOKENS_PER_CHAR",
    "BatchError",
    "BatchStatus",
    "CandidateType",
    "GeminiVerifier",
    "Prompt",
    "Usage",
    "VerdictSchema",
    "VerifierConfig",
    "VerifyRequest",
    "VerifyResult",
    "cost_usd",
    "error_verdict",
    "job_status",
    "jpeg_bytes",
    "load_prompt",
    "needs_escalation",
    "parse_response",
    "price_of",
    "retry_hint_s",
    "usage_of",
]
