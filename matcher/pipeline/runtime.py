"""Process-wide settings the vision stages share: the project's var/ folder and CPU threads.

torch's thread count is global to the process, and importing ultralytics sets
OMP_NUM_THREADS=1 when it is unset, so a stage that does not set threads itself can
silently run single-threaded. Every stage therefore calls `configure_threads`.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
