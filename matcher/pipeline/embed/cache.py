"""Loaded models and sessions of every kind, one per process; each loader knows what its key prefix holds.

One table and one lock for all of them, as when they lived in one module: a worker loads each once.
"""
from __future__ import annotations

import threading
from typing import Any

models: dict[tuple[str, ...], Any] = {}
models_lock = threading.Lock()
