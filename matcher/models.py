"""Catalogue, competitor listings, images, regions and match decisions."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import VectorField


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


class ThresholdSet(models.Model):
    """A version of the decision thresholds and weights; the newest active one decides."""

    version = models.PositiveIntegerField(unique=True)
    auto_threshold = models.DecimalField(max_digits=4, decimal_places=3, default=0.9)
    review_threshold = models.DecimalField(max_digits=4, decimal_places=3, default=0.7)
    policy = models.JSONField(default=dict, blank=True, help_text="weights and cut-offs of the decision rules")
    note = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"v{self.version} auto≥{self.auto_threshold} review≥{self.review_threshold}"


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


class ApiToken(models.Model):
    """A bearer token for the scraper's ingest endpoint; only its hash is stored."""

    name = models.CharField(max_length=80)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ImportReport(models.Model):
    """What an import did: counts and the rejected rows with their line numbers."""

    kind = models.CharField(max_length=20)  # catalog / listings / api
    source = models.CharField(max_length=500)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)
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
]
