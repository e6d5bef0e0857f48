"""Contact sheets: many images with captions on one PNG, to look at generated data by eye.

Run: ``python -m matcher.demo.sheet DEMO_DIR OUT.png [--listings N]`` for a generated demo
(catalogue fronts first, then the first N listings captioned with their truth kind).
"""
from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from matcher.demo.transforms import korean_font


def contact_sheet(images: Sequence[Path | Image.Image], captions: Sequence[str], out: Path, thumb: int = 180, cols: int = 8) -> Path:
    font = korean_font(12, "Bold")
    rows = max(1, (len(images) + cols - 1) // cols)
    cell_h = thumb + 30
    sheet = Image.new("RGB", (cols * thumb, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (item, caption) in enumerate(zip(images, captions)):
        im = item if isinstance(item, Image.Image) else Image.open(item)
        im = im.convert("RGB")
        im.thumbnail((thumb - 6, thumb - 6))
        x, y = (i % cols) * thumb, (i // cols) * cell_h
        sheet.paste(im, (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
        for j, line in enumerate([caption[k:k + 24] for k in range(0, len(caption), 24)][:2]):
            draw.text((x + 3, y + thumb + j * 14), line, font=font, fill=(20, 20, 20))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def demo_sheet(demo_dir: Path, out: Path, listings: int = 48) -> Path:
    demo_dir = Path(demo_dir)
    images: list[Path] = []
    captions: list[str] = []
    with (demo_dir / "catalog.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            images.append(demo_dir / row["images"].split("|")[0])
            captions.append(f"{row['sku']} {row['colour']} {row['product_number']}")
    with (demo_dir / "truth.csv").open(encoding="utf-8") as f:
        truth = {r["url"]: r for r in csv.DictReader(f)}
    with (demo_dir / "listings.csv").open(encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= listings:
                break
            t = truth[row["url"]]
            images.append(demo_dir / row["images"].split("|")[0])
            captions.append(f"{row['sku']} {'SAME' if t['same_product'] == '1' else 'not'} {t['kind']} {row['price']}")
    return contact_sheet(images, captions, out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--listings", type=int, default=48)
    args = parser.parse_args(argv)
    print(demo_sheet(args.demo_dir, args.out, args.listings))


if __name__ == "__main__":
    main()
