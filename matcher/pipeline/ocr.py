"""Text in listing photos (Korean + English) with Tesseract, when it is installed.

Optional: without the `tesseract` binary or its Korean data (Debian packages
tesseract-ocr, tesseract-ocr-kor), `available()` is False and the pipeline runs without
OCR. Tesseract reads clean text (size charts, product-number labels) well and stylised
text over photos poorly, so the comparer only lets OCR confirm a product number, never
count against one.

Each image is written once as an uncompressed greyscale PGM (pytesseract's PNG temp file cost
~15 % of the OCR time in encoding alone) and read by one `tesseract` process per page mode, each
with OpenMP held to one thread: Tesseract's own threads mostly spin (same text, about 45 % less
CPU per pass on the benchmark images). `parallel_passes=True` runs the passes side by side.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
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
    parallel_passes: run the page-mode passes side by side (same text; less wall time for a worker
        that has two cores to itself, slightly more CPU; off by default because the recommended layout
        is one single-threaded worker per core, where they would only compete with the other worker).
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
        parallel_passes: bool = False,
    ) -> None:
        self.languages = languages
        self.max_side = max_side
        self.psm = (psm,) if isinstance(psm, int) else tuple(psm)
        self.timeout_seconds = timeout_seconds
        self.tesseract_cmd = tesseract_cmd or shutil.which("tesseract") or "tesseract"
        self.threads = threads
        self.parallel_passes = parallel_passes

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
        env = {**os.environ, "OMP_THREAD_LIMIT": str(max(1, self.threads))}
        with tempfile.TemporaryDirectory(prefix="ocr-") as folder:
            path = os.path.join(folder, "page.pgm")
            gray.save(path, "PPM")  # mode L → binary PGM

            def start(psm: int) -> subprocess.Popen:
                return subprocess.Popen(
                    [self.tesseract_cmd, path, "stdout", "-l", self.languages, "--psm", str(psm)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                )

            deadline = time.monotonic() + self.timeout_seconds
            if self.parallel_passes:
                procs = [start(psm) for psm in self.psm]
                outputs = [_finish(proc, max(0.1, deadline - time.monotonic())) for proc in procs]
            else:
                outputs = [_finish(start(psm), max(0.1, deadline - time.monotonic())) for psm in self.psm]
        lines: list[str] = []
        for out in outputs:
            if out is None:  # timed out: that pass reads nothing
                continue
            text = out.decode("utf-8", errors="replace")
            lines += [line.strip() for line in text.splitlines() if line.strip() and line.strip() not in lines]
        return "\n".join(lines)


def _finish(proc: subprocess.Popen, timeout: float) -> bytes | None:
    """A Tesseract pass's output; None if it outlasts `timeout` (then it is killed)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"tesseract failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return out
