"""Pipeline stages named by dotted path, built once per process.

Settings say which class does a job, e.g.
    EMBEDDER = {"path": "matcher.pipeline.embed.EfficientNetLiteEmbedder", "kwargs": {"threads": 2}}
and callers do `load_stage(**settings.EMBEDDER)`-style calls; the same path and
arguments give back the same instance, so a worker loads each model once.
"""
from __future__ import annotations

import importlib
import json
import threading
from typing import Any

_stages: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def import_dotted(dotted_path: str) -> Any:
    """The object at 'package.module.Name'."""
    module_path, _, attr = dotted_path.rpartition(".")
    if not module_path:
        raise ImportError(f"{dotted_path!r} is not a dotted path to a class")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ImportError(f"module {module_path!r} has no {attr!r}") from exc


def _kwargs_key(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, default=repr)


def load_stage(dotted_path: str, /, **kwargs: Any) -> Any:
    """An instance of the class at `dotted_path` built with `kwargs`, cached per process."""
    key = (dotted_path, _kwargs_key(kwargs))
    stage = _stages.get(key)
    if stage is None:
        with _lock:
            stage = _stages.get(key)
            if stage is None:
                stage = import_dotted(dotted_path)(**kwargs)
                _stages[key] = stage
    return stage


def clear_stages() -> None:
    """Forget built stages (tests; a settings change in a long-lived process)."""
    with _lock:
        _stages.clear()
