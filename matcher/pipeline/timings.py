"""What the stages of a comparison cost: how often each ran (StageCounts) and for how long (StageTimings)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StageCounts:
    """How often each stage ran (cache hits do not count as runs)."""

    images: int = 0
    cache_hits: int = 0
    region_images: int = 0
    embedded_crops: int = 0
    colour_signatures: int = 0
    keypoint_images: int = 0
    geometry_checks: int = 0
    cutout_images: int = 0
    ocr_images: int = 0
    unreadable_images: int = 0
    # Pairs where a stage was due by the old rule (near a threshold) but could not change the bucket.
    cutout_skipped: int = 0
    ocr_skipped: int = 0

    def add(self, other: StageCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class StageTimings:
    """Seconds spent per named stage, summed over every `with timings.stage(name):` block.

    Stages may nest ("analysis" holds "regions" and "embed"): each name counts its own wall time, so the
    names do not add up to the total. `clock` is injectable for tests and CPU-time benchmarks.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = clock

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0) + (self._clock() - started)

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)
