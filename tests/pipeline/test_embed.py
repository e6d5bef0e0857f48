from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.embed import OpenClipEmbedder, letterbox
from matcher.pipeline.embed.preprocess import _to_array
from matcher.pipeline.types import Embedder
from matcher.pipeline.weights import checkpoint_hash


def test_letterbox_pads_a_tall_photo_with_white_instead_of_stretching_it():
    tall = Image.new("RGB", (100, 200), (10, 20, 30))
    square = np.asarray(letterbox(tall, 64))
    assert square.shape == (64, 64, 3)
    assert (square[:, :14] == 255).all() and (square[:, -14:] == 255).all()  # white bars left and right
    assert (square[:, 20:44] == (10, 20, 30)).all()  # the photo, whole height, undistorted colour


def test_the_batch_is_the_letterboxed_photos_normalised(bus, zidane, luma):
    """_to_array writes the normalised batch without a letterbox canvas; it must hold what
    letterboxing and normalising each photo gives (tall, wide, transparent)."""
    transparent = Image.new("RGBA", (120, 300), (200, 30, 30, 0))
    transparent.paste((20, 40, 200, 255), (30, 60, 90, 240))
    images = [bus, zidane, luma("ms08-black_main.jpg"), transparent]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    expected = np.stack([np.asarray(letterbox(im, 260), np.float32) / 255.0 for im in images])
    expected = ((expected - np.float32(mean)) / np.float32(std)).transpose(0, 3, 1, 2)

    batch = _to_array(images, 260, mean, std)
    assert batch.shape == (4, 3, 260, 260) and batch.dtype == np.float32 and batch.flags["C_CONTIGUOUS"]
    assert np.abs(batch - expected).max() < 1e-5


# --- EfficientNet-Lite2 (offline default) ---------------------------------------------------


@pytest.mark.slow
def test_the_checkpoint_loads_completely_and_recognises_a_bus(efficientnet, bus):
    # Strict loading already ran in the constructor; a partial or mis-mapped load would
    # still pass a shape check, so ask the classifier what it sees.
    (top,) = efficientnet.imagenet_top([bus], k=3)
    label, probability = top[0]
    assert label.split(",")[0] in {"minibus", "trolleybus", "school bus", "passenger car"}
    assert probability > 0.3


@pytest.mark.slow
def test_a_fleece_jacket_is_classed_as_clothing(efficientnet, luma):
    (top,) = efficientnet.imagenet_top([luma("mj08-green_main.jpg")], k=1)
    assert top[0][0].split(",")[0] in {"sweatshirt", "cardigan", "jersey", "fleece"}


@pytest.mark.slow
def test_efficientnet_embeddings_are_normalised_batched_and_deterministic(efficientnet, bus, zidane, luma):
    assert isinstance(efficientnet, Embedder)
    assert efficientnet.name == "efficientnet_lite2" and efficientnet.dim == 1280
    assert efficientnet.checkpoint_hash == "9656183eaeaf"
    images = [bus, zidane, luma("mj08-green_main.jpg")]

    together = efficientnet.embed(images)
    one_by_one = np.concatenate([efficientnet.embed([im]) for im in images])

    assert together.shape == (3, 1280) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, one_by_one, atol=1e-4)
    assert np.array_equal(together, efficientnet.embed(images))
    assert efficientnet.embed([]).shape == (0, 1280)


@pytest.mark.slow
def test_two_shots_of_one_jacket_are_closer_than_a_bus(efficientnet, luma, bus):
    front, back, street = efficientnet.embed([luma("mj08-gray_main.jpg"), luma("mj08-gray_back.jpg"), bus])
    assert front @ back > front @ street + 0.2


# --- EfficientNet-Lite2 in ONNX Runtime ----------------------------------------------------


@pytest.fixture(scope="module")
def weights_copy(tmp_path_factory):
    """The Lite2 weights in a scratch folder, so the exported graph lands there and not in var/models."""
    import shutil

    from matcher.pipeline.weights import EFFICIENTNET_LITE2, default_path

    source = default_path(EFFICIENTNET_LITE2)
    if not source.is_file():
        pytest.skip(f"{source} is missing; run `python -m matcher.pipeline.weights fetch`")
    folder = tmp_path_factory.mktemp("lite2")
    return Path(shutil.copy(source, folder / EFFICIENTNET_LITE2.filename))


@pytest.fixture
def lonely_weights(weights_copy, tmp_path):
    """The weights alone in a fresh folder: no exported or converted graph beside them yet."""
    import shutil

    return Path(shutil.copy(weights_copy, tmp_path / weights_copy.name))


@pytest.mark.slow
def test_onnx_runtime_gives_the_pytorch_vectors_on_real_photos(weights_copy, efficientnet, luma, bus, zidane, threads):
    from matcher.pipeline.embed import EfficientNetLiteEmbedder, onnx_path_for

    eager = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="torch")
    onnx = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="onnx")
    photos = [luma(n) for n in ("mj08-green_main.jpg", "mj08-gray_back.jpg", "mh02-black_alt1.jpg")]
    # Crops of odd sizes, as the region finder hands them over (letterboxed inside the embedder).
    photos += [bus, zidane, bus.crop((40, 200, 300, 900)), photos[0].crop((100, 150, 420, 400))]

    a, b = eager.embed(photos), onnx.embed(photos)

    assert onnx.runtime == "onnx" and eager.runtime == "torch"
    assert onnx_path_for(weights_copy, onnx.arch, onnx.image_size).is_file()
    # Same weights, same key: vectors from either runtime share the analysis cache and Region rows.
    assert (onnx.name, onnx.checkpoint_hash, onnx.dim) == (eager.name, eager.checkpoint_hash, eager.dim)
    assert b.shape == a.shape == (7, 1280) and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) >= 0.9999
    # Batching does not change a vector, and the shared-path default embedder agrees too.
    assert np.allclose(np.concatenate([onnx.embed([p]) for p in photos[:3]]), b[:3], atol=1e-4)
    assert float((efficientnet.embed(photos[:2]) * b[:2]).sum(axis=1).min()) >= 0.9999
    assert onnx.embed([]).shape == (0, 1280)


@pytest.mark.slow
def test_onnx_runtime_falls_back_to_pytorch_when_the_graph_cannot_be_exported(lonely_weights, monkeypatch, bus, threads):
    from matcher.pipeline import embed
    from matcher.pipeline.embed import efficientnet


    def no_exporter(*args, **kwargs):
        raise ImportError("No module named 'onnx'")

    monkeypatch.setattr(efficientnet, "export_onnx", no_exporter)
    embedder = embed.EfficientNetLiteEmbedder(lonely_weights, threads=threads, runtime="onnx")
    assert embedder.runtime == "torch"
    assert embedder.embed([bus]).shape == (1, 1280)
    assert not embed.onnx_path_for(lonely_weights, embedder.arch, embedder.image_size).exists()


# --- EfficientNet-Lite2 in OpenVINO ------------------------------------------------------------


def _photos(luma, bus, zidane):
    photos = [luma(n) for n in ("mj08-green_main.jpg", "mj08-gray_back.jpg", "mh02-black_alt1.jpg")]
    return photos + [bus, zidane, bus.crop((40, 200, 300, 900)), photos[0].crop((100, 150, 420, 400))]


@pytest.mark.slow
def test_openvino_float32_gives_the_onnx_vectors_under_the_same_key(weights_copy, luma, bus, zidane, threads):
    from matcher.pipeline.embed import EfficientNetLiteEmbedder, efficientnet_name, openvino_path_for

    onnx = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="onnx")
    openvino = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="openvino")
    photos = _photos(luma, bus, zidane)

    a, b = onnx.embed(photos), openvino.embed(photos)

    assert openvino.runtime == "openvino" and openvino._session.precision == "f32"
    # Converted once, beside the weights and the .onnx it came from.
    xml = openvino_path_for(weights_copy, openvino.arch, openvino.image_size)
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert (openvino.name, openvino.checkpoint_hash) == (onnx.name, onnx.checkpoint_hash) == (
        efficientnet_name("openvino"), onnx.checkpoint_hash)
    assert b.shape == (7, 1280) and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) >= 0.9999
    # A batch split across the streams gives what one image at a time gives.
    assert np.allclose(np.concatenate([openvino.embed([p]) for p in photos[:3]]), b[:3], atol=1e-4)
    assert openvino.embed([]).shape == (0, 1280)


@pytest.mark.slow
def test_openvino_bfloat16_vectors_stay_close_and_are_keyed_apart(weights_copy, luma, bus, zidane, threads):
    import openvino  # noqa: F401  (a pinned dependency: missing, the test fails rather than skips)

    from matcher.pipeline.embed import EfficientNetLiteEmbedder, efficientnet_name, openvino_bf16_available

    if not openvino_bf16_available():
        pytest.skip("this CPU has no native bfloat16 (AMX / AVX512-BF16): the float32 fallback is tested below")
    onnx = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="onnx")
    bf16 = EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="openvino-bf16")
    photos = _photos(luma, bus, zidane)

    a, b = onnx.embed(photos), bf16.embed(photos)

    assert bf16.runtime == "openvino-bf16" and bf16._session.precision == "bf16"
    # Other vectors, other key: nothing embedded in float32 is reused for them, or the other way round.
    assert bf16.name == efficientnet_name("openvino-bf16") == "efficientnet_lite2:bf16" != onnx.name
    assert bf16.checkpoint_hash == onnx.checkpoint_hash
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(axis=1)
    assert float(cos.min()) >= 0.99  # 0.994 at worst on 100 evaluation photos
    assert not np.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_openvino_bfloat16_runs_float32_where_the_cpu_has_no_bfloat16(weights_copy, monkeypatch, bus, threads):
    from matcher.pipeline import embed
    from matcher.pipeline.embed import efficientnet

    monkeypatch.setattr(efficientnet, "openvino_bf16_available", lambda: False)
    embedder = embed.EfficientNetLiteEmbedder(weights_copy, threads=threads, runtime="openvino-bf16")
    assert embedder.runtime == "openvino" and embedder._session.precision == "f32"
    assert embedder.name == embed.efficientnet_name("openvino-bf16") == "efficientnet_lite2"


@pytest.mark.slow
def test_openvino_falls_back_to_onnx_runtime_when_it_cannot_convert(lonely_weights, monkeypatch, bus, threads):
    from matcher.pipeline import embed
    from matcher.pipeline.embed import efficientnet


    def no_openvino(*args, **kwargs):
        raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(efficientnet, "convert_openvino", no_openvino)
    for runtime in ("openvino", "openvino-bf16"):
        embedder = embed.EfficientNetLiteEmbedder(lonely_weights, threads=threads, runtime=runtime)
        assert embedder.runtime == "onnx" and embedder.name == "efficientnet_lite2"
        assert embedder.embed([bus]).shape == (1, 1280)
    assert not embed.openvino_path_for(lonely_weights, embedder.arch, embedder.image_size).exists()


def test_an_unknown_embedder_runtime_is_refused(tmp_path):
    from matcher.pipeline.embed import EfficientNetLiteEmbedder

    with pytest.raises(ValueError, match="runtime"):
        EfficientNetLiteEmbedder(tmp_path / "missing.pth", runtime="tensorrt")


# --- open_clip, through a state dict saved to a file --------------------------------------------

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip_file(tmp_path_factory):
    """A randomly initialised small open_clip model, registered under a test name, saved as a state dict."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("open_clip")
    (folder / "matcher-test-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder / "matcher-test-tiny.json")
    torch.manual_seed(0)
    model = open_clip.create_model("matcher-test-tiny", pretrained=None).eval()
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model


@pytest.mark.slow
def test_open_clip_loads_weights_from_a_local_file(tiny_clip_file, bus, zidane, threads):
    import torch

    path, original = tiny_clip_file
    embedder = OpenClipEmbedder("matcher-test-tiny", pretrained=path, threads=threads)

    assert isinstance(embedder, Embedder)
    assert embedder.name == "open_clip:matcher-test-tiny"
    assert embedder.dim == 32
    assert embedder.checkpoint_hash == checkpoint_hash(path)

    vectors = embedder.embed([bus, zidane])
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, embedder.embed([bus, zidane]))
    # The weights came from the file: the saved model itself gives the same vectors.
    mean = torch.tensor(original.visual.preprocess_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(original.visual.preprocess_cfg["std"]).view(1, 3, 1, 1)
    squares = [np.asarray(letterbox(im, 64), np.float32) / 255 for im in (bus, zidane)]
    pixels = torch.from_numpy(np.stack(squares))
    with torch.inference_mode():
        expected = original.encode_image((pixels.permute(0, 3, 1, 2) - mean) / std)
    expected = torch.nn.functional.normalize(expected, dim=1).numpy()
    assert np.allclose(vectors, expected, atol=1e-5)


@pytest.mark.slow
def test_open_clip_refuses_a_file_that_does_not_fit_the_architecture(tiny_clip_file, tmp_path, threads):
    import torch

    path, original = tiny_clip_file
    state = original.state_dict()
    del state["visual.proj"]
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(RuntimeError, match="visual.proj"):
        OpenClipEmbedder("matcher-test-tiny", pretrained=broken, threads=threads)
