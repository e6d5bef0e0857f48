"""`make bench` stays runnable: one cheap section in quick mode, end to end through the CLI.

No timing assertions (targets live in benchmarks/); this checks the figures are produced and
written where the sizing table reads them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import common, images, run
from matcher.demo.garments import GarmentSpec, render


@pytest.fixture
def small_demo(tmp_path, monkeypatch) -> Path:
    """Three rendered catalogue photos instead of the generated demo, so the test takes seconds."""
    folder = tmp_path / "demo"
    (folder / "images").mkdir(parents=True)
    for i, view in enumerate(("front", "back", "detail")):
        render(GarmentSpec(garment="jacket", colour="black", logo="BENCH", seed=i), view).save(folder / "images" / f"p{i}.jpg", quality=90)
    monkeypatch.setattr(common, "BENCH_VAR", tmp_path)
    monkeypatch.setattr(images, "demo_dir", lambda quick: folder)
    return folder


def test_quick_keypoints_section_writes_its_figures_and_keeps_other_sections(small_demo, tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"pgvector_p95_ms_1m": 12.5}))

    status = run.main(["--only", "keypoints", "--quick", "--out", str(out)])

    results = json.loads(out.read_text())
    assert status == 0
    assert results["keypoints_n_images"] == images_count()
    assert results["keypoints_images_per_s"] > 0
    assert results["keypoints_cpu_s_per_image"] > 0
    assert results["sections"]["keypoints"]["quick"] is True
    assert results["pgvector_p95_ms_1m"] == 12.5  # a section run alone keeps the others' figures
    assert results["machine"]["cores"] >= 1
    assert results["sections"]["keypoints"]["cpu"] == results["machine"]["cpu"]  # each section names its host
    assert "keypoints_images_per_s" in capsys.readouterr().out


@pytest.mark.slow
def test_quick_detect_section_measures_the_active_runtime_beside_the_other(small_demo, tmp_path, settings):
    settings.MATCHER_DETECTOR_RUNTIME, settings.MATCHER_DETECT_IMAGE_SIZE = "openvino", 0
    out = tmp_path / "results.json"

    assert run.main(["--only", "detect", "--quick", "--out", str(out)]) == 0

    results = json.loads(out.read_text())
    assert results["detect_runtime"] == "openvino" and results["detect_image_size"] == 640
    assert results["detect_cpu_s_per_image"] > 0
    assert results["detect_torch_cpu_s_per_image"] > 0  # PyTorch on the same photos, for comparison
    assert results["detect_openvino_cpu_s_per_image"] == results["detect_cpu_s_per_image"]  # under its own name too
    assert results["detect_480_cpu_s_per_image"] > 0
    from matcher.pipeline.runtime import openvino_bf16_available

    assert ("detect_openvino_bf16_cpu_s_per_image" in results) == openvino_bf16_available()


@pytest.mark.slow
def test_quick_cutout_section_measures_the_active_runtime_beside_the_others(small_demo, tmp_path, settings):
    from matcher.pipeline.runtime import openvino_bf16_available

    settings.MATCHER_CUTOUT_RUNTIME = "openvino-bf16"
    out = tmp_path / "results.json"

    assert run.main(["--only", "cutout", "--quick", "--out", str(out)]) == 0

    results = json.loads(out.read_text())
    assert results["cutout_runtime"] == ("openvino-bf16" if openvino_bf16_available() else "openvino")
    assert results["cutout_cpu_s_per_image"] > 0
    # ONNX Runtime and OpenVINO float32 on the same photos, for comparison.
    assert results["cutout_onnxruntime_cpu_s_per_image"] > 0 and results["cutout_openvino_cpu_s_per_image"] > 0


def test_quick_ocr_section_measures_the_library_beside_the_command_and_the_text_gate(small_demo, tmp_path):
    from matcher.pipeline.ocr import TesseractOcr
    from matcher.pipeline.ocr.library import _library

    if not TesseractOcr().available():
        pytest.skip("tesseract with kor+eng is not installed (Debian: tesseract-ocr tesseract-ocr-kor)")
    out = tmp_path / "results.json"

    assert run.main(["--only", "ocr", "--quick", "--out", str(out)]) == 0

    results = json.loads(out.read_text())
    assert results["ocr_cpu_s_per_image"] > 0
    assert results["ocr_layout"] == "lines" and results["ocr_page_cpu_s_per_image"] > 0  # the other layout beside it
    if _library("kor+eng") is not None:
        assert results["ocr_engine"] == "library"
        assert results["ocr_cli_cpu_s_per_image"] > 0  # the command on the same images, for comparison
    assert 0 <= results["ocr_text_gate_skip_fraction"] <= 1
    assert results["ocr_text_finder_cpu_s_per_image"] > 0


def images_count() -> int:
    from benchmarks.vision import SIZES

    return SIZES["keypoints"][0]


def test_an_unknown_section_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        run.main(["--only", "nonsense", "--out", str(tmp_path / "r.json")])


def test_the_sizing_table_is_written_into_a_readme_that_has_only_its_markers(tmp_path):
    from benchmarks import sizing

    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n{sizing.START}\nold\n{sizing.END}\n\nafter\n", encoding="utf-8")
    results = {"e2e_images_per_minute": 50.0, "e2e_worker_cpu_s_per_image": 1.2, "e2e_speedup_2_workers": 1.8}

    assert sizing.update_readme(results, path=readme)

    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "2,083 images/min" in text and text.endswith("after\n")
    assert "| 2 cores | 1 | 50 |" in text


def test_the_summary_says_when_sections_ran_on_different_hosts():
    from benchmarks import sizing

    results = {"machine": {"cpu": "AMD EPYC", "cores": 2}, "embed_flops_fraction": 0.6,
               "sections": {"embed": {"cpu": "AMD EPYC"}, "e2e": {"cpu": "Intel Xeon"}, "review": {}}}
    text = sizing.summary(results)
    assert "embed on AMD EPYC; e2e on Intel Xeon; review on not recorded" in text

    results["sections"] = {"embed": {"cpu": "AMD EPYC"}, "e2e": {"cpu": "AMD EPYC"}}
    assert "did not all run on the same host" not in sizing.summary(results)


def test_the_recorded_cpu_tells_hosts_of_the_same_name_apart_by_their_vector_instructions():
    assert common.isa_tier({"avx", "avx2", "fma"}) == "AVX2"
    assert common.isa_tier({"avx2", "avx512f", "avx512_bf16"}) == "AVX-512, BF16"
    assert common.isa_tier({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}) == "AVX-512, AMX"
    assert common.isa_tier({"sse4_2"}) == "no AVX2"
    label = common.cpu_label()
    assert label == "" or label.endswith(")") and "(" in label  # this machine's, read from /proc/cpuinfo


def test_the_recorded_revision_says_when_the_code_differed_from_the_commit(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.email=b@x", "-c", "user.name=b", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "benchmarks").mkdir()
    for name in ("code.py", "benchmarks/results.json", "README.md"):
        (tmp_path / name).write_text("1\n")
    git("add", "-A")
    git("commit", "-qm", "one")
    rev = common.git_revision(tmp_path)
    assert rev and "+" not in rev

    (tmp_path / "benchmarks/results.json").write_text("2\n")  # the bench's own output
    (tmp_path / "README.md").write_text("2\n")
    (tmp_path / "scratch.txt").write_text("untracked\n")
    assert common.git_revision(tmp_path) == rev
    (tmp_path / "code.py").write_text("2\n")
    assert common.git_revision(tmp_path) == f"{rev}+changes"


def test_the_matmul_ceiling_is_the_fastest_library_and_keeps_each_ones_rate():
    import os

    from benchmarks import vision

    gemm = vision.matmul_ceiling(os.cpu_count() or 1, seconds=0.3, n=512)
    rates = gemm["by_library"]
    assert "torch" in rates and gemm["library"] in rates
    assert all(r["gflops_per_cpu_s"] > 0 for r in rates.values())
    assert round(gemm["gflops_per_cpu_s"], 1) == max(r["gflops_per_cpu_s"] for r in rates.values())
    assert vision.matmul_gflops(1, n=64, seconds=0.1, library="numpy") == (0.0, 0.0) or os.cpu_count() == 1
    with pytest.raises(ValueError):
        vision.matmul_gflops(1, n=64, seconds=0.1, library="blas")


def test_the_sizing_table_counts_the_batch_verdicts_write_back_when_it_was_measured():
    from benchmarks import sizing

    results = {"e2e_images_per_minute": 100.0, "e2e_worker_cpu_s_per_image": 1.0, "e2e_speedup_2_workers": 2.0,
               "e2e_images_per_minute_with_write_back": 80.0, "e2e_worker_cpu_s_per_image_with_write_back": 1.2}
    text = sizing.table(results)
    assert "| 2 cores | 1 | 80 | 27 | 100 | 21 |" in text
    assert "e2e_images_per_minute_with_write_back = 80.0" in text
    assert "GFLOP per CPU s." not in text.split("Where a worker")[0]  # no speed reading: none claimed
    results["e2e_cpu_speed_gflops_before_after"] = [114.9, 113.0]
    assert "one-thread matmul before and after the run: 114.9 / 113.0 GFLOP per CPU s." in sizing.table(results)


def test_the_sizing_table_counts_worker_processes_of_a_two_worker_layout():
    """A main run with two pinned single-threaded workers measures a 2-core machine as a whole:
    machines scale by pairs of cores, the worker column counts processes."""
    from benchmarks import sizing

    results = {"e2e_images_per_minute": 100.0, "e2e_worker_cpu_s_per_image": 1.2, "e2e_speedup_2_workers": 2.0,
               "e2e_main_workers": 2}
    text = sizing.table(results)

    assert "| 2 cores | 2 | 100 | 21 |" in text  # 1,000,000 / (100 × 60 × 8) → 21 machines
    assert "| 4 cores | 4 | 200 |" in text
    assert "2 pinned workers, 1 thread each" in text


def test_comparing_two_cascade_runs_names_moved_pairs_and_changed_readings():
    from benchmarks.cascade import compare_runs

    def pair(url, bucket, confidence, inliers, truth=0):
        return {"url": url, "sku": "S1", "truth": truth, "kind": "other_colour", "bucket": bucket,
                "confidence": confidence, "cosine": 0.8, "inliers": inliers, "conflicts": []}

    before = {"cpu_s_per_image": 1.0, "buckets_by_truth": {},
              "pairs": [pair("u1", "review", 0.8, 10), pair("u2", "reject", 0.5, 3), pair("u3", "auto", 0.95, 50, 1)]}
    after = {"cpu_s_per_image": 0.9, "buckets_by_truth": {},
             "pairs": [pair("u1", "auto", 0.92, 10), pair("u2", "reject", 0.5, 4), pair("u3", "auto", 0.95 + 1e-9, 50, 1)]}

    out = compare_runs(before, after)

    assert [m["url"] for m in out["moved"]] == ["u1"] and [m["url"] for m in out["new_false_auto"]] == ["u1"]
    assert {c["url"]: set(c) - {"url", "sku"} for c in out["evidence_changed"]} == {"u1": {"confidence"}, "u2": {"inliers"}}
    assert out["pairs_compared"] == 3


def test_the_llm_share_counts_pairs_sent_through_the_batch_api_too():
    from benchmarks.e2e import llm_fractions

    assert llm_fractions({"llm_batch_requests": 45, "llm_batch_jobs": 2}, 100) == {
        "fraction_pairs_llm": 0.45, "fraction_pairs_llm_online": 0.0, "fraction_pairs_llm_batch": 0.45}
    assert llm_fractions({"llm_pairs": 40}, 100)["fraction_pairs_llm"] == 0.4
    assert llm_fractions({}, 0)["fraction_pairs_llm"] == 0.0


def test_the_end_to_end_run_reports_its_buckets_against_the_generators_truth():
    from benchmarks.e2e import precision_by_truth

    truth = {
        "https://m.test/1": {"same_product": "1", "kind": "reused"},
        "https://m.test/2": {"same_product": "0", "kind": "banner_kids"},
        "https://m.test/3": {"same_product": "1", "kind": "rephoto"},
    }
    buckets = {
        "https://m.test/1": "auto", "https://m.test/1?r=2": "auto",  # a replica shares its base's truth
        "https://m.test/2?r=1": "auto", "https://m.test/2": "review",
        "https://m.test/3": "review", "https://elsewhere.test/9": "auto",  # unknown: left out
    }
    out = precision_by_truth(buckets, truth)
    assert out["buckets_by_truth"] == {"1": {"auto": 2, "review": 1}, "0": {"auto": 1, "review": 1}}
    assert out["auto_precision"] == round(2 / 3, 4) and out["auto_recall"] == round(2 / 3, 4)
    assert out["false_auto_by_kind"] == {"banner_kids": 1}
    assert precision_by_truth({}, truth)["auto_precision"] is None
    # The false one was lifted by the fake LLM's "yes": the rules alone made no false automatic match.
    split = precision_by_truth(buckets, truth, {"https://m.test/2?r=1"})
    assert split["auto_precision_rules_alone"] == 1.0
    assert split["auto_true_false_by_rules"] == [2, 0] and split["auto_true_false_lifted_by_llm"] == [0, 1]


def test_the_cpu_speed_reading_is_a_positive_rate_and_leaves_torch_threads_alone():
    import torch

    threads = torch.get_num_threads()
    assert common.cpu_speed(0.05) > 0
    assert torch.get_num_threads() == threads


def test_the_pinned_worker_runs_ask_the_llm_as_the_whole_run_would(settings):
    from benchmarks.e2e import speedup_llm_mode

    settings.GEMINI_BATCH_MIN_PAIRS = 2500
    assert speedup_llm_mode("as-main", 9350) == "batch"  # the 200 × 50 run uses the Batch API
    assert speedup_llm_mode("as-main", 2499) == "online"
    assert speedup_llm_mode("online", 9350) == "online"
    assert speedup_llm_mode("batch", 10) == "batch"
    settings.GEMINI_BATCH_MIN_PAIRS = 0  # bulk mode switched off
    assert speedup_llm_mode("as-main", 9350) == "online"
    with pytest.raises(ValueError):
        speedup_llm_mode("sometimes", 10)


def test_the_cpu_beside_the_workers_counts_the_services_and_this_process():
    from benchmarks.e2e import _service_cpu_spent, service_cpu_seconds

    before = service_cpu_seconds()
    assert set(before) == {"postgres", "redis", "bench_process"}
    assert before["postgres"] > 0 and before["redis"] > 0  # the embedded services the suite runs on
    sum(i * i for i in range(2_000_000))  # CPU in this process
    spent = _service_cpu_spent(before)
    assert spent["bench_process"] > 0
    assert all(v >= 0 for v in spent.values())


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a transaction
def test_the_tables_a_reset_thinned_are_vacuumed_before_the_next_measured_run():
    from django.db import connection

    from benchmarks.e2e import reset_decisions

    assert reset_decisions([]) >= 0  # nothing to forget; the tables are vacuumed all the same
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL AND last_analyze IS NOT NULL")
        done = {r[0] for r in cursor.fetchall()}
    assert {"matcher_match", "matcher_region", "matcher_imageanalysisrecord"} <= done
