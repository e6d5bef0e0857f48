"""The vision LLM as one stage of a match run, with an online and a Batch API implementation.

A run asks the stage about the pairs whose bucket a verdict could still change (`pipeline.cascade`),
after the run has read the text printed on their photos (`matching`): that order is the run's, so
neither implementation can lift a 리퍼 banner to an automatic match.

- `OnlineLlmStage`: asks now; each pair is decided again with its verdict before it is written.
- `BatchLlmStage`: writes each pair as review with a marker holding what a later decision needs; after
  the rows are written, `after_write` sends the awaiting pairs to the Batch API. The verdicts come back
  through `writeback` (celery beat's `llm_batch_resume`).
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded

from matcher.decisions import decide_with_verdict, our_images, their_images
from matcher.llm.batch import batch_submit_awaiting
from matcher.llm.config import LlmPairRequest, batch_mode_for_run, verifier_enabled
from matcher.llm.images import verification_jpegs
from matcher.llm.online import verify_pairs
from matcher.llm.writeback import awaiting_decision, batch_marker
from matcher.models import ImageFile, Listing, Match, Product
from matcher.pipeline.compare import Comparison
from matcher.pipeline.policy import DecisionPolicy

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PairToVerify:
    product: Product
    listing: Listing
    comparison: Comparison

    def photos(self) -> tuple[ImageFile, ImageFile, list[int] | None, list[int] | None]:
        """The photo of each side that gave the best evidence, with the boxes of its best regions."""
        ours = our_images(self.product)
        theirs = their_images(self.listing)
        i, j = self.comparison.best_images or (0, 0)
        box_a, box_b = self.comparison.best_boxes
        return ours[min(i, len(ours) - 1)], theirs[min(j, len(theirs) - 1)], box_a, box_b


class LlmStage(Protocol):
    def ask(self, pairs: list[PairToVerify], *, counts: Counter) -> None:
        """Settle or mark each pair's decision (`pair.comparison.decision`) before the run writes it."""

    # listing id → the marker its row carries while its verdict is awaited (empty: nothing awaited)
    markers: dict[int, dict[str, Any]]

    def after_write(self, *, counts: Counter) -> None:
        """Called once the run's rows are committed."""


class OnlineLlmStage:
    def __init__(self, *, policy: DecisionPolicy, run_id: int | None, timings: Counter) -> None:
        self.policy, self.run_id, self.timings = policy, run_id, timings
        self.markers: dict[int, dict[str, Any]] = {}  # nothing is awaited: verdicts come now

    def ask(self, pairs: list[PairToVerify], *, counts: Counter) -> None:
        requests = []
        for pair in pairs:
            a, b, box_a, box_b = pair.photos()
            requests.append(
                LlmPairRequest(
                    image_a_hash=a.sha256, image_b_hash=b.sha256,
                    images_a=verification_jpegs(a, box_a, self.timings),
                    images_b=verification_jpegs(b, box_b, self.timings),
                    title_a=pair.product.title, title_b=pair.listing.title, product_id=pair.product.id,
                )
            )
        verdicts = verify_pairs(pairs=requests, run_id=self.run_id, product_id=None)
        counts["llm_pairs"] += len(verdicts)
        for pair, verdict in zip(pairs, verdicts):
            comp = pair.comparison
            comp.decision = decide_with_verdict(comp.evidence, verdict, self.policy)
            if verdict.error:
                counts["llm_errors"] += 1

    def after_write(self, *, counts: Counter) -> None:
        return None


class BatchLlmStage:
    def __init__(self) -> None:
        self.markers: dict[int, dict[str, Any]] = {}  # listing id → marker

    def ask(self, pairs: list[PairToVerify], *, counts: Counter) -> None:
        for pair in pairs:
            a, b, box_a, box_b = pair.photos()
            comp = pair.comparison
            self.markers[pair.listing.id] = batch_marker(
                image_a=a.sha256, image_b=b.sha256, box_a=box_a, box_b=box_b, evidence=comp.evidence
            )
            comp.decision = awaiting_decision(comp.decision)
        counts["llm_batch_awaiting"] += len(pairs)

    def after_write(self, *, counts: Counter) -> None:
        """Send the awaiting pairs no job holds yet.

        A pair whose request is already in flight (a re-processed or forced batch) keeps its job and is
        not sent again. A failure here leaves the rows awaiting; the periodic sweep (llm_batch_resume)
        submits them, so it must not fail the run batch."""
        if not self.markers:
            return
        ids = list(
            Match.objects.filter(listing_id__in=list(self.markers), llm_batch_job__isnull=True).values_list(
                "id", flat=True
            )
        )
        if not ids:
            return
        try:
            jobs = batch_submit_awaiting(match_ids=ids)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            log.exception("submitting %d awaiting pairs to the Batch API failed", len(ids))
            counts["llm_batch_submit_errors"] += 1
            return
        counts["llm_batch_jobs"] += len(jobs)
        counts["llm_batch_requests"] += sum(len(j.requests) for j in jobs)


def llm_stage_for_run(*, run_id: int | None, policy: DecisionPolicy, timings: Counter) -> LlmStage | None:
    """The stage a run uses: None with the verifier off; the Batch API for runs of enough pairs."""
    if not verifier_enabled():
        return None
    if batch_mode_for_run(run_id):
        return BatchLlmStage()
    return OnlineLlmStage(policy=policy, run_id=run_id, timings=timings)
