"""Start (or resume) a match run and follow its progress.

    python manage.py match                 # whole catalogue, through the Celery workers
    python manage.py match --sku A --sku B # some SKUs
    python manage.py match --force         # re-decide unchanged listings too (after threshold/model changes)
    python manage.py match --resume 12     # re-enqueue what a crashed run left
    python manage.py match --inline        # no worker needed: process the batches in this process
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matcher.models import MatchRun, MatchRunBatch, Product
from matcher.runs import match_run_batch_process, match_run_resume, match_run_start


class Command(BaseCommand):
    help = "Match competitor listings to SKUs (a match run) and show its progress."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sku", action="append", default=[])
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--resume", type=int)
        parser.add_argument("--inline", action="store_true", help="run batches here instead of on workers")
        parser.add_argument("--no-wait", action="store_true")

    def handle(self, *args, sku: list[str], force: bool, resume: int | None, inline: bool, no_wait: bool, **o):
        if resume:
            if not MatchRun.objects.filter(id=resume).exists():
                raise CommandError(f"실행 #{resume}이(가) 없습니다 (no such run)")
            # --inline: hand the batches back without enqueueing them; the loop below runs them here.
            result = match_run_resume(run_id=resume, enqueue=not inline)
            run = MatchRun.objects.get(id=resume)
            first, *held = result.describe()
            # Nothing re-enqueued while batches are held is not a success: the run waits on those workers.
            style = self.style.SUCCESS if result.requeued_ids else self.style.WARNING
            self.stdout.write(style(first))
            for line in held:
                self.stdout.write(self.style.WARNING(line))
        else:
            ids = None
            if sku:
                found = dict(Product.objects.filter(sku__in=sku).values_list("sku", "id"))
                missing = sorted(set(sku) - set(found))
                if missing:
                    raise CommandError(f"unknown SKU(s): {', '.join(missing)}")
                ids = list(found.values())
            run = match_run_start(product_ids=ids, force=force, enqueue=not inline)
            self.stdout.write(f"run #{run.id}: {run.batches_total} batches, {run.listings_total} listings")
        if no_wait:
            return
        bar = tqdm(total=run.batches_total, unit="batch", desc=f"run #{run.id}")
        while True:
            batch = None
            if inline:
                # Only pending batches: one a live worker holds is its own (claiming it would spin).
                pending = MatchRunBatch.objects.filter(run=run, state=MatchRunBatch.State.PENDING)
                batch = pending.order_by("id").first()
                if batch is not None:
                    match_run_batch_process(batch_id=batch.id)
            run.refresh_from_db()
            bar.n = run.batches_done
            bar.set_postfix(done=run.listings_done, skipped=run.listings_skipped, failed=run.failures)
            bar.refresh()
            if run.status in (MatchRun.Status.DONE, MatchRun.Status.FAILED):
                break
            if batch is None:
                time.sleep(1)
        bar.close()
        self.stdout.write(
            f"run #{run.id} {run.status}: decided {run.listings_done}, skipped {run.listings_skipped}, "
            f"failed {run.failures}; buckets {run.counts}"
        )
