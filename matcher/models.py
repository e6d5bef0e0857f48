"""Catalogue, competitor listings, images, regions and match decisions."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from pgvector.django import VectorField

APPEND_ONLY_UPDATE = "감사 기록은 수정할 수 없습니다 (append-only)."
APPEND_ONLY_DELETE = "감사 기록은 삭제할 수 없습니다 (append-only)."


class AppendOnlyQuerySet(models.QuerySet):
    """For history tables: bulk updates and deletes are refused (a database trigger refuses them too)."""

    def update(self, **kwargs: Any) -> int:
        raise ValidationError(APPEND_ONLY_UPDATE)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValidationError(APPEND_ONLY_DELETE)


class AppendOnlyModel(models.Model):
    """A row written once and never changed: saving an existing row or deleting one is refused.

    Foreign keys to it may still be nulled by Django when the referenced row goes (SET_NULL); the
    tables' triggers allow exactly that.
    """

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValidationError(APPEND_ONLY_UPDATE)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError(APPEND_ONLY_DELETE)


class ImageFile(models.Model):
    """One stored image, once per content hash; products and listings point at it."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to="images/%Y/%m/", max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once the pipeline has found its regions and embedded them with the active embedder.
    analysed_with = models.CharField(max_length=120, blank=True, default="")
    ocr_text = models.TextField(blank=True, default="")
    ocr_done = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}×{self.height}"


class FetchStatus(models.TextChoices):
    PENDING = "pending", "대기 pending"
    OK = "ok", "완료 ok"
    FAILED = "failed", "실패 failed"


class ImageRef(models.Model):
    """Where an image came from and whether we have it yet."""

    source = models.CharField(max_length=2000, help_text="http(s) URL or an import-relative file path")
    position = models.PositiveSmallIntegerField(default=0)
    image = models.ForeignKey(ImageFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    fetch_status = models.CharField(max_length=10, choices=FetchStatus.choices, default=FetchStatus.PENDING)
    fetch_error = models.CharField(max_length=500, blank=True, default="")
    fetch_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]


class Product(models.Model):
    """One of our SKUs."""

    sku = models.CharField(max_length=64, unique=True)
    product_number = models.CharField("품번", max_length=64, blank=True, default="")
    product_number_norm = models.CharField(max_length=64, blank=True, default="", db_index=True)
    brand = models.CharField(max_length=120, blank=True, default="", db_index=True)
    title = models.CharField(max_length=500)
    category = models.CharField(max_length=120, blank=True, default="", db_index=True)
    colour = models.CharField(max_length=60, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    price = models.PositiveIntegerField(help_text="current selling price, KRW")
    cost = models.PositiveIntegerField(null=True, blank=True, help_text="KRW")
    min_price = models.PositiveIntegerField(null=True, blank=True, help_text="explicit minimum price, KRW")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"


class ProductImage(ImageRef):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")

    class Meta(ImageRef.Meta):
        constraints = [
            models.UniqueConstraint(fields=["product", "source"], name="product_image_unique_source"),
        ]


class Listing(models.Model):
    """A competitor's offer found for one of our SKUs."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="listings")
    mall = models.CharField(max_length=60, db_index=True)
    seller = models.CharField(max_length=120, blank=True, default="")
    title = models.CharField(max_length=500)
    price = models.PositiveIntegerField(help_text="KRW")
    shipping_fee = models.PositiveIntegerField(default=0, help_text="KRW")
    url = models.URLField(max_length=2000)
    product_number = models.CharField("품번 (listed)", max_length=64, blank=True, default="")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    # Hash of what the decision depends on (title, price, image hashes): unchanged → not re-decided.
    content_fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["product_id", "price"]
        constraints = [
            models.UniqueConstraint(fields=["product", "url"], name="listing_unique_url_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.mall} {self.title[:40]}"

    @property
    def total_price(self) -> int:
        return self.price + self.shipping_fee


class ListingImage(ImageRef):
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="images")

    class Meta(ImageRef.Meta):
        constraints = [
            models.UniqueConstraint(fields=["listing", "source"], name="listing_image_unique_source"),
        ]


class Region(models.Model):
    """A region of an image with its embedding; one row per (image, region, embedder)."""

    image = models.ForeignKey(ImageFile, on_delete=models.CASCADE, related_name="regions")
    embedder = models.CharField(max_length=120)
    index = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10)
    box = models.JSONField()  # [x0, y0, x1, y1]
    needs_cutout = models.BooleanField(default=False)
    cutout = models.BooleanField(default=False, help_text="embedded after background removal")
    # Dimension depends on the embedder; each embedder gets its own partial HNSW index
    # over the column cast to its dimension (see matcher/vectors.py).
    embedding = VectorField()
    colour = models.JSONField(null=True, blank=True)
    keypoints = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["image_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["image", "embedder", "index", "cutout"], name="region_unique"),
        ]


class ImageAnalysisRecord(models.Model):
    """The pipeline's per-image work (regions, embeddings, colours, keypoints, OCR) for one embedder.

    A compact npz blob (no pickle), keyed by content hash, so a re-run or another SKU that shows the
    same photo computes nothing again; Region rows carry the same embeddings for vector search.
    """

    sha256 = models.CharField(max_length=64)
    embedder = models.CharField(max_length=120)
    data = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sha256", "embedder"], name="image_analysis_unique")]


class AttributeTerm(models.Model):
    """The attribute lexicon: a word in titles or image text that names an attribute value."""

    GROUPS = [
        ("material", "소재 material"),
        ("audience", "대상 audience"),
        ("garment", "의류 종류 garment"),
        ("season", "시즌 season"),
        ("lining", "안감 lining"),
        ("condition", "상태 condition"),
        ("shipping", "배송 shipping"),
        ("colour", "색상 colour"),
        ("sleeve", "소매 sleeve"),
    ]
    group = models.CharField(max_length=20, choices=GROUPS)
    value = models.CharField(max_length=40)
    term = models.CharField(max_length=80)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["group", "value", "term"]
        constraints = [models.UniqueConstraint(fields=["group", "value", "term"], name="attribute_term_unique")]

    def __str__(self) -> str:
        return f"{self.group}:{self.value} ← {self.term}"


class ThresholdSet(AppendOnlyModel):
    """A version of the decision thresholds and weights; the newest one decides.

    Versions are the thresholds' audit log: written once by `matcher.services.threshold_set_create`
    (who, when, the values before and after), never edited or deleted — decisions point at them and a
    database trigger (migration 0008) refuses a change.
    """

    version = models.PositiveIntegerField(unique=True)
    auto_threshold = models.DecimalField(max_digits=4, decimal_places=3, default=0.9)
    review_threshold = models.DecimalField(max_digits=4, decimal_places=3, default=0.7)
    policy = models.JSONField(default=dict, blank=True, help_text="weights and cut-offs of the decision rules")
    note = models.CharField("변경 사유", max_length=300, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Field by field ({"auto_threshold": "0.900", ...}): the previous version's values and this one's.
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    AUDITED_FIELDS = ("auto_threshold", "review_threshold", "policy")
    AUDIT_LABELS = {"auto_threshold": "자동 매칭 기준", "review_threshold": "검토 기준", "policy": "결정 규칙"}

    class Meta:
        ordering = ["-version"]
        verbose_name = "매칭 기준 버전 threshold version"
        verbose_name_plural = "매칭 기준 버전 threshold versions"

    def __str__(self) -> str:
        return f"v{self.version} auto≥{self.auto_threshold} review≥{self.review_threshold}"

    def audit_values(self) -> dict[str, Any]:
        """This version's audited fields as JSON values (Decimals as their text)."""
        return {name: _json_value(getattr(self, name)) for name in self.AUDITED_FIELDS}

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """The fields this version changed: name → (before, after)."""
        return audit_changes(self.before, self.after)

    def changes_text(self) -> str:
        return audit_changes_text(self.changes(), labels=self.AUDIT_LABELS)


def _json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | str | dict | list) else str(value)


def audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """name → (before, after) for every field whose value differs; a created row has an empty `before`."""
    names = list(after) + [name for name in before if name not in after]
    return {n: (before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)}


def audit_changes_text(changes: dict[str, tuple[Any, Any]], *, labels: dict[str, str]) -> str:
    """"자동 매칭 기준: 0.900 → 0.850; …" for an admin column or a history table; "—" when nothing changed."""
    if not changes:
        return "—"
    return "; ".join(
        f"{labels.get(name, name)}: {_shown(old)} → {_shown(new)}" for name, (old, new) in changes.items()
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "예" if value else "아니요"
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else str(value)


class MatchRun(models.Model):
    """A matching job: counts and timings the UI polls."""

    class Scope(models.TextChoices):
        ALL = "all", "전체 catalogue"
        SKUS = "skus", "선택 SKU"

    class Status(models.TextChoices):
        QUEUED = "queued", "대기"
        RUNNING = "running", "진행 중"
        DONE = "done", "완료"
        FAILED = "failed", "실패"

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    product_ids = models.JSONField(default=list, blank=True)
    force = models.BooleanField(default=False, help_text="re-decide listings even if unchanged")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    listings_total = models.PositiveIntegerField(default=0)
    listings_done = models.PositiveIntegerField(default=0)
    listings_skipped = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # per bucket, per expensive stage
    timings = models.JSONField(default=dict, blank=True)  # seconds per stage, summed
    errors = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class MatchRunBatch(models.Model):
    """A slice of a run's SKUs; claimed by one worker at a time so a crash loses nothing.

    A claim is a short lease renewed while the batch works: `heartbeat_at` (database time) is moved on
    every third of `MATCHER_BATCH_LEASE_S` by the holder, `held_by` names it (host:pid), and `attempts`
    numbers the claims, so only the holder of the current claim may finish the batch.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(MatchRun, on_delete=models.CASCADE, related_name="batches")
    product_ids = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    held_by = models.CharField(max_length=200, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # The periodic heal looks for running batches whose heartbeat stopped, across all runs.
            models.Index(
                fields=["heartbeat_at"], name="matchrunbatch_running_hb", condition=models.Q(state="running")
            ),
        ]


class Match(models.Model):
    """The current decision for one (SKU, listing) pair."""

    class Bucket(models.TextChoices):
        AUTO = "auto", "자동 매칭 auto"
        REVIEW = "review", "검토 review"
        REJECT = "reject", "제외 reject"

    class Status(models.TextChoices):
        MATCHED = "matched", "매칭 matched"
        PENDING = "pending", "검토 대기 pending"
        REJECTED = "rejected", "제외 rejected"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="matches")
    listing = models.OneToOneField(Listing, on_delete=models.CASCADE, related_name="match")
    # The listing's content fingerprint this decision was made on: differing now means it changed since.
    listing_fingerprint = models.CharField(max_length=64, blank=True, default="")
    bucket = models.CharField(max_length=10, choices=Bucket.choices)
    # What pricing follows: matched = auto-matched or approved; pending and rejected never count.
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    decided_by_human = models.BooleanField(default=False)
    confidence = models.DecimalField(max_digits=5, decimal_places=4)
    reasons = models.JSONField(default=list)
    evidence = models.JSONField(default=dict)
    embedder = models.CharField(max_length=160)
    prompt_version = models.CharField(max_length=40, blank=True, default="")
    thresholds = models.ForeignKey(ThresholdSet, on_delete=models.PROTECT, related_name="+")
    fingerprint = models.CharField(max_length=64)
    run = models.ForeignKey(MatchRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # For the review queue's default order: how far our price would move if this pair were confirmed.
    money_at_risk = models.PositiveIntegerField(default=0)
    audit_sample = models.BooleanField(default=False, help_text="an already-certain pair sampled for QC review")
    llm_cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    # The Batch API job that holds this pair's LLM request while its verdict is awaited (bulk mode);
    # after the verdict is written back it stays as the record of which job decided it.
    llm_batch_job = models.ForeignKey(
        "LlmBatchJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="matches"
    )
    decided_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-money_at_risk", "id"]
        indexes = [
            models.Index(fields=["status", "-money_at_risk", "id"], name="match_queue_order"),
            models.Index(fields=["product", "status"], name="match_product_status"),
        ]


class LlmVerdictRecord(models.Model):
    """A paid vision-LLM verdict, cached by both images' hashes, prompt version and model."""

    key = models.CharField(max_length=64, unique=True)
    image_a = models.CharField(max_length=64)
    image_b = models.CharField(max_length=64)
    model = models.CharField(max_length=80)
    prompt_version = models.CharField(max_length=40)
    verdict = models.JSONField()
    ok = models.BooleanField(default=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    batch = models.BooleanField(default=False)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey(MatchRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)


def api_token_default_expiry() -> datetime:
    """A new token lives settings.API_TOKEN_LIFETIME_DAYS unless its creator says otherwise."""
    return timezone.now() + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)


class ApiToken(models.Model):
    """A bearer token for the JSON endpoints, allowed only its scopes until it expires; only its hash is stored."""

    class Scope(models.TextChoices):
        INGEST = "ingest", "수집: 경쟁 상품 올리기 (POST /matcher/api/listings)"
        EXPORT = "export", "내보내기: 바뀐 가격 읽기 (GET /pricing/api/changes)"

    name = models.CharField(max_length=80)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    active = models.BooleanField(default=True)
    # No default: whoever makes a token says what it is for (the scraper writes, the shop's upload reads).
    scopes = ArrayField(
        models.CharField(max_length=10, choices=Scope.choices), help_text="이 토큰으로 할 수 있는 일 (scopes)"
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, default=api_token_default_expiry, help_text="비워 두면 만료되지 않습니다 (never expires)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ImportReport(models.Model):
    """What an import did: counts, the rejected rows and the rows imported with a warning, by line.

    A browser upload is imported by a worker: the report exists from the upload on (queued), counts
    its rows as they land (running) and ends done, or failed with `error`. Commands and the API import
    at once and write their report done.
    """

    class Kind(models.TextChoices):
        CATALOG = "catalog", "카탈로그"
        LISTINGS = "listings", "경쟁 상품"
        API = "api", "API"

    class Status(models.TextChoices):
        QUEUED = "queued", "대기 중"
        RUNNING = "running", "가져오는 중"
        DONE = "done", "완료"
        FAILED = "failed", "실패"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=500, help_text="the file's path, or an upload's own name (display only)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DONE)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    stored_name = models.CharField(
        max_length=200, blank=True, default="", help_text="an upload's file in the private imports storage"
    )
    error = models.TextField(blank=True, default="", help_text="why a worker's import failed")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="worker runs of an upload (a crash re-runs it)")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="a running import's last row")
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)
    warned = models.PositiveIntegerField(default=0, help_text="rows imported with a warning (e.g. no floor)")
    warnings = models.JSONField(default=list, blank=True)
    product_ids = models.JSONField(default=list, help_text="SKUs this import touched, for a follow-up match run")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class LlmBatchJob(models.Model):
    """A Gemini Batch API job for a whole-catalogue run: submitted, polled, collected, resumable."""

    class State(models.TextChoices):
        PREPARING = "preparing"
        SUBMITTED = "submitted"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        COLLECTED = "collected"

    run = models.ForeignKey(MatchRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_batches")
    model = models.CharField(max_length=80)
    prompt_version = models.CharField(max_length=40)
    remote_name = models.CharField(max_length=200, blank=True, default="")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PREPARING)
    requests = models.JSONField(default=list, help_text="[{key, match_id, image_a, image_b}] in request order")
    error = models.TextField(blank=True, default="")
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


__all__ = [
    "AppendOnlyModel",
    "AppendOnlyQuerySet",
    "ApiToken",
    "AttributeTerm",
    "FetchStatus",
    "ImageAnalysisRecord",
    "ImageFile",
    "ImportReport",
    "Listing",
    "ListingImage",
    "LlmBatchJob",
    "LlmVerdictRecord",
    "Match",
    "MatchRun",
    "MatchRunBatch",
    "Product",
    "ProductImage",
    "Region",
    "ThresholdSet",
    "audit_changes",
    "audit_changes_text",
]
