"""One settings module; everything that differs between machines comes from the environment.

Without DATABASE_URL / REDIS_URL the embedded servers under ./var are used (`python -m config.embedded start`).
"""
from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import environ

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.VAR_DIR

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEBUG else "insecure-demo-key")
if not SECRET_KEY:
    # A per-checkout key so a demo or test run never needs configuration, but never a shared constant.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

_recorded = embedded.recorded_urls()
_default_db = _recorded.database_url if _recorded else f"postgresql://postgres:@/{embedded.DB_NAME}?host={embedded.PG_DIR}"
_default_redis = _recorded.redis_url if _recorded else f"unix://{embedded.REDIS_DIR / 'redis.sock'}"
DATABASE_URL = env.str("DATABASE_URL", default=_default_db)
REDIS_URL = env.str("REDIS_URL", default=_default_redis)

INSTALLED_APPS = [
    "config.apps.AdminConfig",  # Django's admin with our site: logged-in non-staff get the Korean 403
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "matcher",
    "review",
    "pricing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a login refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "matcher.context_processors.pipeline_status",
                "pricing.context_processors.auto_pricing_halt",
            ],
        },
    }
]

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_db_url(url: str, db: int) -> str:
    """The same Redis server, another logical database (broker, cache and limiter stay apart)."""
    if url.startswith("unix://"):
        base = url.split("?", 1)[0]
        return f"{base}?db={db}"
    base = url.rstrip("/")
    parts = base.rsplit("/", 1)
    if len(parts) == 2 and parts[1].isdigit():
        base = parts[0]
    return f"{base}/{db}"


REDIS_DB_OFFSET = env.int("REDIS_DB_OFFSET", default=0)  # tests use another set of logical databases
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _redis_db_url(REDIS_URL, 1 + REDIS_DB_OFFSET),
        "KEY_PREFIX": "pm",
    }
}
RATE_LIMIT_REDIS_URL = _redis_db_url(REDIS_URL, 2 + REDIS_DB_OFFSET)

# Celery: separate queues so image work, LLM calls and ingest scale on their own workers.
_broker = _redis_db_url(REDIS_URL, 0 + REDIS_DB_OFFSET)
# kombu reads a socket URL's database from ?virtual_host=, not ?db= (which it silently ignores, so
# every REDIS_DB_OFFSET would share database 0's queues).
CELERY_BROKER_URL = (
    _broker.replace("unix://", "redis+socket://", 1).replace("?db=", "?virtual_host=", 1)
    if _broker.startswith("unix://") else _broker
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=20 * 60)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "matcher.tasks.image_fetch*": {"queue": "ingest"},
    "matcher.tasks.import_*": {"queue": "ingest"},
    "matcher.tasks.match_*": {"queue": "vision"},
    "matcher.tasks.llm_*": {"queue": "llm"},
    "pricing.tasks.*": {"queue": "default"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# Media: local files by default; S3-compatible storage when several machines share images.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
_media_backend: dict[str, Any]  # a storage's settings: BACKEND and its OPTIONS
if env.str("MEDIA_STORAGE", default="local") == "s3":
    _media_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    _media_backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# Uploaded import files: untrusted, never served. Locally a folder outside MEDIA_ROOT (which /media/
# serves); on S3 a prefix of the same private bucket, so a worker on another machine can read them.
IMPORT_UPLOAD_DIR = env.path("IMPORT_UPLOAD_DIR", default=VAR_DIR / "imports")
_imports_backend: dict[str, Any] = (
    {**_media_backend, "OPTIONS": {**_media_backend["OPTIONS"], "location": "imports"}}
    if _media_backend["BACKEND"].startswith("storages.")
    else {"BACKEND": "django.core.files.storage.FileSystemStorage",
          "OPTIONS": {"location": IMPORT_UPLOAD_DIR, "base_url": None, "file_permissions_mode": 0o600,
                      "directory_permissions_mode": 0o700}}
)
STORAGES = {
    "default": _media_backend,
    "imports": _imports_backend,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --- Login throttling (django-axes) ------------------------------------------------------------
# The axes backend comes first: it refuses a locked-out login before the password is even checked.
# It needs the request, so tests log in with client.force_login (or client.login(request=HttpRequest(), …)).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# A username from one address: guessing at one account locks only that pair, so an attacker can neither
# lock everyone out of the shop nor keep the real user (at another address) out of their own account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a typo or two before the right password is forgotten once it is right
AXES_LOCKOUT_CALLABLE = "config.login_throttle.lockout_response"  # the Korean page
AXES_HTTP_RESPONSE_CODE = 429  # Too Many Requests: the password may well be right
# The client address is REMOTE_ADDR; behind a reverse proxy every login comes from the proxy's address,
# which makes the lock per username (see docs/production.md).

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "ko"
TIME_ZONE = "Asia/Seoul"
# Beat reads crontab entries (the daily QC sample at 06:00) in the shop's time, not UTC.
CELERY_TIMEZONE = TIME_ZONE
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes: failed logins and lockouts are warnings; every successful login at INFO would be noise.
    "loggers": {"PIL": {"level": "WARNING"}, "pgserver": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Image ingest -----------------------------------------------------------------------------
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_BYTES", default=15 * 1024 * 1024)
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", default=40_000_000)
IMAGE_FETCH_TIMEOUT_S = env.float("IMAGE_FETCH_TIMEOUT_S", default=10.0)
IMAGE_FETCH_MAX_REDIRECTS = 5
# Hosts allowed even when they resolve to private addresses (local test servers only).
IMAGE_FETCH_ALLOWED_HOSTS = env.list("IMAGE_FETCH_ALLOWED_HOSTS", default=[])
# Local image paths in CSV imports must sit under one of these folders.
IMPORT_ALLOWED_ROOTS = env.list("IMPORT_ALLOWED_ROOTS", default=[])
# Downloads that time out or meet a 5xx are retried with exponential backoff and jitter.
IMAGE_FETCH_MAX_RETRIES = env.int("IMAGE_FETCH_MAX_RETRIES", default=4)
IMAGE_FETCH_RETRY_BASE_S = env.float("IMAGE_FETCH_RETRY_BASE_S", default=30.0)
IMAGE_FETCH_RETRY_MAX_S = env.float("IMAGE_FETCH_RETRY_MAX_S", default=30 * 60.0)
# Imports uploaded in the browser (/matcher/imports/): the largest file, and how long a running import
# may go without finishing a row before a redelivered task takes it over (a worker that died mid-file).
IMPORT_UPLOAD_MAX_BYTES = env.int("IMPORT_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
IMPORT_UPLOAD_LEASE_S = env.int("IMPORT_UPLOAD_LEASE_S", default=120)
# The scraper's JSON endpoint: listings per request and request body size.
INGEST_API_MAX_ITEMS = env.int("INGEST_API_MAX_ITEMS", default=500)
INGEST_API_MAX_BODY_BYTES = env.int("INGEST_API_MAX_BODY_BYTES", default=4 * 1024 * 1024)
# A new API token (manage.py create_api_token, or its default in the admin) expires after this many days.
API_TOKEN_LIFETIME_DAYS = env.int("API_TOKEN_LIFETIME_DAYS", default=365)

# --- Matching pipeline --------------------------------------------------------------------------
# The model files' folder is MODELS_DIR in the environment (read by matcher.pipeline.weights, which has
# no settings); .env reaches it because read_env above loads .env into the environment.
MATCHER_REGION_FINDER = env.str("MATCHER_REGION_FINDER", default="matcher.pipeline.detect.PoseRegionFinder")
# The detector's input side (0: the finder's default, 640 for YOLO pose). 480 costs ~0.56x the FLOPs;
# regions and keypoints move a little, so check with evaluate_pairs before changing it.
MATCHER_DETECT_IMAGE_SIZE = env.int("MATCHER_DETECT_IMAGE_SIZE", default=0)
# The pose detector in "openvino-bf16" (default: exported once beside the .pt, bfloat16 on CPUs with AMX
# or AVX512-BF16, float32 elsewhere; ~0.6x the CPU of float32, the same region kinds on 320 photos and
# the same buckets on all 827 Luma pairs, boxes within a few pixels), "openvino" (float32: the .pt's
# boxes and keypoints for ~0.8x the CPU of PyTorch) or "torch"; see benchmarks/README.md.
MATCHER_DETECTOR_RUNTIME = env.str("MATCHER_DETECTOR_RUNTIME", default="openvino-bf16")
MATCHER_BACKGROUND_REMOVER = env.str(
    "MATCHER_BACKGROUND_REMOVER", default="matcher.pipeline.segment.RembgRemover"
)
# ISNet in "openvino-bf16" (default: bfloat16 where the CPU has it, float32 elsewhere; ~0.26x the CPU of
# ONNX Runtime, masks within a mean 0.04 grey levels), "openvino" (float32, ~0.9x) or "onnxruntime".
MATCHER_CUTOUT_RUNTIME = env.str("MATCHER_CUTOUT_RUNTIME", default="openvino-bf16")
# "efficientnet" (offline, ships in a registry package) or "open_clip" (needs CLIP weights).
MATCHER_EMBEDDER = env.str("MATCHER_EMBEDDER", default="efficientnet")
# EfficientNet-Lite2 in "openvino" (default: OpenVINO, float32), "onnx" (ONNX Runtime) or "torch" (eager
# PyTorch): the same vectors under one key, OpenVINO with the least CPU. "openvino-bf16": bfloat16 on CPUs
# that have it (AVX512-BF16 / AMX), ~2x less CPU again, but the vectors move (cosine >= 0.994 to the
# float32 ones) and are keyed "efficientnet_lite2:bf16"; every machine of a fleet must then have bfloat16,
# or the workers without it write float32 vectors under the other key (see benchmarks/README.md).
MATCHER_EMBEDDER_RUNTIME = env.str("MATCHER_EMBEDDER_RUNTIME", default="openvino")
OPEN_CLIP_MODEL = env.str("OPEN_CLIP_MODEL", default="ViT-B-32")
OPEN_CLIP_PRETRAINED = env.str("OPEN_CLIP_PRETRAINED", default="laion2b_s34b_b79k")
MATCHER_OCR_ENABLED = env.bool("MATCHER_OCR_ENABLED", default=True)
# "auto": Tesseract's library inside the worker when libtesseract loads (same text as the command,
# ~2.8x less CPU: the models are loaded once, not per pass), else the `tesseract` command; "cli"
# forces the command.
MATCHER_OCR_ENGINE = env.str("MATCHER_OCR_ENGINE", default="auto")
# "lines": read each text-like line the finder marks on its own (default; on the benchmark catalogue
# 31 of 31 near-miss banners read, 0.15 CPU s per photo); "page": Tesseract lays out the whole photo
# (29 of 31, 0.51 CPU s). matcher/pipeline/ocr/ says why. With the command engine ("cli") every line
# is a process of its own (~0.3 CPU s each to load the models): use the library, or "page", there.
MATCHER_OCR_LAYOUT = env.str("MATCHER_OCR_LAYOUT", default="lines")
# "page" layout only. "skip": photos without a text-like line (matcher/pipeline/textgate.py) are not OCRed. Off: on the
# benchmark photos it skipped 14 % of them for ~20 ms each, missed no banner, and saves ~2 % of a
# competitor image's CPU; not worth a banner it might miss on photos it was not tuned on.
MATCHER_OCR_TEXT_GATE = env.str("MATCHER_OCR_TEXT_GATE", default="off")
MATCHER_TORCH_THREADS = env.int("MATCHER_TORCH_THREADS", default=0)  # 0: one per core
# Idle OpenMP threads (torch, so YOLO pose) sleep instead of spinning: on cores shared with another
# worker, PostgreSQL or Tesseract the spinning cost ~40 % more CPU per detection. OpenMP reads this
# once, when torch loads, so it is put in the environment here, before any worker code imports torch
# (matcher.pipeline.runtime does the same for code run without Django). "ACTIVE" restores spinning.
MATCHER_OMP_WAIT_POLICY = env.str("MATCHER_OMP_WAIT_POLICY", default="PASSIVE")
os.environ.setdefault("OMP_WAIT_POLICY", MATCHER_OMP_WAIT_POLICY)
MATCHER_BATCH_SIZE = env.int("MATCHER_BATCH_SIZE", default=8)  # at most this many SKUs per task
# ...and at most this many listings (a SKU with more gets a task of its own): the work of a task
# grows with its listings. ~120 competitor images at ~1 CPU s each stays well inside the 15-minute
# soft time limit even on a busy 2-core worker.
MATCHER_BATCH_LISTINGS = env.int("MATCHER_BATCH_LISTINGS", default=100)
# A claimed batch is a short lease its worker renews every third of it while it works (however long
# the batch takes); a batch whose worker died is claimable again this long after its last heartbeat.
MATCHER_BATCH_LEASE_S = env.int("MATCHER_BATCH_LEASE_S", default=90)
# How often celery beat looks for such batches and re-enqueues them (matcher.tasks.match_runs_heal).
MATCHER_BATCH_HEAL_S = env.int("MATCHER_BATCH_HEAL_S", default=30)

# --- Vision LLM (Gemini) -----------------------------------------------------------------------
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
GEMINI_BASE_URL = env.str("GEMINI_BASE_URL", default="")  # tests point this at a local fake server
GEMINI_MODEL = env.str("GEMINI_MODEL", default="gemini-flash-latest")
GEMINI_ESCALATION_MODEL = env.str("GEMINI_ESCALATION_MODEL", default="gemini-2.5-pro")
GEMINI_MEDIA_RESOLUTION = env.str("GEMINI_MEDIA_RESOLUTION", default="MEDIA_RESOLUTION_MEDIUM")
GEMINI_RPM = env.int("GEMINI_RPM", default=300)
GEMINI_TPM = env.int("GEMINI_TPM", default=1_000_000)
GEMINI_TIMEOUT_S = env.float("GEMINI_TIMEOUT_S", default=60.0)
GEMINI_MAX_RETRIES = env.int("GEMINI_MAX_RETRIES", default=4)
# First retry waits up to this (full jitter), doubling per attempt; a provider's retry hint wins.
GEMINI_BACKOFF_BASE_S = env.float("GEMINI_BACKOFF_BASE_S", default=1.0)
# prompts/<version>.md; part of the verdict cache key and stored on every verdict.
GEMINI_PROMPT_VERSION = env.str("GEMINI_PROMPT_VERSION", default="verify_v1")
# A match run over at least this many (SKU, listing) pairs verifies through the Batch API (half
# price, answers within hours); smaller runs and single SKUs verify online. 0: always online.
GEMINI_BATCH_MIN_PAIRS = env.int("GEMINI_BATCH_MIN_PAIRS", default=2500)
GEMINI_DAILY_SPEND_CAP_USD = Decimal(env.str("GEMINI_DAILY_SPEND_CAP_USD", default="20"))
# Who decides price proposals: admins always; merchandisers too for moves up to this many percent
# (0: admins only, the default). pricing/deciders.py.
PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT = Decimal(env.str("PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT", default="0"))
USD_TO_KRW = Decimal(env.str("USD_TO_KRW", default="1400"))
# USD per million tokens (input, output); batch jobs are billed at half.
GEMINI_PRICES_PER_MTOK = {
    "gemini-flash-latest": (Decimal("0.30"), Decimal("2.50")),
    "gemini-2.5-flash": (Decimal("0.30"), Decimal("2.50")),
    "gemini-2.5-pro": (Decimal("1.25"), Decimal("10.00")),
}
PROMPTS_DIR = BASE_DIR / "prompts"

# --- Review ------------------------------------------------------------------------------------
REVIEW_CLAIM_SECONDS = env.int("REVIEW_CLAIM_SECONDS", default=300)

# --- Alerts (pricing/alerts) ------------------------------------------------------------------
# E-mail goes through Django's mail settings; the default backend prints to the worker's log.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="pricematch@localhost")
# New alerts by e-mail: off unless switched on; to ALERT_EMAILS, else to every admin with an e-mail.
ALERT_EMAIL_ENABLED = env.bool("ALERT_EMAIL_ENABLED", default=False)
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# A Slack-compatible incoming webhook (POST {"text": …}); https only, public addresses only.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_TIMEOUT_S = env.float("ALERT_WEBHOOK_TIMEOUT_S", default=10.0)
# Hosts allowed plain http and private addresses (local test receivers only).
ALERT_WEBHOOK_ALLOWED_HOSTS = env.list("ALERT_WEBHOOK_ALLOWED_HOSTS", default=[])
# How often beat evaluates the alerts (seconds).
ALERT_EVALUATE_S = env.int("ALERT_EVALUATE_S", default=5 * 60)
