"""The import-linter contracts of pyproject.toml hold on the tree and fail on a deliberate violation.

Each case lints a copy of the apps with one wrong import added, so the contracts are shown to catch what
they name (an app importing the app above it; the pipeline importing Django), not only to pass."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("matcher", "review", "pricing", "config")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "HOME": str(tree)},
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _add_import(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # a deliberate violation\n", encoding="utf-8")


def test_the_tree_keeps_every_layer_contract(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_matcher_importing_review_breaks_the_app_layers(tree):
    _add_import(tree / "matcher" / "runs" / "start.py", "import review.tasks")
    result = _lint(tree)
    assert result.returncode == 1
    assert "matcher is not allowed to import review" in result.stdout
    assert "- matcher.runs.start -> review.tasks" in result.stdout


def test_the_pipeline_importing_django_breaks_its_contract(tree):
    _add_import(tree / "matcher" / "pipeline" / "policy.py", "import django.db")
    result = _lint(tree)
    assert result.returncode == 1
    assert "matcher.pipeline is not allowed to import django" in result.stdout
    assert "matcher.pipeline.policy -> django (l." in result.stdout


def test_the_llm_importing_matching_breaks_the_matcher_layers(tree):
    _add_import(tree / "matcher" / "llm" / "online.py", "import matcher.matching")
    result = _lint(tree)
    assert result.returncode == 1
    assert "matcher.llm is not allowed to import matcher.matching" in result.stdout
    assert "- matcher.llm.online -> matcher.matching" in result.stdout
