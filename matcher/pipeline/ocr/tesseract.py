"""TesseractOcr, the Ocr stage: Tesseract (kor+eng) through its library in this process or its
command, reading each text-like line on its own ("lines") or whole photos ("page")."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from functools import cache

from PIL import Image, ImageOps

from matcher.pipeline.ocr.library import _library
from matcher.pipeline.textgate import TextLineFinder

# off: every photo is read; skip: a photo without a text-like line (TextLineFinder) is not read and
# reads as ''. Photos that pass are read whole, so their text is what it is without the gate.
TEXT_GATES = ("off", "skip")
# auto: Tesseract's library in this process when libtesseract loads, else the `tesseract` command;
# library / cli force one (library falls back to the command when the library cannot be loaded).
ENGINES = ("auto", "library", "cli")
# lines: Tesseract reads each text-like line the TextLineFinder finds, cut out on its own (page
# mode 7, "one line"); page: Tesseract lays out the whole photo itself, once per page mode in `psm`.
LAYOUTS = ("lines", "page")


@cache
def _languages(cmd: str) -> frozenset[str]:
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = cmd
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except Exception:
        return frozenset()


class TesseractOcr:
    """Ocr stage: Tesseract with kor+eng.

    languages: Tesseract language codes joined by '+'; every one must be installed.
    max_side: images are scaled so their longer side is at most this (Tesseract time
        grows with pixels; 1600 keeps small print readable).
    psm: page segmentation modes, each a pass over the image whose lines are joined: 11
        ("sparse text") finds text scattered over a photo; 6 ("one block") reads a shop's
        banner across the photo that the sparse pass breaks up or misses (on the demo's
        banner listings it read 11 of 12 banners where the sparse pass read 7). Two passes
        cost twice the OCR time, spent only on the pairs headed for auto (and for a missing
        product number); a single int is one pass.
    threads: OpenMP threads of a Tesseract process (OMP_THREAD_LIMIT); the library engine reads on
        the calling thread alone.
    parallel_passes: run the page-mode passes of the "page" layout side by side as two processes
        (same text; less wall time for a worker that has two cores to itself, more CPU; off by
        default because the recommended layout is one single-threaded worker per core).
    text_gate: "page" layout only: "off" (default) or "skip": photos in which `text_finder` finds no
        text-like line are not read (''); the others are read whole, so their text does not change.
        (The "lines" layout reads only what the finder marks, so it needs no gate.)
    engine: "auto" (default: the library when it loads and no tesseract_cmd is given, else the
        command), "library" (falls back to the command where the library does not load) or "cli".
    layout: "lines" (default) or "page". Tesseract's own page layout analysis, given a whole
        listing photo, spends most of its time on "lines" it sees in fabric, quilting and zips, and
        loses a shop's banner under a large dark garment: on the benchmark catalogue's listing photos
        it read 29 of 31 near-miss banners (키즈 / 리퍼 / 해외배송 printed over our re-used photo) at
        0.51 CPU s per photo, and its noise read as a garment word on 9 other listings. "lines" cuts
        out each line the TextLineFinder finds (lines on one row joined, a margin of a third of
        their height, small text enlarged to ~24 px) and reads it as one line: 31 of 31 banners,
        noise on 1 listing, 0.17 CPU s per photo. `psm` applies to "page" only.
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
        text_gate: str = "off",
        text_finder: TextLineFinder | None = None,
        engine: str = "auto",
        layout: str = "lines",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if text_gate not in TEXT_GATES:
            raise ValueError(f"text_gate must be one of {TEXT_GATES}, not {text_gate!r}")
        self.languages = languages
        self.max_side = max_side
        self.psm = (psm,) if isinstance(psm, int) else tuple(psm)
        self.timeout_seconds = timeout_seconds
        self.tesseract_cmd = tesseract_cmd or shutil.which("tesseract") or "tesseract"
        self.threads = threads
        self.parallel_passes = parallel_passes
        self.text_gate = text_gate
        self.engine = engine
        self.layout = layout
        # "auto" takes the library only for the installed command (a tesseract_cmd given is meant to be
        # run); side-by-side page passes need two processes (lines are read one after the other).
        self._use_library = (not parallel_passes or layout == "lines") and (
            engine == "library" or (engine == "auto" and tesseract_cmd is None)
        )
        self.text_finder = text_finder or TextLineFinder()

    @property
    def signature(self) -> str:
        """What decides the text read: cached texts from another signature are read again."""
        if self.layout == "lines":
            return f"{self.name}:{self.languages}:lines{LINE_READER_VERSION}:{self.max_side}"
        gate = "" if self.text_gate == "off" else f":gate-{self.text_gate}"
        return f"{self.name}:{self.languages}:psm{'+'.join(map(str, self.psm))}:{self.max_side}{gate}"

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
            raise RuntimeError(f"tesseract with languages {self.languages} is not installed")
        gray = ImageOps.grayscale(image)
        scale = min(1.0, self.max_side / max(gray.size))
        if scale < 1.0:
            gray = gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))), Image.Resampling.LANCZOS)
        if self.layout == "lines":
            return self._read_lines(gray)  # each line is scaled to a readable size on its own
        if max(gray.size) < 600:
            # Tesseract wants text at least ~20 px tall; small web images get a 2× upscale.
            gray = gray.resize((gray.width * 2, gray.height * 2), Image.Resampling.LANCZOS)
        if self.text_gate != "off":
            import numpy as np

            if not self.text_finder.find(np.asarray(gray)):
                return ""
        library = _library(self.languages) if self._use_library else None
        if library is not None:
            outputs = library.read_passes(gray, self.psm, self.timeout_seconds)
        else:
            outputs = self._cli_passes(gray, self.psm)
        return _joined(outputs)

    def _read_lines(self, gray: Image.Image) -> str:
        """Each text-like line read on its own (page mode 7), top to bottom; '' when there is none."""
        import numpy as np

        crops = line_crops(gray, self.text_finder.find(np.asarray(gray)))
        if not crops:
            return ""
        library = _library(self.languages) if self._use_library else None
        deadline = time.monotonic() + self.timeout_seconds
        outputs: list[bytes | None] = []
        for crop in crops:
            left = deadline - time.monotonic()
            if left <= 0:
                break  # out of time: the lines read so far are the text
            if library is not None:
                outputs += library.read_passes(crop, (LINE_PSM,), left)
            else:
                outputs += self._cli_passes(crop, (LINE_PSM,), left)
        return _joined(outputs)

    def _cli_passes(
        self, gray: Image.Image, psms: tuple[int, ...], timeout_seconds: float | None = None
    ) -> list[bytes | None]:
        """One `tesseract` process per page mode on an uncompressed PGM; None for a pass that timed out."""
        env = {**os.environ, "OMP_THREAD_LIMIT": str(max(1, self.threads))}
        with tempfile.TemporaryDirectory(prefix="ocr-") as folder:
            path = os.path.join(folder, "page.pgm")
            gray.save(path, "PPM")  # mode L → binary PGM

            def start(psm: int) -> subprocess.Popen:
                return subprocess.Popen(
                    [self.tesseract_cmd, path, "stdout", "-l", self.languages, "--psm", str(psm)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                )

            deadline = time.monotonic() + (self.timeout_seconds if timeout_seconds is None else timeout_seconds)
            if self.parallel_passes:
                procs = [start(psm) for psm in psms]
                return [_finish(proc, max(0.1, deadline - time.monotonic())) for proc in procs]
            return [_finish(start(psm), max(0.1, deadline - time.monotonic())) for psm in psms]


# Page mode for a line cut out on its own; bump the version when line_crops changes what it cuts, so
# texts cached from the old cuts are read again.
LINE_PSM = 7
LINE_READER_VERSION = 1
LINE_TARGET_PX = 24  # Tesseract reads best with characters ~20-30 px tall
LINE_MAX_PX = 64


def line_crops(gray: Image.Image, boxes: list) -> list[Image.Image]:
    """The lines to read, top to bottom: boxes on one row (overlapping by half the smaller height)
    joined, a margin of a third of the height around each, scaled so characters are ~24 px tall
    (small labels up to 4x; banner type over 64 px down)."""
    rows: list[list[int]] = []
    for box in sorted((b.as_list() for b in boxes), key=lambda b: (b[1], b[0])):
        x0, y0, x1, y1 = box
        for row in rows:
            overlap = min(y1, row[3]) - max(y0, row[1])
            if overlap > 0.5 * min(y1 - y0, row[3] - row[1]):
                row[:] = [min(row[0], x0), min(row[1], y0), max(row[2], x1), max(row[3], y1)]
                break
        else:
            rows.append([x0, y0, x1, y1])
    crops = []
    for x0, y0, x1, y1 in sorted(rows, key=lambda r: (r[1], r[0])):
        h = max(1, y1 - y0)
        pad = max(4, round(0.35 * h))
        crop = gray.crop((max(0, x0 - pad), max(0, y0 - pad), min(gray.width, x1 + pad), min(gray.height, y1 + pad)))
        factor = min(4.0, LINE_TARGET_PX / h) if h < LINE_TARGET_PX else (LINE_MAX_PX / h if h > LINE_MAX_PX else 1.0)
        if factor != 1.0:
            crop = crop.resize((max(1, round(crop.width * factor)), max(1, round(crop.height * factor))), Image.Resampling.LANCZOS)
        crops.append(crop)
    return crops


def _joined(outputs: list[bytes | None]) -> str:
    """The passes' lines in order, each once; a pass that timed out (None) reads nothing."""
    lines: list[str] = []
    for out in outputs:
        if out is None:
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

