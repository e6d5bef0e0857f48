from __future__ import annotations

from fractions import Fraction

import pytest

from matcher.pipeline.registry import clear_stages, load_stage
from matcher.pipeline.types import Embedder


@pytest.fixture(autouse=True)
def _fresh_registry():
    clear_stages()
    yield
    clear_stages()


def test_the_same_path_and_arguments_give_the_same_instance():
    half = load_stage("fractions.Fraction", numerator=1, denominator=2)
    assert half == Fraction(1, 2)
    assert load_stage("fractions.Fraction", numerator=1, denominator=2) is half
    assert load_stage("fractions.Fraction", numerator=1, denominator=3) == Fraction(1, 3)


def test_a_path_that_names_nothing_is_an_import_error():
    with pytest.raises(ImportError, match="no 'Nope'"):
        load_stage("matcher.pipeline.embed.Nope")
    with pytest.raises(ImportError):
        load_stage("EfficientNetLiteEmbedder")


@pytest.mark.slow
def test_settings_can_name_the_offline_embedder(efficientnet, threads):
    embedder = load_stage("matcher.pipeline.embed.EfficientNetLiteEmbedder", threads=threads)
    assert isinstance(embedder, Embedder)
    assert embedder.checkpoint_hash == efficientnet.checkpoint_hash
    assert load_stage("matcher.pipeline.embed.EfficientNetLiteEmbedder", threads=threads) is embedder
