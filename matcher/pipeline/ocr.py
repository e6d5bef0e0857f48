"""Text in listing photos (Korean + English) with Tesseract, when it is installed.

Optional: without the `tesseract` binary or its Korean data (Debian packages
tesseract-ocr, tesseract-ocr-kor), `available()` is False and the pipeline runs without
OCR. Tesseract reads clean text (size charts, product-number labels) well and stylised
text over photos poorly, so the comparer only lets OCR confirm a product number, never
count against one.
"""
from __future__ import annotations

import shutil
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
    psm: page segmentation mode; 11 ("sparse text") finds text scattered over a photo.
    """

    name = "tesseract"

    def __init__(
        self,
        *,
        languages: str = "kor+eng",
        max_side: int = 1600,
        psm: int = 11,
        timeout_seconds: float = 20.0,
        tesseract_cmd: str | None = None,
    ) -> None:
        self.languages = languages
        self.max_side = max_side
        self.psm = psm
        self.timeout_seconds = timeout_seconds
        self.tesseract_cmd = tesseract_cmd or shutil.which("tesseract") or "tesseract"

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
        import pytesseract

        pytesseract.pytesseract.tesseract_cmd = self.tesseract_cmd
        gray = ImageOps.grayscale(image)
        scale = min(1.0, self.max_side / max(gray.size))
        if scale < 1.0:
            gray = gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))), Image.LANCZOS)
        elif max(gray.size) < 600:
            # Tesseract wants text at least ~20 px tall; small web images get a 2× upscale.
            gray = gray.resize((gray.width * 2, gray.height * 2), Image.LANCZOS)
        try:
            text = pytesseract.image_to_string(
                gray, lang=self.languages, config=f"--psm {self.psm}", timeout=self.timeout_seconds
            )
        except RuntimeError:  # pytesseract raises RuntimeError on timeout
            return ""
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
