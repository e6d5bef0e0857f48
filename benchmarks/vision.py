"""Throughput of each vision stage on real images, and the embedder against this CPU's matmul ceiling.

Every stage gets the same decoded images (decoding is not part of any stage's figure), the
thread count the workers use, and its own batching: the embedder and detector take batches,
ISNet's ONNX graph takes one 1024² image at a time, SIFT and Tesseract are per image.

`embed_flops_fraction`: the embedder's FLOPs per image (counted by torch's FlopCounterMode on one
forward pass, multiply-add = 2 FLOPs) times images per second, over the rate of a plain float32
matrix multiply measured in the same process with the same threads: the practical ceiling of
this CPU. The figure for `embed()` includes preprocessing (letterbox, normalise); the
`embed_model_*` figures are the network alone on a ready tensor.
"""
from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.common import Rate, measure
from benchmarks.images import real_images

SIZES = {
    # stage: (quick, full) image counts
    "embed": (32, 256),
    "detect": (16, 128),
    "cutout": (3, 12),
    "keypoints": (16, 128),
    "ocr": (4, 24),
}


def matmul_gflops(threads: int, *, n: int = 2048, seconds: float = 3.0) -> tuple[float, float]:
    """Float32 GEMM rate over repeated n×n multiplies: (best wall GFLOP/s, GFLOP per CPU second).

    The best wall rate is what the cores do when nobody else runs; the per-CPU-second rate stays
    meaningful on a machine shared with other jobs, and is what the embedder is compared with.
    """
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    best, runs = 0.0, 0
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
        runs += 1
    per_cpu_s = 2 * n**3 * runs / (time.process_time() - cpu) / 1e9
    return best, per_cpu_s


def count_flops(model, x) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.forward_head(model.forward_features(x), pre_logits=True)
    return int(counter.get_total_flops())


def _row(prefix: str, rate: Rate, **extra: Any) -> dict[str, Any]:
    return {
        f"{prefix}_images_per_s": round(rate.per_second, 3),
        f"{prefix}_cpu_s_per_image": round(rate.cpu_per_item, 4),
        # What one core does when nothing else runs; the sizing table is built on this.
        f"{prefix}_images_per_cpu_s": round(1 / rate.cpu_per_item, 3) if rate.cpu_per_item else None,
        f"{prefix}_n_images": rate.items,
        f"{prefix}_load_average": round(rate.load, 2),
        **{f"{prefix}_{k}": v for k, v in extra.items()},
    }


def _active_embedder(threads: int):
    from django.conf import settings

    from matcher.pipeline.embed import EfficientNetLiteEmbedder, OpenClipEmbedder

    if settings.MATCHER_EMBEDDER == "open_clip":
        return OpenClipEmbedder(settings.OPEN_CLIP_MODEL, settings.OPEN_CLIP_PRETRAINED, threads=threads)
    return EfficientNetLiteEmbedder(threads=threads, batch_size=32)


def bench_embed(images, threads: int) -> dict[str, Any]:
    import torch

    from matcher.pipeline.embed import _to_batch

    emb = _active_embedder(threads)
    emb.embed(images[:4])  # warm-up: first-call allocations
    rate = measure(lambda: emb.embed(images), len(images))
    out = _row("embed", rate, threads=threads, batch=emb.batch_size, model=emb.name)

    # The network alone, on tensors prepared beforehand, in the embedder's own layout and batch size.
    model = emb._model
    batches = [
        _to_batch(images[i : i + emb.batch_size], emb.image_size, emb._mean, emb._std).contiguous(
            memory_format=torch.channels_last)
        for i in range(0, len(images), emb.batch_size)
    ]
    if hasattr(model, "forward_features"):
        flops = count_flops(model, batches[0][:1])

        def forward() -> None:
            with torch.inference_mode():
                for x in batches:
                    model.forward_head(model.forward_features(x), pre_logits=True)
    else:  # open_clip
        from torch.utils.flop_counter import FlopCounterMode

        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model.encode_image(batches[0][:1])
        flops = int(counter.get_total_flops())

        def forward() -> None:
            with torch.inference_mode():
                for x in batches:
                    model.encode_image(x)

    torch.set_num_threads(threads)
    forward()
    model_rate = measure(forward, len(images))
    ceiling, ceiling_per_cpu = matmul_gflops(threads)
    gflop = flops / 1e9
    out.update({
        "embed_gflops_per_image": round(gflop, 3),
        "embed_image_size": emb.image_size,
        "matmul_gflops": round(ceiling, 1),
        "matmul_gflops_per_cpu_s": round(ceiling_per_cpu, 1),
        "embed_achieved_gflops": round(gflop * rate.per_second, 2),
        "embed_gflops_per_cpu_s": round(gflop / rate.cpu_per_item, 2),
        # Per CPU second on both sides: steady on a shared machine (see matmul_gflops).
        "embed_flops_fraction": round(gflop / rate.cpu_per_item / ceiling_per_cpu, 4),
        "embed_flops_fraction_wall": round(gflop * rate.per_second / ceiling, 4),
        "embed_model_images_per_s": round(model_rate.per_second, 3),
        "embed_model_cpu_s_per_image": round(model_rate.cpu_per_item, 4),
        "embed_model_flops_fraction": round(gflop / model_rate.cpu_per_item / ceiling_per_cpu, 4),
    })
    return out


def bench_detect(images, threads: int) -> dict[str, Any]:
    from matcher.pipeline.detect import PoseRegionFinder

    finder = PoseRegionFinder(threads=threads, batch_size=8)
    finder.find(images[:2])
    return _row("detect", measure(lambda: finder.find(images), len(images)), threads=threads, batch=8,
                note="YOLO11n-pose 640 + background analysis and item split")


def bench_cutout(images, threads: int) -> dict[str, Any]:
    from matcher.pipeline.segment import RembgRemover

    remover = RembgRemover(threads=threads)
    remover.cutout(images[:1])
    return _row("cutout", measure(lambda: remover.cutout(images), len(images)), threads=threads, batch=1,
                model=remover.name)


def bench_keypoints(images, threads: int) -> dict[str, Any]:
    import cv2

    from matcher.pipeline.features import image_keypoints

    cv2.setNumThreads(threads)
    image_keypoints(images[0])

    def run() -> None:
        for im in images:
            image_keypoints(im)

    return _row("keypoints", measure(run, len(images)), threads=threads, batch=1, note="SIFT + patch colours")


def bench_ocr(images, threads: int) -> dict[str, Any]:
    try:
        from matcher.pipeline.ocr import TesseractOcr
    except ImportError as exc:
        return {"ocr_images_per_s": None, "ocr_unavailable_reason": f"matcher.pipeline.ocr missing: {exc}"}
    ocr = TesseractOcr()
    if not ocr.available():
        return {"ocr_images_per_s": None,
                "ocr_unavailable_reason": "tesseract or its kor/eng data is not installed (make system-deps)"}
    ocr.read(images[0])

    def run() -> None:
        for im in images:
            ocr.read(im)

    # Tesseract runs as a child process: its CPU time is in RUSAGE_CHILDREN, which `measure` adds.
    return _row("ocr", measure(run, len(images)), threads=int(os.environ.get("OMP_THREAD_LIMIT", 0)) or None,
                batch=1, note="tesseract kor+eng, psm 11, one process per image")


BENCHES = {"embed": bench_embed, "detect": bench_detect, "cutout": bench_cutout, "keypoints": bench_keypoints,
           "ocr": bench_ocr}


def run(*, stages: list[str], quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.common import django_setup

    django_setup(migrate=False)
    threads = int(options.get("threads") or 0) or os.cpu_count() or 1
    results: dict[str, Any] = {}
    for stage in stages:
        count = SIZES[stage][0 if quick else 1]
        images = real_images(count, quick=quick)
        figures = BENCHES[stage](images, threads)
        results.update(figures)
        rate = figures.get(f"{stage}_images_per_s")
        print(f"  {stage:<10} {rate if rate is not None else 'n/a'} images/s "
              f"({figures.get(f'{stage}_cpu_s_per_image', '-')} CPU s/image, {count} images, {threads} threads)",
              flush=True)
    return results
