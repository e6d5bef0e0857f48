"""Throughput of each vision stage on real images, and the embedder against this CPU's matmul ceiling.

Every stage gets the same decoded images (decoding is not part of any stage's figure), the
thread count the workers use, and its own batching: the embedder and detector take batches,
ISNet's ONNX graph takes one 1024² image at a time, SIFT and Tesseract are per image.

`embed_flops_fraction`: the embedder's FLOPs per image (counted by torch's FlopCounterMode on one
forward pass, multiply-add = 2 FLOPs) per CPU second, over the FLOPs per CPU second of a plain
float32 matrix multiply measured in the same process with the same threads: the practical
ceiling of this CPU, the fastest of torch (MKL), numpy (OpenBLAS) and OpenVINO (oneDNN). The
figure for `embed()` includes preprocessing (letterbox, normalise); the `embed_model_*` figures
are the network alone on a ready tensor. The active embedder runs in its configured runtime
(OpenVINO float32 by default); the other runtimes are measured too
(`embed_torch_*`, `embed_onnx_*`, `embed_openvino_*`, `embed_openvino_bf16_*`, where installed and
supported), and so is a randomly initialised open_clip ViT-B/32
(`embed_vit_b32_*`), a network made of large matrix multiplies, for comparison.
"""
from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.common import Rate, measure, measure_steady
from benchmarks.images import real_images

SIZES = {
    # stage: (quick, full) image counts
    "embed": (32, 256),
    "detect": (16, 128),
    "cutout": (3, 12),
    "keypoints": (16, 128),
    "ocr": (4, 24),
}


MATMUL_LIBRARIES = ("torch", "numpy", "openvino")


def _gemm(library: str, threads: int, n: int, dtype: str):
    """One n×n GEMM of the library as a callable, or None where it cannot run it at that precision here.

    torch is MKL (on AMD hosts MKL runs its AVX2 code even where AVX-512 is there: half the rate of
    the others), numpy is OpenBLAS (its own thread pool, all cores: measured only when threads
    are all cores), openvino is oneDNN's MatMul, a graph of one node (bfloat16 only on CPUs with it).
    """
    import numpy as np

    if library not in MATMUL_LIBRARIES:
        raise ValueError(f"unknown matmul library {library!r}")
    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((n, n), dtype=np.float32)
    b32 = rng.standard_normal((n, n), dtype=np.float32)
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
        kind = getattr(torch, dtype)
        a, b = torch.from_numpy(a32).to(kind), torch.from_numpy(b32).to(kind)
        c = torch.empty(n, n, dtype=kind)
        return lambda: torch.mm(a, b, out=c)
    if library == "numpy":
        if dtype != "float32" or threads != (os.cpu_count() or 1):
            return None
        c32 = np.empty((n, n), np.float32)
        return lambda: np.matmul(a32, b32, out=c32)
    try:  # openvino
        import openvino as ov
        from openvino import opset13 as ops
    except ImportError:
        return None
    from matcher.pipeline.runtime import openvino_bf16_available

    if dtype == "bfloat16" and not openvino_bf16_available():
        return None
    x = ops.parameter([n, n], ov.Type.f32)
    model = ov.Model([ops.matmul(x, ops.constant(b32), False, False)], [x])
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "bf16" if dtype == "bfloat16" else "f32",
    })
    request = compiled.create_infer_request()
    return lambda: request.infer({0: a32})


def matmul_gflops(threads: int, *, n: int = 2048, seconds: float = 3.0, dtype: str = "float32",
                  library: str = "torch") -> tuple[float, float]:
    """GEMM rate over repeated n×n multiplies: (best wall GFLOP/s, GFLOP per CPU second).

    The best wall rate is what the cores do when nobody else runs; the per-CPU-second rate stays
    meaningful on a machine shared with other jobs, and is what the embedder is compared with.
    dtype "bfloat16": the ceiling a bfloat16 network should be held to (AMX runs it ~4× faster).
    Returns (0, 0) for a library that cannot run here (see _gemm).
    """
    run = _gemm(library, threads, n, dtype)
    if run is None:
        return 0.0, 0.0
    run()
    best, runs = 0.0, 0
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        run()
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
        runs += 1
    per_cpu_s = 2 * n**3 * runs / (time.process_time() - cpu) / 1e9
    return best, per_cpu_s


def matmul_ceiling(threads: int, *, dtype: str = "float32", seconds: float = 3.0, n: int = 2048) -> dict[str, Any]:
    """This CPU's practical GEMM ceiling: the fastest plain matrix multiply among the libraries in
    the process (per CPU second), each library's own rate beside it.

    One library is not enough: on an AMD EPYC with AVX-512, torch's MKL read 104 GFLOP per CPU s and
    OpenVINO's oneDNN 219 for the same float32 2048² multiply, and held to MKL alone the embedder
    read a fraction above 1."""
    rates = {lib: matmul_gflops(threads, n=n, dtype=dtype, library=lib, seconds=seconds) for lib in MATMUL_LIBRARIES}
    rates = {lib: r for lib, r in rates.items() if r[1] > 0}
    best = max(rates, key=lambda lib: rates[lib][1])
    return {
        "library": best,
        "gflops": rates[best][0],
        "gflops_per_cpu_s": rates[best][1],
        "by_library": {lib: {"gflops": round(w, 1), "gflops_per_cpu_s": round(c, 1)} for lib, (w, c) in rates.items()},
    }


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


def _active_embedder(threads: int, runtime: str | None = None):
    from django.conf import settings

    from matcher.pipeline.embed import EfficientNetLiteEmbedder, OpenClipEmbedder

    if settings.MATCHER_EMBEDDER == "open_clip":
        return OpenClipEmbedder(settings.OPEN_CLIP_MODEL, settings.OPEN_CLIP_PRETRAINED, threads=threads)
    configured: str = getattr(settings, "MATCHER_EMBEDDER_RUNTIME", "onnx")
    return EfficientNetLiteEmbedder(threads=threads, batch_size=32, runtime=runtime or configured)


def _embedder_figures(emb, images, threads: int, per_cpu_ceiling: float, wall_ceiling: float) -> dict[str, Any]:
    """embed() and the network alone for one embedder: rates, CPU per image and FLOP fractions."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from matcher.pipeline.embed import feature_net
    from matcher.pipeline.embed.preprocess import _to_array

    torch.set_num_threads(threads)
    # Warm-up with a whole batch: ONNX Runtime sizes its buffers for the first batch shape it sees,
    # and a worker embeds full batches all day.
    emb.embed(images[: emb.batch_size])
    rate = measure_steady(lambda: emb.embed(images), len(images))
    arrays = [_to_array(images[i : i + emb.batch_size], emb.image_size, emb._mean, emb._std)
              for i in range(0, len(images), emb.batch_size)]
    model = emb._model
    if hasattr(model, "forward_features"):
        net = feature_net(model)
    else:  # open_clip: its image tower
        class _Visual(torch.nn.Module):
            def __init__(self, inner) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner.encode_image(x)

        net = _Visual(model).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.from_numpy(arrays[0][:1]))
    flops = int(counter.get_total_flops())
    session = getattr(emb, "_session", None)
    if session is not None:
        def forward() -> None:
            for x in arrays:
                session.run(None, {"images": x})
    else:
        tensors = [torch.from_numpy(x).contiguous(memory_format=torch.channels_last) for x in arrays]

        def forward() -> None:
            with torch.inference_mode():
                for x in tensors:
                    net(x)
    forward()
    model_rate = measure_steady(forward, len(images))
    gflop = flops / 1e9
    return {
        "images_per_s": round(rate.per_second, 3),
        "cpu_s_per_image": round(rate.cpu_per_item, 4),
        "gflops_per_image": round(gflop, 3),
        "image_size": emb.image_size,
        "achieved_gflops": round(gflop * rate.per_second, 2),
        "gflops_per_cpu_s": round(gflop / rate.cpu_per_item, 2),
        # Per CPU second on both sides: steady on a shared machine (see matmul_gflops).
        "flops_fraction": round(gflop / rate.cpu_per_item / per_cpu_ceiling, 4),
        "flops_fraction_wall": round(gflop * rate.per_second / wall_ceiling, 4),
        "model_images_per_s": round(model_rate.per_second, 3),
        "model_cpu_s_per_image": round(model_rate.cpu_per_item, 4),
        "model_flops_fraction": round(gflop / model_rate.cpu_per_item / per_cpu_ceiling, 4),
        "load_average": round(rate.load, 2),
    }


def bench_embed(images, threads: int) -> dict[str, Any]:
    """The active embedder (figures `embed_*`), the same network in the other runtimes
    (`embed_torch_*`, `embed_onnx_*`, `embed_openvino_*`, `embed_openvino_bf16_*`), and a randomly
    initialised open_clip ViT-B/32
    (`embed_vit_b32_*`: speed does not depend on the weights): is the 50 % target a property of
    the network or of how it is run?"""
    from matcher.pipeline.embed import EfficientNetLiteEmbedder, OpenClipEmbedder

    gemm = matmul_ceiling(threads)
    ceiling, ceiling_per_cpu = gemm["gflops"], gemm["gflops_per_cpu_s"]
    emb = _active_embedder(threads)
    active = _embedder_figures(emb, images, threads, ceiling_per_cpu, ceiling)
    out = _row("embed", Rate(items=len(images), wall_s=len(images) / active["images_per_s"],
                             cpu_s=len(images) * active["cpu_s_per_image"], load=active["load_average"]),
               threads=threads, batch=emb.batch_size, model=emb.name, runtime=getattr(emb, "runtime", "torch"))
    out.update({f"embed_{k}": v for k, v in active.items() if k not in ("images_per_s", "cpu_s_per_image", "load_average")})
    out.update({"matmul_gflops": round(ceiling, 1), "matmul_gflops_per_cpu_s": round(ceiling_per_cpu, 1),
                "matmul_library": gemm["library"]})
    out.update({f"matmul_{lib}_{k}": v for lib, rates in gemm["by_library"].items() for k, v in rates.items()})
    if isinstance(emb, EfficientNetLiteEmbedder):
        from matcher.pipeline.embed import RUNTIMES

        # The active runtime's figures under its own name too, so that no runtime's keys are left
        # over from a run in which another one was active.
        out.update({f"embed_{emb.runtime.replace('-', '_')}_{k}": v for k, v in active.items()})
        for other in RUNTIMES:
            if other == emb.runtime:
                continue
            alt = EfficientNetLiteEmbedder(threads=threads, batch_size=32, runtime=other)
            if alt.runtime == other:  # a runtime that fell back to another one is not measured twice
                key = other.replace("-", "_")
                out.update({f"embed_{key}_{k}": v for k, v in
                            _embedder_figures(alt, images, threads, ceiling_per_cpu, ceiling).items()})
        if "embed_openvino_bf16_gflops_per_cpu_s" in out:  # bfloat16 ran, active or not
            # Held to a bfloat16 GEMM, the same precision: the fraction against float32 flatters it.
            bf16 = matmul_ceiling(threads, dtype="bfloat16")
            bf16_per_cpu = bf16["gflops_per_cpu_s"]
            out["matmul_bf16_gflops_per_cpu_s"] = round(bf16_per_cpu, 1)
            out["matmul_bf16_library"] = bf16["library"]
            out["embed_openvino_bf16_flops_fraction_of_bf16_matmul"] = round(
                out["embed_openvino_bf16_gflops_per_cpu_s"] / bf16_per_cpu, 4)
    vit = OpenClipEmbedder("ViT-B-32", pretrained=None, threads=threads, batch_size=32)
    out.update({f"embed_vit_b32_{k}": v for k, v in
                _embedder_figures(vit, images, threads, ceiling_per_cpu, ceiling).items()})
    return out


def _figures_only(row: dict[str, Any], prefix: str, new_prefix: str) -> dict[str, Any]:
    return {k.replace(prefix, new_prefix, 1): v for k, v in row.items() if k.endswith(("_per_s", "_per_image", "_per_cpu_s"))}


def bench_detect(images, threads: int) -> dict[str, Any]:
    """The configured runtime (MATCHER_DETECTOR_RUNTIME) and input side (MATCHER_DETECT_IMAGE_SIZE,
    default 640); for comparison every runtime under its own name (`detect_<runtime>_*`, the active one
    too) and 480. A runtime that falls back to another here (bfloat16 without the CPU for it) is not
    measured twice."""
    from django.conf import settings

    from matcher.pipeline.detect import RUNTIMES, PoseRegionFinder

    size = getattr(settings, "MATCHER_DETECT_IMAGE_SIZE", 0) or 640
    active = getattr(settings, "MATCHER_DETECTOR_RUNTIME", "openvino-bf16")
    out: dict[str, Any] = {}
    runs = [(active, size)] + [(rt, size) for rt in RUNTIMES if rt != active]
    if size != 480:
        runs.append((active, 480))
    for runtime, imgsz in runs:
        finder = PoseRegionFinder(threads=threads, batch_size=8, image_size=imgsz, runtime=runtime)
        if (runtime, imgsz) != runs[0] and finder.runtime != runtime:
            continue
        finder.find(images[:2])
        row = _row("detect", measure(lambda finder=finder: finder.find(images), len(images)), threads=threads, batch=8,
                   image_size=imgsz, runtime=finder.runtime,
                   note=f"YOLO11n-pose {imgsz} ({finder.runtime}) + background analysis and item split")
        if imgsz != size:
            out.update(_figures_only(row, "detect_", f"detect_{imgsz}_"))
            continue
        if runtime == active:
            out.update(row)
        out.update(_figures_only(row, "detect_", f"detect_{finder.runtime.replace('-', '_')}_"))
    return out


def bench_cutout(images, threads: int) -> dict[str, Any]:
    """The configured runtime (MATCHER_CUTOUT_RUNTIME); for comparison every runtime under its own name
    (`cutout_<runtime>_*`), as in bench_detect."""
    from django.conf import settings

    from matcher.pipeline.segment import RUNTIMES, RembgRemover

    active = getattr(settings, "MATCHER_CUTOUT_RUNTIME", "openvino-bf16")
    out: dict[str, Any] = {}
    for runtime in [active] + [rt for rt in RUNTIMES if rt != active]:
        remover = RembgRemover(threads=threads, runtime=runtime)
        if runtime != active and remover.runtime != runtime:
            continue
        remover.cutout(images[:1])
        row = _row("cutout", measure(lambda remover=remover: remover.cutout(images), len(images)), threads=threads, batch=1,
                   model=remover.name, runtime=remover.runtime)
        if runtime == active:
            out.update(row)
        out.update(_figures_only(row, "cutout_", f"cutout_{remover.runtime.replace('-', '_')}_"))
    return out


def bench_keypoints(images, threads: int) -> dict[str, Any]:
    import cv2

    from matcher.pipeline.evidence.geometry import image_keypoints

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
    from matcher.pipeline.ocr.library import _library

    engine = "library" if _library(ocr.languages) is not None else "cli"
    ocr.read(images[0])

    def reader(engine_ocr):
        def run() -> None:
            for im in images:
                engine_ocr.read(im)
        return run

    # The library reads in this process; the command's CPU is in RUSAGE_CHILDREN, which `measure` adds.
    layout = "line by line (psm 7)" if ocr.layout == "lines" else f"whole photo, psm {'+'.join(map(str, ocr.psm))}"
    out = _row("ocr", measure(reader(ocr), len(images)), threads=1, batch=1, engine=engine, layout=ocr.layout,
               note=f"tesseract kor+eng, {layout}, engine {engine}")
    # For comparison: the other layout, and the command instead of the library.
    other = "page" if ocr.layout == "lines" else "lines"
    comparisons = [(f"ocr_{other}", TesseractOcr(layout=other))]
    if engine == "library":
        comparisons.append(("ocr_cli", TesseractOcr(engine="cli", layout=ocr.layout)))
    for name, engine_ocr in comparisons:
        row = _row(name, measure(reader(engine_ocr), len(images)), threads=1, batch=1)
        out.update({k: v for k, v in row.items() if k.endswith(("_per_s", "_per_image", "_per_cpu_s"))})
    # The optional text gate: how many of these photos it would leave unread, and what it costs.
    import numpy as np

    from matcher.pipeline.textgate import TextLineFinder

    finder = TextLineFinder()
    greys = [np.asarray(im.convert("L")) for im in images]
    found: list[bool] = []
    rate = measure(lambda: found.extend(bool(finder.find(g)) for g in greys), len(greys))
    out["ocr_text_gate_skip_fraction"] = round(1 - sum(found) / max(1, len(found)), 3)
    out["ocr_text_finder_cpu_s_per_image"] = round(rate.cpu_per_item, 4)
    return out


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
