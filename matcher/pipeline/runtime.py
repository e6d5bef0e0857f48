"""Process-wide settings the vision stages share: the project's var/ folder and CPU threads.

torch's thread count is global to the process, and importing ultralytics sets
OMP_NUM_THREADS=1 when it is unset, so a stage that does not set threads itself can
silently run single-threaded. Every stage therefore calls `configure_threads`.

Threads that wait for work: torch's OpenMP (libgomp) and ONNX Runtime's pool spin by default, so a
worker sharing its cores with another process (a second worker, PostgreSQL, Tesseract) burns CPU
waiting. With OMP_WAIT_POLICY=PASSIVE YOLO pose cost 0.26-0.27 against 0.42-0.46 CPU s per image
with 2 threads at load ~4 on 2 cores, and less wall time too. libgomp reads the variable once,
when torch loads, so it is set when this module is imported: every stage imports it before it
imports torch. An OMP_WAIT_POLICY set in the environment wins.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ONNX Runtime's counterpart, for SessionOptions.add_session_config_entry.
ORT_NO_SPINNING = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


def var_dir() -> Path:
    """The project's var/ folder (caches, model files); $MATCHER_VAR_DIR overrides it."""
    return Path(os.environ.get("MATCHER_VAR_DIR", PROJECT_ROOT / "var"))


def default_threads() -> int:
    """$MATCHER_THREADS, else every core: a worker process runs one model at a time."""
    return int(os.environ.get("MATCHER_THREADS") or os.cpu_count() or 1)


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (process-wide) and return the number used."""
    import torch

    n = max(1, threads or default_threads())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def openvino_bf16_available() -> bool:
    """Whether OpenVINO is installed and this CPU runs bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        import openvino as ov
    except ImportError:
        return False
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:
        return False
