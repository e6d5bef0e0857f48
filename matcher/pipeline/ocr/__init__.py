"""Text in listing photos (Korean + English) with Tesseract, when it is installed.

Optional: without the `tesseract` binary or its Korean data (Debian packages
tesseract-ocr, tesseract-ocr-kor), `available()` is False and the pipeline runs without
OCR. Tesseract reads clean text (size charts, product-number labels) well and stylised
text over photos poorly, so the comparer only lets OCR confirm a product number, never
count against one.

Engines, same text: by default Tesseract's library (libtesseract, installed with the command) runs
in this process, initialised once per process and thread, so the ~0.3 CPU s that every start of
the command spends loading the Korean and English models is paid once instead of once per page
mode per photo (0.84 → 0.30 CPU s per photo for the two passes, identical text on 209 listing,
banner and studio photos). Where the library cannot be loaded, or with `parallel_passes=True`,
each image is written once as an uncompressed greyscale PGM and read by one `tesseract` process
per page mode, each with OpenMP held to one thread (Tesseract's own threads mostly spin).

Layout: by default (`layout="lines"`) Tesseract does not lay out the photo itself. The text-line
finder (matcher/pipeline/textgate.py, ~15 ms) marks the lines, and each line is cut out, scaled to
a readable size and read as one line. Tesseract's own layout of a whole listing photo loses a
shop's banner under a large dark garment (the precision guard's 키즈 / 리퍼 / 해외배송 bars) and reads
fabric as text; the lines are read at about a third of the CPU. `layout="page"` keeps the whole-photo
passes (page modes 11 and 6), with an optional text gate (`text_gate="skip"`) that leaves photos
without a text-like line unread.

Modules: tesseract.py (TesseractOcr, the command's passes, the line crops), library.py (libtesseract
in this process).
"""
from matcher.pipeline.ocr.tesseract import (
    ENGINES,
    LAYOUTS,
    LINE_MAX_PX,
    LINE_PSM,
    LINE_READER_VERSION,
    LINE_TARGET_PX,
    TEXT_GATES,
    TesseractOcr,
    line_crops,
)

__all__ = [
    "ENGINES",
    "LAYOUTS",
    "LINE_MAX_PX",
    "LINE_PSM",
    "LINE_READER_VERSION",
    "LINE_TARGET_PX",
    "TEXT_GATES",
    "TesseractOcr",
    "line_crops",
]
