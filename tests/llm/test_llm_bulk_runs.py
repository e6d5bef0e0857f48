"""Bulk mode inside match runs: uncertain pairs go to the Batch API and their verdicts are written back.

The vision stages are replaced by a scripted comparer (this is about orchestration: which pairs are
sent, when, how often, and what is written); the LLM side is the real google-genai SDK against the
fake Gemini server, the database and the broker are the real ones.
"""
from __future__ import annotations

import io
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from matcher import llm, matching
from matcher.analysis_cache import DbAnalysisCache
from matcher.decisions import policy_for
from matcher.evidence import BlockerCode, ConflictSource, EvidenceRecord
from matcher.models import LlmBatchJob, LlmVerdictRecord, Match, MatchRun, MatchRunBatch
from matcher.pipeline.attributes import Lexicon
from matcher.pipeline.compare import Comparison, ImageAnalysis, PairComparer, StageCounts
from matcher.pipeline.ocr import TesseractOcr
from matcher.pipeline.policy import decide
from matcher.pipeline.types import PairEvidence
from matcher.runs import match_run_batch_process, match_run_start
from tests.factories import (
    ImageFileFactory,
    ListingFactory,
    ListingImageFactory,
    ProductFactory,
    ProductImageFactory,
    UserFactory,
)
from tests.fakes import gemini_server as fg
from tests.llm.pairs import FAST, FLASH_CALL_USD, PRO_CALL_USD, STRONG
from tests.pipeline.text_images import label

pytestmark = pytest.mark.django_db

# What the cheap evidence says, by the tag in the listing's title.
EVIDENCE = {
    # Appearance, geometry and colour agree: auto without asking anybody.
    "sure": dict(cosine=0.97, inliers=100, inlier_colour_agreement=0.95, colour_distance=0.05),
    # Only appearance (and colour) agree: capped in review; a confident LLM "match" is the second kind.
    "unsure": dict(cosine=0.97, colour_distance=0.05),
    # Far off in colour and looks: reject, and not even a confident "match" could lift it to review.
    "hopeless": dict(cosine=0.2, colour_distance=0.95),
}
HALF_FLASH = FLASH_CALL_USD / 2
HALF_PRO = PRO_CALL_USD / 2


class ScriptedComparer(PairComparer):
    """Stands in for PairComparer's vision stages: evidence by the listing title's [tag], decided by the
    real policy. What happens after an LLM verdict (the read of the text printed on their photos
    before an automatic match) is the real comparer's, with the real Tesseract when it is installed."""

    def __init__(self, policy, ocr=None) -> None:
        super().__init__(finder=None, embedder=_NoEmbedder(), lexicon=Lexicon.load(), policy=policy, ocr=ocr)

    def analyse(self, images, stats=None, *, on_unreadable=None):
        # No regions or vectors: only the photo itself, for the OCR.
        out = []
        for ref in images:
            found = self.cache.get(ref.sha256)
            if found is None:
                found = ImageAnalysis(sha256=ref.sha256, size=ref.load().size, regions=[], embedder="scripted@test",
                                      embeddings=np.zeros((0, 1), np.float32), colours=[])
                self.cache.put(found)
            out.append(found)
        return out

    def compare(self, ours, theirs, *, llm=None) -> Comparison:
        tag = re.match(r"\[(\w+)\]", theirs.title).group(1)
        evidence = PairEvidence(**EVIDENCE[tag])
        return Comparison(evidence=evidence, decision=decide(evidence, self.policy), stats=StageCounts(),
                          best_images=(0, 0))


class _NoEmbedder:
    name = "scripted"
    dim = 1


@pytest.fixture
def scripted(monkeypatch):
    def toolkit(*, thresholds=None, with_ocr=True):
        from matcher.services import thresholds_active

        thresholds = thresholds or thresholds_active()
        policy = policy_for(thresholds)
        ocr = TesseractOcr() if with_ocr else None
        return matching.Toolkit(
            comparer=ScriptedComparer(policy, ocr=ocr if ocr is not None and ocr.available() else None),
            cache=DbAnalysisCache("scripted@test"), policy=policy, thresholds=thresholds,
            timings=Counter(),
        )

    monkeypatch.setattr(matching, "toolkit", toolkit)


@pytest.fixture
def bulk(fake_gemini, scripted, settings):
    """Every run is big enough for the Batch API."""
    settings.GEMINI_BATCH_MIN_PAIRS = 1
    return fake_gemini


def sku(*tags: str, printed: str | None = None):
    """One SKU with one listing per tag, each with photos of its own (with `printed` text on them)."""
    product = ProductFactory()
    ProductImageFactory(product=product)
    for tag in tags:
        listing = ListingFactory(product=product, title=f"[{tag}] 노스페이스 눕시 패딩")
        if printed:
            ListingImageFactory(listing=listing, image=ImageFileFactory(data=png_of(label([printed]))))
        else:
            ListingImageFactory(listing=listing)
    return product


@pytest.fixture
def tesseract():
    if not TesseractOcr().available():
        pytest.skip("tesseract with kor+eng is not installed (Debian: tesseract-ocr tesseract-ocr-kor)")


def png_of(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def run(product_ids: list[int], *, force: bool = False) -> MatchRun:
    r = match_run_start(product_ids=product_ids, force=force, enqueue=False)
    for batch in r.batches.all():
        assert match_run_batch_process(batch_id=batch.id)
    r.refresh_from_db()
    return r


def match_of(product, tag: str, n: int = 0) -> Match:
    return Match.objects.filter(product=product, listing__title__startswith=f"[{tag}]").order_by("id")[n]


def requests_sent(fake, model: str | None = None) -> int:
    """Pair requests the provider received in batch jobs (of one model)."""
    return sum(len(b.requests) for b in fake.batches.values() if model is None or b.model == model)


def collect_all() -> None:
    for job_id in list(llm.batch_jobs_open()):
        llm.batch_poll_and_collect(job_id=job_id)


# --- online or bulk ------------------------------------------------------------------------------


def test_a_small_run_verifies_online_and_submits_no_batch(fake_gemini, scripted, settings):
    settings.GEMINI_BATCH_MIN_PAIRS = 100
    product = sku("unsure", "sure", "hopeless")

    run([product.id])

    assert fake_gemini.generate_count(FAST) == 1  # only the pair the verdict could move
    assert fake_gemini.count("batch_create") == 0 and not LlmBatchJob.objects.exists()
    assert match_of(product, "unsure").bucket == Match.Bucket.AUTO


def test_a_pair_the_online_verdict_lifts_is_not_auto_matched_when_its_photo_says_refurbished(
    fake_gemini, scripted, settings, tesseract
):
    settings.GEMINI_BATCH_MIN_PAIRS = 100
    product = sku("unsure", printed="리퍼 상품 해외배송")

    r = run([product.id])

    match = match_of(product, "unsure")
    assert fake_gemini.generate_count(FAST) == 1  # the verdict agreed ("match") ...
    assert match.evidence["llm"]["is_match"] is True
    # ... but the text on their photo is another offer: the conflict blocks the automatic match.
    assert match.bucket == Match.Bucket.REVIEW and match.status == Match.Status.PENDING
    record = EvidenceRecord.from_json(match.evidence)
    assert any(c.source == ConflictSource.OCR and c.theirs == "refurb" for c in record.conflicts), record.conflicts
    assert BlockerCode.ATTRIBUTE_CONFLICT in [b.code for b in record.auto_blocked]
    assert r.counts["ocr_conflicts_before_llm"] == 1


def test_a_pair_sent_to_a_batch_carries_what_its_photo_says_so_the_verdict_cannot_lift_it(bulk, tesseract):
    product = sku("unsure", printed="리퍼 상품 해외배송")
    run([product.id])
    match = match_of(product, "unsure")
    pending = match.evidence["llm_pending"]["pair_evidence"]
    assert any("OCR" in c and "refurb" in c for c in pending["conflicts"])
    job = LlmBatchJob.objects.get()
    bulk.push(fg.ok())
    bulk.complete_batch(job.remote_name)

    llm.batch_poll_and_collect(job_id=job.id)

    match.refresh_from_db()
    assert match.evidence["llm"]["is_match"] is True
    assert match.bucket == Match.Bucket.REVIEW and match.status == Match.Status.PENDING


def test_a_run_in_batch_mode_writes_uncertain_pairs_as_review_and_submits_them_once(bulk):
    product = sku("unsure", "unsure", "sure", "hopeless")

    first = run([product.id])

    assert bulk.generate_count() == 0  # nothing online
    assert bulk.count("batch_create") == 1 and requests_sent(bulk, FAST) == 2
    job = LlmBatchJob.objects.get()
    assert job.state == LlmBatchJob.State.SUBMITTED and job.run_id == first.id
    for n in (0, 1):
        waiting = match_of(product, "unsure", n)
        assert (waiting.bucket, waiting.status) == (Match.Bucket.REVIEW, Match.Status.PENDING)
        assert waiting.reasons[0] == llm.BATCH_AWAITING_REASON
        assert waiting.llm_batch_job_id == job.id and "llm" not in waiting.evidence
    assert match_of(product, "sure").bucket == Match.Bucket.AUTO
    assert match_of(product, "hopeless").bucket == Match.Bucket.REJECT
    assert first.counts["llm_batch_awaiting"] == 2 and first.counts["llm_batch_requests"] == 2

    # The same batch delivered again (a redelivery after a crash): nothing is submitted twice.
    batch = MatchRunBatch.objects.get(run=first)
    MatchRunBatch.objects.filter(id=batch.id).update(state=MatchRunBatch.State.PENDING)
    assert match_run_batch_process(batch_id=batch.id)
    # Nor by a forced re-run while the job is still out: the pairs stay with their job.
    run([product.id], force=True)

    assert bulk.count("batch_create") == 1 and requests_sent(bulk) == 2
    assert LlmBatchJob.objects.count() == 1
    assert set(Match.objects.filter(llm_batch_job=job).values_list("listing__title", flat=True)) == {
        "[unsure] 노스페이스 눕시 패딩"
    }


# --- write-back ----------------------------------------------------------------------------------


def test_collecting_writes_each_verdict_back_to_its_match(bulk, django_capture_on_commit_callbacks,
                                                          matches_changed_sent):
    product = sku("unsure", "unsure")
    r = run([product.id])
    job = LlmBatchJob.objects.get()
    bulk.push(fg.ok(), fg.safety_finish())  # in request order: the first pair, then the second
    bulk.complete_batch(job.remote_name)

    with django_capture_on_commit_callbacks(execute=True):
        job = llm.batch_poll_and_collect(job_id=job.id)

    assert job.state == LlmBatchJob.State.COLLECTED
    matched, blocked = match_of(product, "unsure", 0), match_of(product, "unsure", 1)
    # A confident "match" is the second kind of agreeing evidence: the policy now auto-matches.
    assert (matched.bucket, matched.status) == (Match.Bucket.AUTO, Match.Status.MATCHED)
    assert matched.confidence >= Decimal("0.9")
    assert llm.BATCH_AWAITING_REASON not in matched.reasons
    assert any("LLM" in r and "agrees" in r for r in matched.reasons)
    assert matched.evidence["llm"]["reasoning"].startswith("Same logo")
    assert matched.evidence["llm"]["model"] == FAST and matched.prompt_version == "verify_v1"
    assert Decimal(matched.evidence["llm"]["cost_usd"]) == matched.llm_cost_usd == HALF_FLASH
    assert "llm_pending" not in matched.evidence
    assert matched.evidence["llm_batch"]["job_id"] == job.id
    assert matched.evidence["llm_batch"]["bucket_before"] == "review"
    # A safety block is a failure: review, with the reason in sight, never auto.
    assert (blocked.bucket, blocked.status) == (Match.Bucket.REVIEW, Match.Status.PENDING)
    assert blocked.evidence["llm"]["error"].startswith("blocked by safety filter")
    assert any("LLM 검증 실패" in r and "safety" in r for r in blocked.reasons)
    # Cost as online: in the ledger per run and per SKU (the blocked answer was billed for its input).
    blocked_usd = Decimal("0.000150")  # 1000 input tokens at half the Flash price, no output
    assert llm.spend_for_run(r.id).usd == HALF_FLASH + blocked_usd
    assert llm.spend_for_product(product.id).calls == 2
    # The run's counts follow, and pricing hears about the new automatic match like after a run.
    r.refresh_from_db()
    assert r.counts["auto"] == 1 and r.counts["review"] == 1
    assert r.counts["llm_batch_applied"] == r.counts["llm_pairs"] == 2 and r.counts["llm_errors"] == 1
    assert matches_changed_sent == [
        {"product_ids": [product.id], "reprice_ids": [product.id], "cause": "match_run", "actor_id": None}
    ]
    # The job keeps what became of each pair.
    applied = {k: v for meta in job.requests for k, v in meta["applied"].items()}
    assert applied == {str(matched.id): "auto", str(blocked.id): "review"}


def test_a_match_decided_by_a_reviewer_meanwhile_is_left_alone(bulk):
    from review.services import claim_pair, decision_record

    product = sku("unsure")
    run([product.id])
    waiting = match_of(product, "unsure")
    reviewer = UserFactory(groups=["merchandiser"])
    claim = claim_pair(user=reviewer, match_id=waiting.id)
    decision_record(user=reviewer, match_id=waiting.id, action="reject", claim_id=claim.claim_id,
                    reason="other_colour")
    bulk.complete_batch()

    collect_all()

    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by_human) == (Match.Status.REJECTED, True)
    assert "llm" not in waiting.evidence
    # The answer was paid for, so it is kept for the next time these photos meet.
    assert LlmVerdictRecord.objects.filter(ok=True, batch=True).count() == 1
    [meta] = LlmBatchJob.objects.get().requests
    assert meta["applied"][str(waiting.id)].startswith("skipped: decided by a reviewer")


def test_a_listing_changed_since_is_left_for_the_next_run(bulk):
    from matcher.services import listing_fingerprint_refresh

    product = sku("unsure")
    run([product.id])
    waiting = match_of(product, "unsure")
    waiting.listing.price += 5000
    waiting.listing.save()
    listing_fingerprint_refresh(listing_id=waiting.listing_id)
    bulk.complete_batch()

    collect_all()

    waiting.refresh_from_db()
    assert waiting.bucket == Match.Bucket.REVIEW and waiting.reasons[0] == llm.BATCH_AWAITING_REASON
    assert "llm" not in waiting.evidence
    # The next run decides it again; the verdict is cached (same photos), so it is not paid again.
    before = requests_sent(bulk)
    run([product.id])
    waiting.refresh_from_db()
    assert waiting.bucket == Match.Bucket.AUTO and waiting.evidence["llm"]["cached"] is True
    assert requests_sent(bulk) == before and bulk.generate_count() == 0


@pytest.mark.parametrize(
    "failure, reason",
    [
        (lambda fake, job: (fake.push(fg.malformed()), fake.complete_batch(job.remote_name)), "malformed JSON"),
        (lambda fake, job: (fake.push(fg.server_error()), fake.complete_batch(job.remote_name)), "batch item failed"),
        (lambda fake, job: fake.fail_batch(job.remote_name), "JOB_STATE_FAILED"),
    ],
    ids=["malformed-answer", "item-error", "job-failed"],
)
def test_a_failure_in_the_batch_leaves_the_pair_in_review_with_its_reason(bulk, failure, reason):
    product = sku("unsure")
    run([product.id])
    failure(bulk, LlmBatchJob.objects.get())

    collect_all()

    match = match_of(product, "unsure")
    assert (match.bucket, match.status) == (Match.Bucket.REVIEW, Match.Status.PENDING)
    assert reason in match.evidence["llm"]["error"]
    assert any("LLM 검증 실패" in r for r in match.reasons)
    assert "llm_pending" not in match.evidence


def test_past_the_spend_cap_nothing_is_submitted_and_the_pairs_stay_in_review(bulk, settings):
    # Jobs still out count with their estimate: this one alone would pass the cap.
    settings.GEMINI_DAILY_SPEND_CAP_USD = Decimal("0.0001")
    product = sku("unsure")

    run([product.id])

    assert bulk.count("batch_create") == 0
    assert LlmBatchJob.objects.get().state == LlmBatchJob.State.FAILED
    match = match_of(product, "unsure")
    assert match.bucket == Match.Bucket.REVIEW and "spend cap" in match.evidence["llm"]["error"]


def test_open_jobs_count_against_the_cap_with_their_estimate(bulk, settings):
    product = sku("unsure")
    run([product.id])
    estimate = LlmBatchJob.objects.get().cost_usd
    assert estimate > 0
    settings.GEMINI_DAILY_SPEND_CAP_USD = estimate * 3 / 2  # room for one open job, not two

    other = sku("unsure")
    run([other.id])

    assert bulk.count("batch_create") == 1
    assert "spend cap" in match_of(other, "unsure").evidence["llm"]["error"]


def test_online_calls_also_count_the_jobs_still_out(bulk, settings):
    from tests.llm.pairs import pair

    run([sku("unsure").id])
    settings.GEMINI_DAILY_SPEND_CAP_USD = LlmBatchJob.objects.get().cost_usd  # filled by the open job

    [verdict] = llm.verify_pairs(pairs=[pair(9)], run_id=None, product_id=None)

    assert "spend cap" in verdict.error and bulk.generate_count() == 0


# --- escalation ------------------------------------------------------------------------------------


def test_escalation_goes_to_the_strong_model_in_a_batch_only_for_the_uncertain_band(bulk):
    product = sku("unsure", "unsure")
    run([product.id])
    # The first pair is answered surely, the second inside the band (0.4–0.8).
    bulk.push(fg.ok(confidence=0.95), fg.ok(confidence=0.6), model=FAST)
    bulk.complete_batch()

    collect_all()

    sure, unsure = match_of(product, "unsure", 0), match_of(product, "unsure", 1)
    assert sure.bucket == Match.Bucket.AUTO and sure.evidence["llm"]["model"] == FAST
    assert unsure.bucket == Match.Bucket.REVIEW and unsure.evidence["llm_pending"]["stage"] == "escalate"
    assert unsure.reasons[0].startswith("LLM 상위 모델 일괄 검증 대기")
    assert [b.model for b in bulk.batches.values()] == [FAST, STRONG]
    assert requests_sent(bulk, STRONG) == 1 and bulk.generate_count() == 0
    strong_job = LlmBatchJob.objects.get(model=STRONG)
    assert unsure.llm_batch_job_id == strong_job.id

    bulk.verdict_by_model[STRONG] = {**fg.DEFAULT_VERDICT, "confidence": 0.97, "reasoning": "Pro: same quilting."}
    bulk.complete_batch(strong_job.remote_name)
    collect_all()

    unsure.refresh_from_db()
    assert unsure.bucket == Match.Bucket.AUTO
    assert unsure.evidence["llm"]["model"] == STRONG and unsure.evidence["llm"]["reasoning"] == "Pro: same quilting."
    assert unsure.llm_cost_usd == HALF_FLASH + HALF_PRO  # both calls, each at half price
    assert requests_sent(bulk, STRONG) == 1


def test_a_failed_escalation_leaves_the_pair_in_review(bulk):
    product = sku("unsure")
    run([product.id])
    bulk.push(fg.ok(confidence=0.6), model=FAST)
    bulk.push(fg.malformed(), model=STRONG)
    bulk.complete_batch()
    collect_all()
    bulk.complete_batch()

    collect_all()

    match = match_of(product, "unsure")
    assert match.bucket == Match.Bucket.REVIEW
    assert match.evidence["llm"]["error"].startswith(f"escalation to {STRONG} failed")
    assert match.llm_cost_usd > HALF_FLASH  # the malformed answer was billed too


# --- cache and restart -----------------------------------------------------------------------------


def test_a_forced_re_run_after_collection_uses_the_cached_verdicts_without_a_request(bulk):
    product = sku("unsure")
    run([product.id])
    bulk.complete_batch()
    collect_all()
    sent = requests_sent(bulk)

    again = run([product.id], force=True)

    match = match_of(product, "unsure")
    assert match.bucket == Match.Bucket.AUTO and match.evidence["llm"]["cached"] is True
    assert match.llm_cost_usd == 0 and "llm_pending" not in match.evidence
    assert requests_sent(bulk) == sent and LlmBatchJob.objects.count() == 1
    assert llm.spend_for_run(again.id).calls == 0


def test_the_sweep_submits_pairs_a_dead_worker_left_without_a_job(bulk, monkeypatch):
    from matcher import tasks

    product = sku("unsure")
    # As if the worker died after writing the rows and before submitting them.
    monkeypatch.setattr(llm.BatchLlmStage, "after_write", lambda self, counts: None)
    run([product.id])
    waiting = match_of(product, "unsure")
    assert waiting.llm_batch_job_id is None and not LlmBatchJob.objects.exists()
    polled: list[int] = []
    monkeypatch.setattr(tasks.llm_batch_poll, "delay", polled.append)

    tasks.llm_batch_resume()  # too soon: the writing worker may still be about to submit
    assert not LlmBatchJob.objects.exists()
    Match.objects.filter(id=waiting.id).update(updated_at=timezone.now() - timedelta(minutes=30))
    tasks.llm_batch_resume()
    tasks.llm_batch_resume()  # twice: still one job

    job = LlmBatchJob.objects.get()
    waiting.refresh_from_db()
    assert waiting.llm_batch_job_id == job.id and requests_sent(bulk) == 1
    assert polled[-1] == job.id


def test_the_beat_schedule_runs_llm_batch_resume_every_five_minutes_on_the_llm_queue():
    from config.celery import app
    from matcher.tasks import llm_batch_resume

    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == llm_batch_resume.name]
    assert entry["schedule"] == 300
    assert entry["options"]["queue"] == "llm"


def test_beat_sends_llm_batch_resume_to_the_llm_queue(settings):
    import json

    import redis
    from celery.beat import Scheduler

    from config.celery import app

    url = settings.CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1).replace("?virtual_host=", "?db=", 1)
    client = redis.Redis.from_url(url)
    before = set(client.lrange("llm", 0, -1))
    scheduler = Scheduler(app)

    scheduler.apply_async(scheduler.schedule["llm-batch-resume"])

    sent = [raw for raw in client.lrange("llm", 0, -1) if raw not in before]
    try:
        assert [json.loads(raw)["headers"]["task"] for raw in sent] == ["matcher.tasks.llm_batch_resume"]
    finally:
        for raw in sent:
            client.lrem("llm", 0, raw)
