"""Reverse image search and the evaluation commands, on drawn demo photos through the real stages."""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from PIL import Image

from matcher.models import Product
from matcher.runs import match_run_batch_process, match_run_start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run_all() -> None:
    run = match_run_start(product_ids=None, enqueue=False)
    for batch in run.batches.all():
        match_run_batch_process(batch_id=batch.id)


def _crop_jpeg(path) -> bytes:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    buf = io.BytesIO()
    img.crop((w // 10, h // 12, w - w // 10, h - h // 8)).resize((w // 2, h // 2)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def test_a_cropped_re_encoded_product_photo_finds_its_sku_first(imported_demo, demo_dir, tmp_path):
    _run_all()
    product = Product.objects.filter(active=True).order_by("sku").first()
    with (demo_dir / "catalog.csv").open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["sku"] == product.sku)
    from matcher.search import search_by_image

    result = search_by_image(_crop_jpeg(demo_dir / row["images"].split("|")[0]), k=10)

    assert result.hits, "the catalogue is indexed"
    # The best hit is our photo or a competitor listing of this SKU re-using it; ours is in the top 10.
    top = result.hits[0]
    assert product in top.products or any(listing.product_id == product.id for listing in top.listings)
    assert any(product in hit.products for hit in result.hits)
    # Compared by the matching pipeline: the re-used photo is "the same product".
    assert top.bucket in ("auto", "review") and top.confidence is not None
    assert len(result.hits[0].hit_box) == 4


def test_the_search_page_takes_an_upload_and_refuses_a_private_url(imported_demo, demo_dir, client):
    from django.contrib.auth.models import User

    _run_all()
    client.force_login(User.objects.create_user("m", password="x"))
    with (demo_dir / "catalog.csv").open(encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    upload = io.BytesIO(_crop_jpeg(demo_dir / first["images"].split("|")[0]))
    upload.name = "q.jpg"
    page = client.post("/matcher/search/", {"image": upload})
    assert page.status_code == 200
    assert "유사도" in page.content.decode()

    refused = client.post("/matcher/search/", {"url": "http://127.0.0.1/secret.jpg"})
    assert refused.status_code == 200
    body = refused.content.decode()
    assert "유사도" not in body and 'class="error"' in body


def test_search_needs_a_login(client, db):
    assert client.get("/matcher/search/").status_code == 302


def test_evaluate_pairs_reports_the_metrics_the_issue_names(imported_demo, demo_dir, tmp_path):
    truth = list(csv.DictReader((demo_dir / "truth.csv").open(encoding="utf-8")))
    listings = {r["url"]: r for r in csv.DictReader((demo_dir / "listings.csv").open(encoding="utf-8"))}
    catalog = {r["sku"]: r for r in csv.DictReader((demo_dir / "catalog.csv").open(encoding="utf-8"))}
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_a", "image_b", "same_product", "title_a", "title_b", "kind"])
        for t in truth:
            listing = listings[t["url"]]
            ours = catalog[listing["sku"]]
            w.writerow([
                "|".join(str(demo_dir / p) for p in ours["images"].split("|")),
                str(demo_dir / listing["images"].split("|")[0]),
                t["same_product"], ours["title"], listing["title"], t["kind"],
            ])
    out, plot = tmp_path / "m.json", tmp_path / "pr.png"
    call_command("evaluate_pairs", str(pairs), "--json", str(out), "--plot", str(plot), "--no-ocr")

    report = json.loads(out.read_text())
    for key in ("n_pos", "n_neg", "auto_precision", "auto_recall", "review_or_auto_recall",
                "negatives_to_review_rate", "negatives_auto_rate", "recall_at_precision_0_99",
                "recall_at_precision_0_995", "by_kind"):
        assert key in report
    assert report["n_pos"] + report["n_neg"] == len(truth)
    assert Image.open(plot).size[0] > 100

    # A second run reads every photo's analysis from the database and decides the same.
    again = tmp_path / "again.json"
    call_command("evaluate_pairs", str(pairs), "--json", str(again), "--no-ocr")
    second = json.loads(again.read_text())
    assert second["stages"]["region_images"] == 0 and second["stages"]["cache_hits"] == second["stages"]["images"]
    assert second["auto_precision"] == report["auto_precision"] and second["auto_recall"] == report["auto_recall"]


def test_evaluate_pairs_refuses_a_file_with_missing_images(tmp_path, db):
    from django.core.management.base import CommandError

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("image_a,image_b,same_product\nnope.jpg,nada.jpg,1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="do not exist"):
        call_command("evaluate_pairs", str(pairs))


def test_evaluate_retrieval_finds_transformed_queries_in_a_gallery(imported_demo, demo_dir, tmp_path):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    originals = sorted((demo_dir / "images").glob("*.jpg"))[:12]
    for p in originals:
        (gallery / p.name).write_bytes(p.read_bytes())
    queries = tmp_path / "queries.csv"
    with queries.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "expected", "kind"])
        for p in originals[:4]:
            q = tmp_path / f"q_{p.name}"
            q.write_bytes(_crop_jpeg(p))
            w.writerow([q.name, f"gallery/{p.name}", "crop"])
    out = tmp_path / "r.json"
    call_command("evaluate_retrieval", "--gallery", str(gallery), "--queries", str(queries), "--json", str(out))
    report = json.loads(out.read_text())
    assert report["n_queries"] == 4
    assert report["recall_at_10"] >= report["recall_at_1"] >= 0.5
    assert report["per_kind"]["crop"]["n_queries"] == 4
    assert report["per_kind"]["crop"]["recall_at_1"] == report["recall_at_1"]
    assert len(report["misses_at_1"]) == round(4 * (1 - report["recall_at_1"]))

    # The gallery's analyses stay cached, but their search rows are gone (as for photos another
    # evaluation analysed before they were stored): a second run indexes them again.
    from matcher.models import ImageAnalysisRecord, Region

    Region.objects.all().delete()
    assert ImageAnalysisRecord.objects.exists()
    call_command("evaluate_retrieval", "--gallery", str(gallery), "--queries", str(queries), "--json", str(out))
    assert json.loads(out.read_text())["recall_at_1"] == report["recall_at_1"]


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_search_puts_our_re_used_photo_before_the_same_shot_recoloured(db):
    """Embeddings barely see colour: the same shot in another colour sits next to the original.
    The re-ranking (garment colour, then the matching pipeline) must put the original first and
    tell the recolour apart."""
    import numpy as np

    from matcher.demo.competitor_pairs import MIN_RECOLOURED_SHARE, recolour_away, recoloured_share
    from matcher.matching import toolkit
    from matcher.pipeline.compare import ImageInput
    from matcher.search import search_by_image
    from matcher.services import image_store
    from tests.pipeline.conftest import _luma
    from tests.pipeline.test_features import banner

    original = _luma("mh12-green_main.jpg")
    recoloured, _ = recolour_away(original, ["Green", "Blue", "Red"], np.random.default_rng(0))
    assert recoloured_share(original, recoloured, "Men/Tops", "Green") >= MIN_RECOLOURED_SHARE  # really another colour
    others = [_luma(n) for n in ("mh12-blue_main.jpg", "mh12-red_main.jpg", "mh02-black_main.jpg")]
    stored = {}
    for name, image in [("original", original), ("recoloured", recoloured)] + [(f"other{i}", o) for i, o in enumerate(others)]:
        stored[name] = image_store(data=_jpeg(image))
    kit = toolkit(with_ocr=False, with_remover=False)
    kit.comparer.analyse([ImageInput.from_bytes(im.file.read()) for im in stored.values()])
    kit.cache.flush()

    w, h = original.size
    query = banner(original.crop((w // 12, h // 10, w - w // 12, h - h // 10)))  # cropped, bannered, JPEG 70
    result = search_by_image(_jpeg(query), k=5)

    by_sha = {hit.image.sha256: hit for hit in result.hits}
    top = result.hits[0]
    assert top.image.sha256 == stored["original"].sha256
    assert top.bucket in ("auto", "review") and top.inliers >= 20
    recolour_hit = by_sha[stored["recoloured"].sha256]
    assert recolour_hit.bucket == "reject" or recolour_hit.confidence is None
    assert result.hits.index(recolour_hit) > 0
