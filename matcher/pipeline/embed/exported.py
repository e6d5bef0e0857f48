"""EfficientNet-Lite2's feature network exported: the .onnx graph and the OpenVINO IR beside the
weights, and the ONNX Runtime / OpenVINO sessions that run them (one per file and thread count)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from matcher.pipeline.embed import cache
from matcher.pipeline.runtime import ORT_NO_SPINNING
from matcher.pipeline.weights import checkpoint_hash

ONNX_OPSET = 17


def feature_net(model):
    """The pooled 1280-d features of a timm EfficientNet as one module (what gets exported)."""
    import torch

    class FeatureNet(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward_head(self.inner.forward_features(x), pre_logits=True)

    return FeatureNet(model).eval()


def onnx_path_for(weights_path: Path, arch: str, image_size: int) -> Path:
    """Where the exported graph of these weights lives: beside them, named by checkpoint hash."""
    return weights_path.parent / f"{arch}-{checkpoint_hash(weights_path)}-{image_size}-opset{ONNX_OPSET}.onnx"


def export_onnx(model, path: Path, image_size: int) -> Path:
    """Export the feature network to `path` (dynamic batch), written to a temporary file first so
    two worker processes starting together never read a half-written graph."""
    import tempfile

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    net = feature_net(model)
    probe = torch.zeros(2, 3, image_size, image_size)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode():
            torch.onnx.export(
                net, (probe,), tmp, dynamo=False, opset_version=ONNX_OPSET, input_names=["images"],
                output_names=["features"], dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _onnx_session(path: Path, threads: int):
    """One ONNX Runtime session per graph file and thread count per process."""
    key = ("onnx", str(path.resolve()), str(threads))
    with cache.models_lock:
        if key not in cache.models:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # A worker runs one stage at a time: all its cores go to the operator, none to a second graph.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            for name, value in ORT_NO_SPINNING.items():  # idle threads sleep (see runtime.py)
                options.add_session_config_entry(name, value)
            cache.models[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return cache.models[key]


def openvino_path_for(weights_path: Path, arch: str, image_size: int) -> Path:
    """The OpenVINO IR (.xml, its weights in the .bin beside it) converted from the exported graph."""
    return onnx_path_for(weights_path, arch, image_size).with_suffix(".xml")


def convert_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """Convert the ONNX graph to OpenVINO IR with float32 weights (save_model would halve them to
    float16 by default, which changes the float32 vectors). Written under temporary names and moved
    into place .bin first, so a reader that finds the .xml always finds its whole .bin."""
    import tempfile

    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    tmp_dir = Path(tempfile.mkdtemp(dir=xml_path.parent, prefix=".ov-"))
    try:
        tmp_xml = tmp_dir / xml_path.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    finally:
        for leftover in tmp_dir.iterdir():
            leftover.unlink()
        tmp_dir.rmdir()
    return xml_path



class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's `run(None, {"images": x})` call.

    One stream per thread, each with one thread: a batch is split across the streams and run
    side by side, which uses the cores better than two threads inside each depthwise convolution
    (0.51 against 0.47 of the GEMM rate per CPU second in float32 here)."""

    def __init__(self, xml_path: Path, threads: int, precision: str) -> None:
        import openvino as ov

        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": threads,
            "INFERENCE_NUM_THREADS": threads,
            # float32 keeps the ONNX Runtime / PyTorch vectors; OpenVINO would pick bf16 itself on CPUs
            # that have it.
            "INFERENCE_PRECISION_HINT": precision,
        }
        self.compiled = ov.Core().compile_model(str(xml_path), "CPU", config)
        # What the plugin settled on ("bf16" or "f32"), not what was asked for.
        chosen = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = "bf16" if chosen == ov.Type.bf16 else "f32"
        self._requests = [self.compiled.create_infer_request() for _ in range(threads)]
        self._lock = threading.Lock()

    def run(self, _outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["images"]
        parts = [p for p in np.array_split(x, len(self._requests)) if len(p)]
        with self._lock:  # infer requests are not re-entrant
            requests = self._requests[: len(parts)]
            for request, part in zip(requests, parts):
                request.start_async({0: np.ascontiguousarray(part)})
            out = []
            for request in requests:
                request.wait()
                out.append(np.array(request.get_output_tensor(0).data, dtype=np.float32))
        return [np.concatenate(out) if out else np.zeros((0, 1280), np.float32)]


def _openvino_session(path: Path, threads: int, precision: str) -> OpenVinoSession:
    key = ("openvino", str(path.resolve()), str(threads), precision)
    with cache.models_lock:
        if key not in cache.models:
            cache.models[key] = OpenVinoSession(path, threads, precision)
    return cache.models[key]

