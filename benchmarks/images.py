"""Real images for the stage benchmarks, decoded once before any timing.

Two sources: ultralytics' bundled photos (people in street scenes, the detector's hard case) and
the demo generator's catalogue and competitor images (studio shots, banners, collages, street
backgrounds), generated once into var/bench/ and reused.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from benchmarks import common


def asset_paths() -> list[Path]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    return sorted(assets.glob("*.jpg"))


def demo_dir(quick: bool) -> Path:
    """A generated demo (catalog.csv, listings.csv, images/), made on first use."""
    out = common.BENCH_VAR / ("vision_demo_quick" if quick else "vision_demo")
    if not quick and not (out / "listings.csv").is_file():
        # A catalogue the e2e section generated is just as good, and generating costs minutes.
        for made in sorted(common.BENCH_VAR.glob("e2e_base_*/listings.csv")):
            if len(list((made.parent / "images").glob("*.jpg"))) >= 200:
                return made.parent
    if not (out / "listings.csv").is_file():
        from matcher.demo.generate import generate

        print(f"  generating demo images in {out} …", flush=True)
        generate(out, n_skus=4 if quick else 30, listings_per_sku=6 if quick else 10)
    return out


def real_images(count: int, *, quick: bool) -> list[Image.Image]:
    """`count` decoded RGB images: the bundled photos and demo images interleaved, cycling if needed."""
    demo = sorted((demo_dir(quick) / "images").glob("*.jpg"))
    assets = asset_paths()
    paths: list[Path] = []
    # Every fifth image is a street photo with people; the rest are what the shop's pages show.
    for i, p in enumerate(demo):
        if i % 4 == 0 and assets:
            paths.append(assets[(i // 4) % len(assets)])
        paths.append(p)
    decoded: dict[Path, Image.Image] = {}
    out = []
    for i in range(count):
        p = paths[i % len(paths)]
        if p not in decoded:
            with Image.open(p) as im:
                decoded[p] = im.convert("RGB")
        out.append(decoded[p])
    return out
