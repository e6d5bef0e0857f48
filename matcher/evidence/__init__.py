"""The evidence of one decision as a typed, versioned record: what `Match.evidence` holds.

- `record`: `EvidenceRecord` (to/from JSON, built from a pipeline Comparison, the LLM's updates)
- `types`: the enums and small dataclasses it is made of
- `legacy`: rows written before version 2 (the one place that reads sentences) and `auto_blocked_q`
- `reading`: tolerant readers of stored JSON
"""
from matcher.evidence.legacy import LEGACY_BLOCKS_PREFIX, LEGACY_GATE_PREFIX, auto_blocked_q
from matcher.evidence.record import EvidenceRecord, blocker_of, from_legacy, gate_of
from matcher.evidence.types import (
    MAX_KEYPOINT_PAIRS,
    MAX_TEXT,
    VERSION,
    BestPair,
    Blocker,
    BlockerCode,
    ConflictSource,
    ConflictTerms,
    Gate,
    GateCode,
    ImageBox,
    KeypointMatches,
    LlmEvidence,
    LlmState,
    usd_to_krw,
)

__all__ = [
    "LEGACY_BLOCKS_PREFIX",
    "LEGACY_GATE_PREFIX",
    "MAX_KEYPOINT_PAIRS",
    "MAX_TEXT",
    "VERSION",
    "BestPair",
    "Blocker",
    "BlockerCode",
    "ConflictSource",
    "ConflictTerms",
    "EvidenceRecord",
    "Gate",
    "GateCode",
    "ImageBox",
    "KeypointMatches",
    "LlmEvidence",
    "LlmState",
    "auto_blocked_q",
    "blocker_of",
    "from_legacy",
    "gate_of",
    "usd_to_krw",
]
