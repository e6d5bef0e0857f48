"""System checks on the embedder and detector settings."""
from __future__ import annotations

from django.core import checks

from matcher import checks as matcher_checks


def _ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_default_runtime_passes(settings):
    settings.MATCHER_EMBEDDER, settings.MATCHER_EMBEDDER_RUNTIME = "efficientnet", "openvino"
    assert matcher_checks.embedder_runtime() == []


def test_an_unknown_runtime_is_an_error_at_start(settings):
    settings.MATCHER_EMBEDDER, settings.MATCHER_EMBEDDER_RUNTIME = "efficientnet", "onnxx"
    (message,) = matcher_checks.embedder_runtime()
    assert message.id == "matcher.E001" and message.level == checks.ERROR and "onnxx" in message.msg
    assert "matcher.E001" in _ids(checks.run_checks())


def test_bfloat16_on_a_machine_without_it_warns_that_its_vectors_are_keyed_apart(settings, monkeypatch):
    from matcher.pipeline import embed

    settings.MATCHER_EMBEDDER, settings.MATCHER_EMBEDDER_RUNTIME = "efficientnet", "openvino-bf16"
    monkeypatch.setattr(embed, "openvino_bf16_available", lambda: False)
    (message,) = matcher_checks.embedder_runtime()
    assert message.id == "matcher.W001" and "efficientnet_lite2:bf16" in message.msg
    monkeypatch.setattr(embed, "openvino_bf16_available", lambda: True)
    assert matcher_checks.embedder_runtime() == []


def test_another_embedder_is_not_checked_here(settings):
    settings.MATCHER_EMBEDDER, settings.MATCHER_EMBEDDER_RUNTIME = "open_clip", "whatever"
    assert matcher_checks.embedder_runtime() == []


def test_the_detector_runtime_is_checked_at_start(settings):
    settings.MATCHER_DETECTOR_RUNTIME = "openvino"
    assert matcher_checks.detector_runtime() == []
    settings.MATCHER_DETECTOR_RUNTIME = "tensorrt"
    (message,) = matcher_checks.detector_runtime()
    assert message.id == "matcher.E002" and message.level == checks.ERROR and "tensorrt" in message.msg


def test_the_cutout_runtime_is_checked_at_start(settings):
    settings.MATCHER_CUTOUT_RUNTIME = "openvino-bf16"
    assert matcher_checks.cutout_runtime() == []
    settings.MATCHER_CUTOUT_RUNTIME = "tensorrt"
    (message,) = matcher_checks.cutout_runtime()
    assert message.id == "matcher.E003" and message.level == checks.ERROR and "tensorrt" in message.msg
