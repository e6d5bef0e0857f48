"""The match run's stage timers: each stage's seconds under its own name, counted once."""
from __future__ import annotations

import time
from collections import Counter

from matcher.matching import StageTimer


class SlowRemover:
    background = (255, 255, 255)

    def masks(self, images):
        time.sleep(0.02 * len(images))
        return ["mask"] * len(images)

    def cutout(self, images):
        return [f"cut-{m}" for m in self.masks(images)]  # calls its own masks(), not the timed one


def test_background_removal_is_timed_whichever_method_the_comparer_calls():
    timings: Counter = Counter()
    remover = StageTimer(SlowRemover(), ("masks", "cutout"), "cutout", timings)

    assert remover.masks([1, 2]) == ["mask", "mask"]
    after_masks = timings["cutout"]
    assert remover.cutout([1]) == ["cut-mask"]

    assert 0.04 <= after_masks < 0.2
    assert 0.02 <= timings["cutout"] - after_masks < 0.2  # once, not twice through masks()
    assert remover.background == (255, 255, 255)  # other attributes pass through untimed
    assert set(timings) == {"cutout"}
