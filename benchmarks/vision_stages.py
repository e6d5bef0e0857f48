"""Throughput of the vision stages on real studio photos, at 1 and 2 threads.

    python -m benchmarks.vision_stages [--images N] [--threads 1 2] [--open-clip]

Prints images/s per stage. Detection and embedding run in batches; ISNet takes one
image at a time (fixed 1024² input). --open-clip also times a randomly initialised
ViT-B-32 (speed does not depend on the weights, so no download is needed).
"""
from __future__ import annotations

import argparse
import glob
import os
import time
from pathlib import Path

from PIL import Image

LUMA = Path(__file__).resolve().parents[2] / "shared/eval/luma_dev/images"


def _photos(n: int) -> list[Image.Image]:
    luma = Path(os.environ.get("LUMA_DEV_DIR", LUMA.parent))
    paths = sorted(glob.glob(str(luma / "images" / "*_main.jpg")))
    if not paths:
        import ultralytics

        assets = Path(ultralytics.__file__).parent / "assets"
        paths = [str(assets / "bus.jpg"), str(assets / "zidane.jpg")]
    return [Image.open(paths[i % len(paths)]).convert("RGB") for i in range(n)]


def _rate(fn, images: list[Image.Image]) -> tuple[float, float]:
    """(images per wall-clock second, CPU seconds per image): on a shared machine the second is steadier."""
    fn(images[:2])  # warm-up: first-call allocations and lazy initialisation
    wall, cpu = time.perf_counter(), time.process_time()
    fn(images)
    return len(images) / (time.perf_counter() - wall), (time.process_time() - cpu) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--cutout-images", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--open-clip", action="store_true")
    args = parser.parse_args()

    from matcher.pipeline.detect import PoseRegionFinder
    from matcher.pipeline.embed import EfficientNetLiteEmbedder, OpenClipEmbedder
    from matcher.pipeline.segment import RembgRemover

    images = _photos(args.images)
    size = f"{images[0].width}×{images[0].height}"
    print(f"{len(images)} photos of {size}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for threads in args.threads:
        rows = [
            ("detect (YOLO11n-pose 640 + background/items)", PoseRegionFinder(threads=threads).find, images),
            ("cutout (ISNet fp16 1024², rembg)",
             RembgRemover(threads=threads).cutout, images[: args.cutout_images]),
            ("embed (EfficientNet-Lite2 260², batch 16)",
             EfficientNetLiteEmbedder(threads=threads, batch_size=16).embed, images),
        ]
        if args.open_clip:
            clip = OpenClipEmbedder("ViT-B-32", pretrained=None, threads=threads, batch_size=16)
            rows.append(("embed (open_clip ViT-B-32 224², batch 16)", clip.embed, images))
        for label, fn, batch in rows:
            per_second, cpu = _rate(fn, batch)
            print(f"threads={threads}  {label:<48} {per_second:6.2f} images/s  {cpu:6.3f} CPU s/image")


if __name__ == "__main__":
    main()
