"""System checks (`manage.py check`, run at every start): settings a worker would only trip over later."""
from __future__ import annotations

from django.conf import settings
from django.core import checks

from matcher.pipeline import detect, embed, segment


@checks.register()
def embedder_runtime(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if getattr(settings, "MATCHER_EMBEDDER", "efficientnet") != "efficientnet":
        return []
    runtime = getattr(settings, "MATCHER_EMBEDDER_RUNTIME", "onnx")
    if runtime not in embed.RUNTIMES:
        return [checks.Error(
            f"MATCHER_EMBEDDER_RUNTIME={runtime!r} is not one of {', '.join(embed.RUNTIMES)}",
            id="matcher.E001",
        )]
    if runtime in embed.BF16_RUNTIMES and not embed.openvino_bf16_available():
        return [checks.Warning(
            "MATCHER_EMBEDDER_RUNTIME=openvino-bf16, but this machine has no native bfloat16 (or no openvino): "
            "it embeds in float32, under the key efficientnet_lite2 rather than efficientnet_lite2:bf16",
            hint="Machines sharing one database must embed alike: set MATCHER_EMBEDDER_RUNTIME=openvino on every "
                 "machine of a fleet whose CPUs are not all bfloat16-capable (AMX / AVX512-BF16).",
            id="matcher.W001",
        )]
    return []


@checks.register()
def detector_runtime(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    runtime = getattr(settings, "MATCHER_DETECTOR_RUNTIME", "openvino-bf16")
    if runtime not in detect.RUNTIMES:
        return [checks.Error(
            f"MATCHER_DETECTOR_RUNTIME={runtime!r} is not one of {', '.join(detect.RUNTIMES)}",
            id="matcher.E002",
        )]
    return []


@checks.register()
def cutout_runtime(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    runtime = getattr(settings, "MATCHER_CUTOUT_RUNTIME", "openvino-bf16")
    if runtime not in segment.RUNTIMES:
        return [checks.Error(
            f"MATCHER_CUTOUT_RUNTIME={runtime!r} is not one of {', '.join(segment.RUNTIMES)}",
            id="matcher.E003",
        )]
    return []
