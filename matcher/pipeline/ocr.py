"""Text in listing photos (Korean + English) with Tesseract, when it is installed.

Optional: without the `tesseract` binary or its Korean data (Debian packages
tesseract-ocr, tesseract-ocr-kor), `available()` is False and the pipeline runs without
OCR. Tesseract reads clean text (size charts, product-number labels) well and stylised
text over photos poorly, so the comparer only lets OCR confirm a product number, never
count against one.

Each image goes to one `tesseract stdin stdout` process as an uncompressed greyscale PGM
(pytesseract's PNG temp file cost ~15 % of the OCR time in encoding alone), with OpenMP
held to one thread: on a worker that already keeps its cores busy, Tesseract's own threads
only spin (same text, about 30 % less CPU per image measured on the benchmark images).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
from functools import lru_cache

from PIL import Image, ImageOps


@lru_cache(maxsize=None)
def _languages(cmd: str) -> frozenset[str]:
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = cmd
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except Exception:
        return frozenset()


class TesseractOcr:
    """Ocr stage: pytesseract with kor+eng.

    languages: Tesseract language codes joined by '+'; every one must be installed.
    max_side: images are scaled so their longer side is at most this (Tesseract time
        grows with pixels; 1600 keeps small print readable).
    psm: page segmentation modes, each a pass over the image whose lines are joined: 11
        ("sparse text") finds text scattered over a photo; 6 ("one block") reads a shop's
        banner across the photo that the sparse pass breaks up or misses (on the demo's
        banner listings it read 11 of 12 banners where the sparse pass read 7). Two passes
        cost twice the OCR time, spent only on the pairs headed for auto (and for a missing
        product number); a single int is one pass.
    threads: OpenMP threads of the Tesseract process (OMP_THREAD_LIMIT).
    """

    name = "tesseract"

    def __init__(
        self,
        *,
        languages: str = "kor+eng",
        max_side: int = 1600,
        psm: int | tuple[int, ...] = (11, 6),
        timeout_seconds: float = 20.0,
        tesseract_cmd: str | None = None,
        threads: int = 1,
    ) -> None:
        self.languages = languages
        self.max_side = max_side
        self.psm = (psm,) if isinstance(psm, int) else tuple(psm)
        self.timeout_seconds = timeout_seconds
        self.tesseract_cmd = tesseract_cmd or shutil.which("tesseract") or "tesseract"
        self.threads = threads

    @property
    def signature(self) -> str:
        """What decides the text read: cached texts from another signature are read again."""
        return f"{self.name}:{self.languages}:psm{'+'.join(map(str, self.psm))}:{self.max_side}"

    def available(self) -> bool:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            return False
        if shutil.which(self.tesseract_cmd) is None:
            return False
        return set(self.languages.split("+")) <= _languages(self.tesseract_cmd)

    def read(self, image: Image.Image) -> str:
        """The text Tesseract finds, '' if none; raises RuntimeError if OCR is unavailable."""
        if not self.available():
            raise RuntimeError("tesseract with languages %s is not installed" % self.languages)
        gray = ImageOps.grayscale(image)
        scale = min(1.0, self.max_side / max(gray.size))
        if scale < 1.0:
            gray = gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))), Image.LANCZOS)
        elif max(gray.size) < 600:
            # Tesseract wants text at least ~20 px tall; small web images get a 2× upscale.
            gray = gray.resize((gray.width * 2, gray.height * 2), Image.LANCZOS)
        pgm = io.BytesIO()
        gray.save(pgm, "PPM")  # mode L → binary PGM, which Leptonica reads from stdin
        env = {**os.environ, "OMP_THREAD_LIMIT": str(max(1, self.threads))}
        lines: list[str] = []
        for psm in self.psm:
            try:
                done = subprocess.run(
                    [self.tesseract_cmd, "stdin", "stdout", "-l", self.languages, "--psm", str(psm)],
                    input=pgm.getvalue(), capture_output=True, env=env, timeout=self.timeout_seconds,
                )
            except subprocess.TimeoutExpired:
                continue
            if done.returncode != 0:
                raise RuntimeError(f"tesseract failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
            text = done.stdout.decode("utf-8", errors="replace")
            lines += [line.strip() for line in text.splitlines() if line.strip() and line.strip() not in lines]
        return "\n".join(lines)
