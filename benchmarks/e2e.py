"""End to end: a generated catalogue imported with the real commands, decided by real Celery workers.

1. Data: `matcher.demo.generate` draws at most 30 distinct SKUs (its styles × colours), so a
   larger catalogue is made of replicas: replica r of a SKU gets every image (ours and the
   listings') slightly rescaled and re-encoded, so each replica's files have new content hashes
   and the per-image cache saves nothing; titles, prices and the truth stay the same, listing
   URLs get `?r=` so every listing is its own row. SKUs are prefixed with the dataset's size so
   datasets never share rows.
2. Import: `python manage.py import_catalog` and `import_listings`, once per dataset.
3. A match run (`matcher.runs.match_run_start`, force) over the dataset's SKUs, processed by
   `celery -A config worker -Q vision,default,ingest,llm -c 1` processes, with the LLM cascade on
   against the local fake Gemini server. Before each run the dataset's decisions and the analysis
   cache of its images are deleted, so every run does the full work.
4. `e2e_speedup_2_workers`: the same run on a subset, first one worker pinned to core 0, then
   two workers pinned to cores 0 and 1, one thread each.

Everything runs in the bench database and Redis DBs 4-6 (benchmarks/common.py).
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_VAR, REPO, bench_env, cpu_speed, git_revision

BASE_SKUS = 30  # what matcher.demo.generate can draw distinct
QUEUES = ("vision", "default", "ingest", "llm")


# --- data ---------------------------------------------------------------------------------------------


def _replica_image(src: Path, dst: Path, replica: int) -> None:
    from PIL import Image

    with Image.open(src) as source:
        im = source.convert("RGB")
        if replica:
            scale = 1.0 - 0.013 * replica
            im = im.resize((max(16, round(im.width * scale)), max(16, round(im.height * scale))),
                           Image.Resampling.BICUBIC)
        im.save(dst, "JPEG", quality=92 - (replica % 5), optimize=False)


def dataset(n_skus: int, listings_per_sku: int) -> tuple[Path, str]:
    """(folder with catalog.csv, listings.csv and images/, SKU prefix); made once, then reused."""
    prefix = f"B{n_skus}x{listings_per_sku}-"
    out = BENCH_VAR / f"e2e_{n_skus}x{listings_per_sku}"
    if (out / "ready").is_file():
        return out, prefix
    base_n = min(n_skus, BASE_SKUS)
    base = BENCH_VAR / f"e2e_base_{base_n}x{listings_per_sku}"
    if not (base / "truth.csv").is_file():
        from matcher.demo.generate import generate

        t = time.perf_counter()
        print(f"  generating {base_n} SKUs × {listings_per_sku} listings in {base} …", flush=True)
        demo = generate(base, n_skus=base_n, listings_per_sku=listings_per_sku)
        print(f"  generated {demo.n_images} images in {time.perf_counter() - t:.0f} s", flush=True)
    with (base / "catalog.csv").open(encoding="utf-8") as f:
        catalogue = list(csv.DictReader(f))
    with (base / "listings.csv").open(encoding="utf-8") as f:
        listings = list(csv.DictReader(f))
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    replicas = math.ceil(n_skus / len(catalogue))
    t = time.perf_counter()

    def images_of(value: str, replica: int) -> str:
        paths = []
        for rel in [p for p in value.split("|") if p]:
            name = f"r{replica:02d}_{Path(rel).name}"
            _replica_image(base / rel, out / "images" / name, replica)
            paths.append(f"images/{name}")
        return "|".join(paths)

    cat_rows: list[dict[str, str]] = []
    lst_rows: list[dict[str, str]] = []
    for replica in range(replicas):
        for row in catalogue:
            if len(cat_rows) >= n_skus:
                break
            sku = row["sku"]
            new_sku = f"{prefix}{sku}" + (f"-R{replica:02d}" if replica else "")
            cat_rows.append({**row, "sku": new_sku, "images": images_of(row["images"], replica)})
            for lst in (x for x in listings if x["sku"] == sku):
                url = lst["url"] + (f"?r={replica}" if replica else "")
                lst_rows.append({**lst, "sku": new_sku, "url": url, "images": images_of(lst["images"], replica)})
    for name, rows in (("catalog.csv", cat_rows), ("listings.csv", lst_rows)):
        with (out / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
    print(f"  wrote {len(cat_rows)} SKUs, {len(lst_rows)} listings in {time.perf_counter() - t:.0f} s", flush=True)
    (out / "ready").write_text("1")
    return out, prefix


def truth_of(n_skus: int, listings_per_sku: int) -> dict[str, dict[str, str]]:
    """The generator's truth by listing URL (replicas share their base listing's: URL up to `?r=`)."""
    base = BENCH_VAR / f"e2e_base_{min(n_skus, BASE_SKUS)}x{listings_per_sku}"
    if not (base / "truth.csv").is_file():
        return {}
    with (base / "truth.csv").open(encoding="utf-8") as f:
        return {row["url"]: row for row in csv.DictReader(f)}


def precision_by_truth(bucket_by_url: dict[str, str], truth: dict[str, dict[str, str]],
                       llm_agreed: set[str] | None = None) -> dict[str, Any]:
    """Buckets by the generator's truth, the automatic matches' precision and the false ones' kinds.

    llm_agreed: the URLs whose decision counted an agreeing LLM verdict. The fake Gemini server says
    "match" to every pair, so the automatic matches are also split into those the rules made alone
    (the matcher's own precision) and those the fake's "yes" lifted (what an LLM that always agrees
    could do past the rules' remaining guards: colour, conflicts, a second kind of evidence)."""
    by_truth: dict[str, dict[str, int]] = {}
    false_auto: dict[str, int] = {}
    auto_by: dict[str, dict[str, int]] = {"rules": {"1": 0, "0": 0}, "llm": {"1": 0, "0": 0}}
    for url, bucket in bucket_by_url.items():
        row = truth.get(url.split("?r=")[0])
        if row is None:
            continue
        same = row["same_product"]
        by_truth.setdefault(same, {}).setdefault(bucket, 0)
        by_truth[same][bucket] += 1
        if bucket == "auto":
            auto_by["llm" if llm_agreed and url in llm_agreed else "rules"][same] += 1
        if bucket == "auto" and same == "0":
            false_auto[row["kind"]] = false_auto.get(row["kind"], 0) + 1
    autos = sum(by_truth.get(t, {}).get("auto", 0) for t in ("0", "1"))
    positives = sum(by_truth.get("1", {}).values())
    rules = auto_by["rules"]["1"] + auto_by["rules"]["0"]
    return {
        "buckets_by_truth": by_truth,
        "auto_precision": round(by_truth.get("1", {}).get("auto", 0) / autos, 4) if autos else None,
        "auto_recall": round(by_truth.get("1", {}).get("auto", 0) / positives, 4) if positives else None,
        "false_auto_by_kind": false_auto,
        "auto_precision_rules_alone": round(auto_by["rules"]["1"] / rules, 4) if rules else None,
        "auto_true_false_by_rules": [auto_by["rules"]["1"], auto_by["rules"]["0"]],
        "auto_true_false_lifted_by_llm": [auto_by["llm"]["1"], auto_by["llm"]["0"]],
    }


def llm_agreed_urls(matches) -> set[str]:
    """Listings whose decision counted an agreeing LLM verdict (decide()'s reason line)."""
    return {url for url, reasons in matches.values_list("listing__url", "reasons")
            if any(r.startswith("agrees: LLM") for r in reasons or [])}


def _manage(*args: str) -> str:
    env = {**os.environ, **bench_env()}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout.strip()


def import_dataset(folder: Path, prefix: str) -> dict[str, Any]:
    """Import with the real commands unless the bench database already holds this dataset."""
    from matcher.models import Listing, Product

    with (folder / "catalog.csv").open(encoding="utf-8") as f:
        n_skus = sum(1 for _ in csv.DictReader(f))
    with (folder / "listings.csv").open(encoding="utf-8") as f:
        n_listings = sum(1 for _ in csv.DictReader(f))
    have_p = Product.objects.filter(sku__startswith=prefix).count()
    have_l = Listing.objects.filter(product__sku__startswith=prefix).count()
    if have_p == n_skus and have_l == n_listings:
        return {"skus": n_skus, "listings": n_listings, "imported_now": False}
    t = time.perf_counter()
    print("  " + _manage("import_catalog", str(folder / "catalog.csv"), "--no-progress").splitlines()[0], flush=True)
    catalog_s = time.perf_counter() - t
    t = time.perf_counter()
    print("  " + _manage("import_listings", str(folder / "listings.csv"), "--no-progress").splitlines()[0], flush=True)
    listings_s = time.perf_counter() - t
    return {"skus": n_skus, "listings": n_listings, "imported_now": True,
            "import_catalog_s": round(catalog_s, 1), "import_listings_s": round(listings_s, 1),
            "import_listings_per_s": round(n_listings / listings_s, 1)}


# --- state between runs -------------------------------------------------------------------------------


def reset_decisions(product_ids: list[int]) -> float:
    """Forget the decisions and the cached per-image work for these SKUs, so the next run does it all;
    then VACUUM (ANALYZE) the tables it thinned. Returns the vacuum's seconds.

    The deletes run to thousands of rows (regions carry vectors under an HNSW index, whose vacuum is
    costly). Left to autovacuum, that work lands inside whichever measured run follows a minute later:
    in one 24-SKU pair of runs PostgreSQL spent 0.8 CPU s beside one worker and 37.6 beside two, for
    the same work. Production never deletes a catalogue's analyses before a run.
    """
    from django.db import connection
    from django.db.models import Q

    from matcher.models import (
        ImageAnalysisRecord,
        ImageFile,
        ListingImage,
        LlmVerdictRecord,
        Match,
        ProductImage,
        Region,
    )

    image_ids = set(ProductImage.objects.filter(product_id__in=product_ids).values_list("image_id", flat=True))
    image_ids |= set(ListingImage.objects.filter(listing__product_id__in=product_ids).values_list("image_id", flat=True))
    image_ids.discard(None)
    shas = list(ImageFile.objects.filter(id__in=image_ids).values_list("sha256", flat=True))
    Match.objects.filter(product_id__in=product_ids).delete()
    for start in range(0, len(shas), 2000):
        chunk = shas[start : start + 2000]
        ImageAnalysisRecord.objects.filter(sha256__in=chunk).delete()
        LlmVerdictRecord.objects.filter(Q(image_a__in=chunk) | Q(image_b__in=chunk)).delete()
    Region.objects.filter(image_id__in=list(image_ids)).delete()
    ImageFile.objects.filter(id__in=list(image_ids)).update(analysed_with="", ocr_done=False, ocr_text="")

    tables = ", ".join(connection.ops.quote_name(m._meta.db_table)
                       for m in (Match, ImageAnalysisRecord, LlmVerdictRecord, Region, ImageFile))
    t = time.perf_counter()
    with connection.cursor() as cursor:  # VACUUM cannot run in a transaction: the bench runs in autocommit
        cursor.execute(f"VACUUM (ANALYZE) {tables}")
    return round(time.perf_counter() - t, 1)


def _redis():
    import redis
    from django.conf import settings

    url = settings.CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1).replace("?virtual_host=", "?db=", 1)
    client = redis.Redis.from_url(url)
    if client.connection_pool.connection_kwargs.get("db", 0) != int(settings.REDIS_DB_OFFSET):
        raise RuntimeError(f"the bench broker is not Redis database {settings.REDIS_DB_OFFSET}: {url}")
    return client


def clear_broker() -> None:
    """Drop tasks a previous (crashed) bench run left in the bench broker database, and only there.

    A message can still come back (a dying worker restores what it held), so the unfinished batches
    of earlier bench runs are closed too: a stale delivery then finds nothing to claim.
    """
    from matcher.models import MatchRun, MatchRunBatch

    r = _redis()
    r.delete(*QUEUES, "unacked", "unacked_index", "unacked_mutex")
    MatchRunBatch.objects.exclude(state=MatchRunBatch.State.DONE).update(state=MatchRunBatch.State.FAILED,
                                                                        error="closed by the benchmark")
    MatchRun.objects.filter(status__in=[MatchRun.Status.QUEUED, MatchRun.Status.RUNNING]).update(
        status=MatchRun.Status.FAILED)


def queued_tasks() -> int:
    r = _redis()
    return sum(r.llen(q) for q in QUEUES) + r.hlen("unacked")


# --- workers ------------------------------------------------------------------------------------------


class Workers:
    """Celery worker processes started (and stopped) by this benchmark, optionally pinned to cores."""

    def __init__(self, *, count: int, pinned: bool, threads: int, fake_url: str, tag: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        env = {
            **os.environ, **bench_env(),
            "MATCHER_TORCH_THREADS": str(threads), "MATCHER_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "GEMINI_API_KEY": "fake", "GEMINI_BASE_URL": fake_url,
            # The fake answers at once; a real account's quota would be the limit, not this code.
            "GEMINI_RPM": "6000", "GEMINI_TPM": "100000000", "GEMINI_DAILY_SPEND_CAP_USD": "100000",
            # A batch is one SKU here (see run()); on a machine shared with other jobs even that can
            # outlast the production limits, and a killed batch would measure the limit, not the work.
            "CELERY_TASK_SOFT_TIME_LIMIT": "7200", "CELERY_TASK_TIME_LIMIT": "7500",
            **(extra_env or {}),
        }
        for i in range(count):
            log = BENCH_VAR / f"worker_{tag}_{i}.log"
            cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES), "-c", "1",
                   "-n", f"bench{tag}{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "--loglevel=INFO"]
            if pinned:
                cmd = ["taskset", "-c", str(i % (os.cpu_count() or 1)), *cmd]
            self.logs.append(log)
            self.procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        for proc, log in zip(self.procs, self.logs):
            while b" ready." not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker not ready after {timeout} s: {log}")
                time.sleep(0.5)

    def cpu_seconds(self) -> float:
        """CPU time of the worker processes and their pool children so far."""
        import psutil

        total = 0.0
        for proc in self.procs:
            try:
                p = psutil.Process(proc.pid)
                for q in [p, *p.children(recursive=True)]:
                    t = q.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- one run ------------------------------------------------------------------------------------------


def write_back(pool: Workers, fake: Any, run_id: int, timeout_s: float) -> dict[str, Any]:
    """The run's Batch API jobs finished by the fake and collected by the workers, as celery beat's
    llm_batch_resume does every few minutes in production: the verdicts' write-back, timed."""
    from matcher.models import LlmBatchJob, Match
    from matcher.tasks import llm_batch_resume

    awaiting = Match.objects.filter(
        run_id=run_id, evidence__has_key="llm_pending", decided_by_human=False, status=Match.Status.PENDING
    )
    open_jobs = LlmBatchJob.objects.filter(run_id=run_id).exclude(
        state__in=[LlmBatchJob.State.COLLECTED, LlmBatchJob.State.FAILED]
    )
    pairs = awaiting.count()
    cpu0, started, kicked = pool.cpu_seconds(), time.time(), 0.0
    while awaiting.exists() or open_jobs.exists():
        if time.time() - started > timeout_s:
            raise RuntimeError(f"write-back of run #{run_id} not done after {timeout_s:.0f} s: {awaiting.count()} pairs wait")
        fake.complete_batch()  # every job submitted so far (escalations make new ones)
        if not queued_tasks() and time.time() - kicked > 2:
            llm_batch_resume.delay()
            kicked = time.time()
        time.sleep(0.5)
    while queued_tasks() and time.time() - started < timeout_s:  # re-pricing after the verdicts
        time.sleep(0.5)
    return {
        "pairs": pairs,
        "jobs": LlmBatchJob.objects.filter(run_id=run_id).count(),
        "seconds": round(time.time() - started, 1),
        "worker_cpu_s": round(pool.cpu_seconds() - cpu0, 1),
    }


def service_cpu_seconds() -> dict[str, float]:
    """CPU time so far of what shares the cores with the workers: PostgreSQL (every server process),
    Redis, and this bench process (the fake Gemini server answers in its threads; the run is polled
    from it). Compared before and after a run: backends that start and exit inside it are missed, and
    the workers keep their connections open (CONN_MAX_AGE), so that is little."""
    import psutil

    out = {"postgres": 0.0, "redis": 0.0, "bench_process": 0.0}
    for proc in psutil.process_iter(["name"]):
        name = (proc.info.get("name") or "").lower()
        key = "postgres" if name.startswith("postgres") else "redis" if name.startswith("redis") else None
        if key is None:
            continue
        try:
            t = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out[key] += t.user + t.system
    own = psutil.Process().cpu_times()
    out["bench_process"] = own.user + own.system  # not its children: the workers are counted on their own
    return out


def _service_cpu_spent(before: dict[str, float]) -> dict[str, float]:
    after = service_cpu_seconds()
    return {k: round(max(0.0, after[k] - before.get(k, 0.0)), 1) for k in after}


def speedup_llm_mode(choice: str, main_listings: int) -> str:
    """"online" or "batch" for the pinned-worker runs: forced, or what the main run over the whole
    dataset gets (matcher.llm.batch_mode_for_pairs, as batch_mode_for_run decides for a run)."""
    from matcher.llm import batch_mode_for_pairs

    if choice in ("online", "batch"):
        return choice
    if choice != "as-main":
        raise ValueError(f"unknown LLM mode {choice!r}: as-main, online or batch")
    return "batch" if batch_mode_for_pairs(main_listings) else "online"


def match_run(*, product_ids: list[int], workers: int, pinned: bool, threads: int, fake_url: str, tag: str,
              batch_size: int | None, timeout_s: float, truth: dict[str, dict[str, str]] | None = None,
              fake: Any = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One forced match run processed by `workers` Celery workers; batch_size None keeps the production
    batching (MATCHER_BATCH_LISTINGS listings, MATCHER_BATCH_SIZE SKUs at most). With `fake` (the fake
    Gemini server) the Batch API jobs the run submitted are then finished and written back, and timed."""
    from django.test import override_settings

    from matcher.models import ListingImage, Match, MatchRun
    from matcher.runs import match_run_start

    vacuum_s = reset_decisions(product_ids)
    clear_broker()
    speed_before = cpu_speed()
    pool = Workers(count=workers, pinned=pinned, threads=threads, fake_url=fake_url, tag=tag, extra_env=extra_env)
    try:
        pool.wait_ready()
        cpu0 = pool.cpu_seconds()
        services0 = service_cpu_seconds()
        started = time.time()
        with override_settings(**({} if batch_size is None else {"MATCHER_BATCH_SIZE": batch_size})):
            run = match_run_start(product_ids=product_ids, force=True)
        next_report = started + PROGRESS_EVERY_S
        while True:
            run.refresh_from_db()
            if run.status in (MatchRun.Status.DONE, MatchRun.Status.FAILED):
                break
            if time.time() - started > timeout_s:
                raise RuntimeError(f"run #{run.pk} not done after {timeout_s:.0f} s: {run.batches_done}/{run.batches_total}")
            if time.time() >= next_report:
                # A long run (hours at full size) leaves a trail: if it is cut short, the log still
                # says how far it got and at what CPU cost per listing.
                next_report += PROGRESS_EVERY_S
                spent = pool.cpu_seconds() - cpu0
                print(f"    [{tag}] {time.time() - started:.0f} s: batches {run.batches_done}/{run.batches_total}, "
                      f"listings {run.listings_done}, worker CPU {spent:.0f} s"
                      + (f" ({spent / run.listings_done:.2f} s per listing)" if run.listings_done else ""), flush=True)
            time.sleep(1)
        finished = run.finished_at.timestamp() if run.finished_at else time.time()
        cpu = pool.cpu_seconds() - cpu0
        services_cpu = _service_cpu_spent(services0)
        drain_started = time.time()
        while queued_tasks() and time.time() - drain_started < 300:  # re-pricing tasks after the decisions
            time.sleep(1)
        drain_s = time.time() - drain_started
        decided = Match.objects.filter(run_id=run.pk)
        before_write_back = dict(decided.values_list("listing__url", "bucket"))
        llm_before = llm_agreed_urls(decided)
        wb = write_back(pool, fake, run.pk, timeout_s) if fake is not None else None
    finally:
        pool.stop()
    elapsed = finished - started
    images = ListingImage.objects.filter(listing__match__run_id=run.pk, fetch_status="ok").count()
    buckets = bucket_counts(before_write_back)
    counts = run.counts or {}
    pairs = max(1, run.listings_done)
    analysed = max(1, counts.get("stage:region_images", 0))  # images analysed (cache misses)
    return {
        "run_id": run.pk,
        # A section can be re-run in parts (--e2e-skip-main / --e2e-skip-speedup): each run names its code.
        "revision": git_revision(),
        "status": run.status,
        "workers": workers,
        "pinned": pinned,
        "threads_per_worker": threads,
        "batch_size": batch_size,
        "batches": run.batches_total,
        "skus": len(product_ids),
        "listings_decided": run.listings_done,
        "failures": run.failures,
        "images_decided": images,
        "seconds": round(elapsed, 1),
        "images_per_minute": round(images / elapsed * 60, 1),
        "listings_per_minute": round(run.listings_done / elapsed * 60, 1),
        "worker_cpu_s": round(cpu, 1),
        "worker_cpu_s_per_image": round(cpu / images, 3) if images else None,
        # CPU the workers did not spend but the same cores did, over the same interval.
        "other_cpu_s": services_cpu,
        "vacuum_s_before_run": vacuum_s,
        "drain_s_after_run": round(drain_s, 1),
        "buckets": buckets,
        # Against the generator's truth; review pairs still awaiting a Batch API verdict count as review.
        **precision_by_truth(before_write_back, truth or {}, llm_before),
        # The Batch API's verdicts written back: its time counts as the run's too. The fake says "match"
        # (confidence 0.93) to every pair, so the buckets after it show how far an LLM that always
        # agrees could lift pairs the rules still guard (colour, conflicts), not the matcher's precision.
        **({
            "write_back": {
                **wb,
                "buckets": bucket_counts(dict(decided.values_list("listing__url", "bucket"))),
                "with_an_always_yes_llm": precision_by_truth(
                    dict(decided.values_list("listing__url", "bucket")), truth or {}, llm_agreed_urls(decided)),
            },
            "images_per_minute_with_write_back": round(images / (elapsed + wb["seconds"]) * 60, 1),
            "worker_cpu_s_per_image_with_write_back": round((cpu + wb["worker_cpu_s"]) / images, 3) if images else None,
        } if wb is not None else {}),
        **llm_fractions(counts, pairs),
        "geometry_checks_per_pair": round(counts.get("stage:geometry_checks", 0) / pairs, 3),
        "images_analysed": counts.get("stage:region_images", 0),
        "fraction_images_cutout": round(counts.get("stage:cutout_images", 0) / analysed, 4),
        "fraction_images_ocr": round(counts.get("stage:ocr_images", 0) / analysed, 4),
        "fraction_images_keypoints": round(counts.get("stage:keypoint_images", 0) / analysed, 4),
        "embedded_crops_per_image": round(counts.get("stage:embedded_crops", 0) / analysed, 3),
        "counts": counts,
        "timings_s": run.timings,
        "errors": (run.errors or [])[:5],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        # GFLOP per CPU s of a one-thread matmul before and after: this VM's speed drifts (common.cpu_speed).
        "cpu_speed_gflops_before_after": [speed_before, cpu_speed()],
    }


def bucket_counts(bucket_by_url: dict[str, str]) -> dict[str, int]:
    return dict(Counter(bucket_by_url.values()))


def llm_fractions(counts: dict[str, Any], pairs: int) -> dict[str, float]:
    """Share of decided pairs sent to the vision LLM: online calls (`llm_pairs`) and requests submitted
    through the Batch API (`llm_batch_requests`, which a run with many uncertain pairs uses instead)."""
    online = counts.get("llm_pairs", 0) / max(1, pairs)
    batch = counts.get("llm_batch_requests", 0) / max(1, pairs)
    return {"fraction_pairs_llm": round(online + batch, 4), "fraction_pairs_llm_online": round(online, 4),
            "fraction_pairs_llm_batch": round(batch, 4)}


# How often a running match run prints its progress.
PROGRESS_EVERY_S = 120

SIZES = {
    # (SKUs, listings per SKU, SKUs in each speed-up run)
    "quick": (4, 10, 4),
    "full": (200, 50, 24),
}


def run(*, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.common import django_setup

    django_setup()
    sys.path.insert(0, str(REPO))
    from matcher.models import Listing, Product
    from tests.fakes.gemini_server import FakeGemini

    n_skus, per_sku, speed_skus = SIZES["quick" if quick else "full"]
    n_skus = int(options.get("e2e_skus") or n_skus)
    per_sku = int(options.get("e2e_listings") or per_sku)
    speed_skus = int(options.get("e2e_speedup_skus") or speed_skus)
    cores = os.cpu_count() or 1
    timeout = 12 * 3600

    folder, prefix = dataset(n_skus, per_sku)
    imported = import_dataset(folder, prefix)
    ids = list(Product.objects.filter(sku__startswith=prefix, active=True).order_by("id").values_list("id", flat=True))
    if options.get("e2e_main_skus"):
        ids = ids[: int(options["e2e_main_skus"])]

    truth = truth_of(n_skus, per_sku)
    fake = FakeGemini()
    fake_url = fake.start()
    results: dict[str, Any] = {"e2e_dataset": {"skus": n_skus, "listings_per_sku": per_sku, **imported}}
    try:
        if not options.get("e2e_skip_main"):
            # One worker with a thread per core, or (--e2e-main-workers N) N single-threaded workers
            # pinned to their own cores: the layout the README recommends for a worker machine.
            n_workers = max(1, int(options.get("e2e_main_workers") or 1))
            threads = cores if n_workers == 1 else 1
            print(f"  main run: {len(ids)} active SKUs, {n_workers} worker(s) × {threads} thread(s) …", flush=True)
            # Production batching: batches are cut by listing count (MATCHER_BATCH_LISTINGS), so SKUs with
            # 50 listings go two to a batch and a batch stays inside the task time limit.
            main = match_run(product_ids=ids, workers=n_workers, pinned=n_workers > 1, threads=threads,
                             fake_url=fake_url, tag="main", batch_size=None, timeout_s=timeout, truth=truth,
                             fake=fake)
            print(f"    {main['images_decided']} images in {main['seconds']} s → {main['images_per_minute']} /min",
                  flush=True)
            results.update({
                "e2e_images_per_minute": main["images_per_minute"],
                "e2e_main_workers": n_workers,
                "e2e_main_threads_per_worker": threads,
                "e2e_worker_cpu_s_per_image": main["worker_cpu_s_per_image"],
                "e2e_cpu_speed_gflops_before_after": main["cpu_speed_gflops_before_after"],
                "e2e_fraction_pairs_llm": main["fraction_pairs_llm"],
                "e2e_fraction_pairs_llm_batch": main["fraction_pairs_llm_batch"],
                "e2e_geometry_checks_per_pair": main["geometry_checks_per_pair"],
                "e2e_auto_precision": main["auto_precision"],
                "e2e_auto_recall": main["auto_recall"],
                "e2e_auto_precision_rules_alone": main["auto_precision_rules_alone"],
                "e2e_auto_true_false_lifted_by_llm": main["auto_true_false_lifted_by_llm"],
                "e2e_false_auto_by_kind": main["false_auto_by_kind"],
                # On two cores nobody else uses: what the CPU time per image allows.
                "e2e_images_per_minute_cpu_bound": round(2 * 60 / main["worker_cpu_s_per_image"], 1)
                if main["worker_cpu_s_per_image"] else None,
                "e2e_listings_per_minute": main["listings_per_minute"],
                "e2e_images_per_listing": round(main["images_decided"] / max(1, main["listings_decided"]), 3),
                "e2e_fraction_images_cutout": main["fraction_images_cutout"],
                "e2e_fraction_images_ocr": main["fraction_images_ocr"],
                "e2e_fraction_images_keypoints": main["fraction_images_keypoints"],
                "e2e_embedded_crops_per_image": main["embedded_crops_per_image"],
                "e2e_images_analysed_per_competitor_image": round(
                    main["images_analysed"] / max(1, main["images_decided"]), 3),
                # The Batch API's verdicts written back after the run (the fake finishes its jobs at once).
                **({
                    "e2e_images_per_minute_with_write_back": main["images_per_minute_with_write_back"],
                    "e2e_worker_cpu_s_per_image_with_write_back": main["worker_cpu_s_per_image_with_write_back"],
                    "e2e_write_back_s": main["write_back"]["seconds"],
                    "e2e_write_back_pairs": main["write_back"]["pairs"],
                } if "write_back" in main else {}),
                "e2e_main_run": main,
                "e2e_fake_llm_requests": fake.generate_count(),
            })
        if not options.get("e2e_skip_speedup") and cores >= 2:
            subset = ids[:speed_skus]
            # Enough batches that two workers share the work evenly.
            batch = max(1, min(8, len(subset) // 8))
            llm_mode = speedup_llm_mode(options.get("e2e_speedup_llm") or "as-main",
                                        Listing.objects.filter(product_id__in=ids).count())
            # The subset is smaller than the whole run: without this it would ask the LLM online (the
            # fake answering on these same cores) where the whole run uses the Batch API.
            env = {"GEMINI_BATCH_MIN_PAIRS": "1" if llm_mode == "batch" else "0"}
            print(f"  speed-up runs: {len(subset)} SKUs, batches of {batch}, LLM {llm_mode} …", flush=True)
            runs = {}
            for tag, n in (("one", 1), ("two", 2)):
                runs[tag] = match_run(product_ids=subset, workers=n, pinned=True, threads=1, fake_url=fake_url,
                                      tag=tag, batch_size=batch, timeout_s=timeout, truth=truth,
                                      fake=fake if llm_mode == "batch" else None, extra_env=env)
                r = runs[tag]
                print(f"    {n} pinned worker(s): {r['images_per_minute']} images/min"
                      + (f", {r['images_per_minute_with_write_back']} with the write-back"
                         if "images_per_minute_with_write_back" in r else "")
                      + f"; CPU beside the workers: {r['other_cpu_s']}", flush=True)
            one, two = runs["one"], runs["two"]
            results.update({
                "e2e_speedup_2_workers": round(two["images_per_minute"] / one["images_per_minute"], 3),
                "e2e_speedup_llm": llm_mode,
                "e2e_one_pinned_worker_images_per_minute": one["images_per_minute"],
                "e2e_two_pinned_workers_images_per_minute": two["images_per_minute"],
                "e2e_speedup_runs": {"one": one, "two": two},
                **({"e2e_speedup_2_workers_with_write_back": round(
                    two["images_per_minute_with_write_back"] / one["images_per_minute_with_write_back"], 3)}
                   if "images_per_minute_with_write_back" in one and "images_per_minute_with_write_back" in two
                   else {}),
            })
    finally:
        fake.stop()
    return results
