from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.embed import OpenClipEmbedder, letterbox
from matcher.pipeline.types import Embedder
from matcher.pipeline.weights import checkpoint_hash


def test_letterbox_pads_a_tall_photo_with_white_instead_of_stretching_it():
    tall = Image.new("RGB", (100, 200), (10, 20, 30))
    square = np.asarray(letterbox(tall, 64))
    assert square.shape == (64, 64, 3)
    assert (square[:, :14] == 255).all() and (square[:, -14:] == 255).all()  # white bars left and right
    assert (square[:, 20:44] == (10, 20, 30)).all()  # the photo, whole height, undistorted colour


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
