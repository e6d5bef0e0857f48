"""Tesseract's C API (libtesseract) in this process, through ctypes: one initialised engine per
process, thread and languages, reading the same text as the `tesseract` command."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import time

from PIL import Image

# The `tesseract` command loads the Korean and English models on every start: ~0.3 CPU s before it
# reads a pixel, paid once per page mode per photo, i.e. most of what OCR cost (0.84 CPU s for the
# two passes on a listing photo, 0.30 through the library on the same photos, same text). The
# library is the one the command runs (Debian's libtesseract5, a dependency of tesseract-ocr), set
# up the way the command sets it up (same languages, page mode per pass, an 8-bit grey page with no
# resolution, so the same "estimating resolution" path), so the text is the same byte for byte.


class _TesseractLibrary:
    """One initialised TessBaseAPI per process and thread (the API is not thread-safe)."""

    def __init__(self, lib, languages: str) -> None:
        self.lib = lib
        self.languages = languages
        self._local = threading.local()

    def _handle(self) -> int:
        handle = getattr(self._local, "handle", None)
        if handle is None or getattr(self._local, "pid", None) != os.getpid():
            handle = self.lib.TessBaseAPICreate()
            if self.lib.TessBaseAPIInit3(handle, None, self.languages.encode()) != 0:
                self.lib.TessBaseAPIDelete(handle)
                raise RuntimeError(f"libtesseract could not load languages {self.languages}")
            # Its progress notes ("Estimating resolution as …") go nowhere instead of the worker's log.
            self.lib.TessBaseAPISetVariable(handle, b"debug_file", os.devnull.encode())
            self._local.handle, self._local.pid = handle, os.getpid()
        return handle

    def read_passes(self, gray: Image.Image, psms: tuple[int, ...], timeout_seconds: float) -> list[bytes | None]:
        """Each page mode's text as UTF-8 bytes; None for a pass that ran past the deadline."""
        handle = self._handle()
        gray = gray if gray.mode == "L" else gray.convert("L")
        data = gray.tobytes()
        deadline = time.monotonic() + timeout_seconds
        out: list[bytes | None] = []
        with self._one_thread():
            for psm in psms:
                out.append(self._read_pass(handle, data, gray.width, gray.height, psm, deadline))
        return out

    @contextlib.contextmanager
    def _one_thread(self):
        """Tesseract's OpenMP regions run on the calling thread alone while it reads.

        The command runs with OMP_THREAD_LIMIT=1; in this process the variable cannot be set
        without also limiting torch, whose OpenMP runtime Tesseract shares. With parallel regions
        off (max active levels 0) for the duration of the read, the text is the same and the CPU
        about 2.5× less than letting its threads wait on each other. torch's own setting is restored.
        """
        get = getattr(self.lib, "omp_get_max_active_levels", None)
        put = getattr(self.lib, "omp_set_max_active_levels", None)
        if get is None or put is None:
            yield
            return
        get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
        before = get()
        put(0)
        try:
            yield
        finally:
            put(before)

    def _read_pass(self, handle: int, data: bytes, width: int, height: int, psm: int, deadline: float) -> bytes | None:
        if time.monotonic() >= deadline:
            return None  # no time left: the pass is not started
        lib = self.lib
        lib.TessBaseAPISetPageSegMode(handle, psm)
        lib.TessBaseAPISetImage(handle, data, width, height, 1, width)
        monitor = lib.TessMonitorCreate()
        try:
            lib.TessMonitorSetDeadlineMSecs(monitor, max(1, int((deadline - time.monotonic()) * 1000)))
            if lib.TessBaseAPIRecognize(handle, monitor) != 0:
                return None  # cancelled at the deadline (or failed): this pass reads nothing
            if time.monotonic() > deadline:
                # Tesseract checks its deadline only between words, so a short line can finish past
                # it on a fast CPU: a pass that ends past the deadline reads nothing whichever way
                # it ended, so the timeout means the same on every host.
                return None
            text = lib.TessBaseAPIGetUTF8Text(handle)
            try:
                return ctypes.string_at(text) if text else b""
            finally:
                if text:
                    lib.TessDeleteText(text)
        finally:
            lib.TessMonitorDelete(monitor)
            lib.TessBaseAPIClear(handle)


_library_lock = threading.Lock()
_libraries: dict[str, _TesseractLibrary | None] = {}


def _library(languages: str) -> _TesseractLibrary | None:
    """The in-process engine for these languages, or None when libtesseract cannot be loaded."""
    with _library_lock:
        if languages not in _libraries:
            _libraries[languages] = _load_library(languages)
        return _libraries[languages]


def _load_library(languages: str) -> _TesseractLibrary | None:
    name = ctypes.util.find_library("tesseract") or "libtesseract.so.5"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for fn, args, res in (
        ("TessBaseAPICreate", [], p),
        ("TessBaseAPIDelete", [p], None),
        ("TessBaseAPIInit3", [p, s, s], i),
        ("TessBaseAPISetVariable", [p, s, s], i),
        ("TessBaseAPISetPageSegMode", [p, i], None),
        ("TessBaseAPISetImage", [p, s, i, i, i, i], None),
        ("TessBaseAPIRecognize", [p, p], i),
        ("TessBaseAPIGetUTF8Text", [p], p),
        ("TessBaseAPIClear", [p], None),
        ("TessDeleteText", [p], None),
        ("TessMonitorCreate", [], p),
        ("TessMonitorDelete", [p], None),
        ("TessMonitorSetDeadlineMSecs", [p, i], None),
    ):
        try:
            func = getattr(lib, fn)
        except AttributeError:
            return None
        func.argtypes, func.restype = args, res
    engine = _TesseractLibrary(lib, languages)
    try:
        engine._handle()
    except RuntimeError:
        return None
    return engine
