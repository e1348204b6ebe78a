"""The benchmark scripts run (smoke: tiny sizes, one step); their numbers are recorded in benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


def test_step_overhead_prints_milliseconds_per_iteration(capsys: pytest.CaptureFixture[str]) -> None:
    import step_overhead

    assert step_overhead.main(["--models", "pix2pix", "--iterations", "6", "--skip", "2", "--repeats", "1", "--log-every", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"pix2pix: ([0-9.]+) ms per iteration \(runs: [0-9.]+; log_every_n_steps=2\)", line)
    assert match and float(match.group(1)) > 0, line


def test_bench_writes_timed_steps_for_ours_and_the_classic_code(tmp_path: Path) -> None:
    import bench

    out = tmp_path / "results.json"
    assert bench.main(["--quick", "--models", "dcgan", "--kinds", "train", "--variants", "fp32", "--mode", "paired",
                       "--rounds", "1", "--warmup", "1", "--steps", "1", "--size", "64", "--batch", "4",
                       "--skip-nan-check", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["key"] == "paired/train/dcgan/ours/fp32/64px/b4" and row["nan_check"] is False, row
    assert row["median_s"] > 0 and row["classic_median_s"] > 0, row


def _parameters(network: object) -> int:
    return sum(p.numel() for p in network.parameters())  # type: ignore[attr-defined]


def test_cut_reference_step_has_our_cuts_networks_and_is_timed_beside_ours(tmp_path: Path) -> None:
    """The CUT reference transcription (issue 29's "CUT >= 2.0x the CUT reference step"): the same networks and
    heads as our CUT at the horse2zebra settings, one paired step each."""
    import bench
    import classic_cut_reference

    ours = bench._our_model({"model": "cut", "size": 32})
    assert classic_cut_reference.parameter_counts(32) == {
        "generator": _parameters(ours.generator), "discriminator": _parameters(ours.discriminator),
        "heads": _parameters(ours.feature_heads)}
    out = tmp_path / "results.json"
    assert bench.main(["--quick", "--models", "cut", "--kinds", "train", "--variants", "fp32", "--mode", "paired",
                       "--rounds", "1", "--warmup", "1", "--steps", "1", "--size", "32", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["key"] == "paired/train/cut/ours/fp32/32px/b1", row
    assert row["median_s"] > 0 and row["classic_median_s"] > 0, row


def test_bench_times_the_quickstart_networks_against_the_classic_code_at_the_same_widths(tmp_path: Path) -> None:
    import bench

    spec = {"model": "cyclegan", "size": 64, "batch": 4, "device": "cpu", "networks": "quickstart"}
    ours, classic = bench._our_model(spec), bench._classic_model(spec)
    assert _parameters(ours.generator_ab) == _parameters(classic.netG_A)
    assert _parameters(ours.discriminator_b) == _parameters(classic.netD_A)
    out = tmp_path / "results.json"
    assert bench.main(["--networks", "quickstart", "--models", "cyclegan", "--kinds", "train", "--variants", "bf16",
                       "--mode", "paired", "--rounds", "1", "--warmup", "1", "--steps", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["key"] == "paired/train/cyclegan/ours/bf16/64px/b4", row
    assert row["median_s"] > 0 and row["classic_median_s"] > 0, row


def test_cut_benchmark_times_and_measures_the_three_models(tmp_path: Path) -> None:
    import cut_vs_cyclegan

    out = tmp_path / "cut.json"
    assert cut_vs_cyclegan.main(["--kinds", "speed,memory", "--sizes", "64", "--steps", "1", "--rounds", "1",
                                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["speed 64"]) == set(report["memory 64"]) == {"cyclegan", "cut", "fastcut"}
    assert report["speed 64"]["cyclegan"]["x_cyclegan"] == 1.0 and report["speed 64"]["cut"]["s_per_it"] > 0
    # weights, gradients, Adam's moments and the largest autograd graph: CUT's one generator needs less
    assert report["memory 64"]["cut"]["tensors_mb"] < report["memory 64"]["cyclegan"]["tensors_mb"]


def test_unsb_benchmark_times_and_measures_the_three_models(tmp_path: Path) -> None:
    import unsb_vs_cut

    out = tmp_path / "unsb.json"
    assert unsb_vs_cut.main(["--kinds", "speed,memory", "--sizes", "64", "--steps", "5", "--rounds", "1",
                             "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["speed 64"]) == set(report["memory 64"]) == {"unsb", "cut", "cyclegan"}
    assert report["speed 64"]["cut"]["x_cut"] == 1.0 and report["speed 64"]["unsb"]["s_per_it"] > 0
    # every bridge step timed once: UNSB's figure is the mean over the steps a uniform draw would give
    assert report["speed 64"]["unsb"]["bridge_steps_timed"] == [0, 1, 2, 3, 4]
    # a second discriminator (the energy network) and a graph through the contrast batch: more than CUT's
    assert report["memory 64"]["unsb"]["tensors_mb"] > report["memory 64"]["cut"]["tensors_mb"]


@pytest.mark.ddp  # two training processes at a time
def test_unsb_benchmark_scores_every_model_at_equal_iterations_and_cpu_time(tmp_path: Path) -> None:
    import unsb_vs_cut

    out = tmp_path / "unsb.json"
    assert unsb_vs_cut.main(["--kinds", "quality", "--seeds", "0", "--iterations", "3", "--cpu-seconds", "1",
                             "--n-train", "8", "--n-test", "4", "--image-size", "32", "--parallel", "2",
                             "--work", str(tmp_path / "work"), "--json", str(out)]) == 0
    quality = json.loads(out.read_text())["quality"]
    assert quality["input (untranslated)"]["l1"] > 0
    cases = {(row["model"], row["case"]): row for row in quality["runs"]}
    for model in ("unsb", "unsb --steps 1", "cut", "cyclegan"):
        assert cases[(model, "3 iterations")]["batches"] == 3 and cases[(model, "1 CPU s")]["cpu_s"] == 1.0
        for row in (cases[(model, "3 iterations")], cases[(model, "1 CPU s")]):
            assert all(row[k] is not None and row[k] == row[k] for k in ("l1", "psnr", "ssim", "fid", "kid")), row
    assert cases[("unsb", "3 iterations")]["images_trained_per_batch"] == 2
    assert set(quality["summary"]) == {f"{m}, {c}" for m in ("unsb", "unsb --steps 1", "cut", "cyclegan")
                                       for c in ("3 iterations", "1 CPU s")}


def test_adain_benchmark_times_both_methods_and_extrapolates_gatys(tmp_path: Path) -> None:
    import adain_vs_gatys

    out = tmp_path / "adain.json"
    assert adain_vs_gatys.main(["--sizes", "32", "--measure", "32:2", "--repeats", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    gatys = row["gatys"]
    assert gatys["iterations_measured"] == 2 and gatys["extrapolated"], gatys
    # 300 iterations are 301 evaluations (the start's too): the measured time per evaluation scaled up
    assert gatys["s_per_image"] == pytest.approx(gatys["measured_s"] / gatys["evaluations"] * 301)
    assert row["adain_s_per_image"] > 0 and row["speedup"] == pytest.approx(gatys["s_per_image"] / row["adain_s_per_image"])


def test_tiled_inference_benchmark_measures_each_case_in_its_own_process(tmp_path: Path) -> None:
    import tiled_inference

    out = tmp_path / "tiled.json"
    assert tiled_inference.main(["--cases", "whole:72x40,tiled:72x40", "--tile", "32", "--tile-overlap", "8",
                                 "--json", str(out)]) == 0
    whole, tiled = json.loads(out.read_text())["results"]
    assert (whole["mode"], whole["tile"], tiled["mode"], tiled["tile"]) == ("whole", None, "tiled", 32), (whole, tiled)
    assert whole["seconds"] > 0 and tiled["peak_rss_mb"] > tiled["peak_over_start_mb"] > 0


def test_onnx_benchmark_times_both_runtimes_and_checks_parity(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra (in dev)")
    import onnx_vs_torch

    out = tmp_path / "onnx.json"
    assert onnx_vs_torch.main(["--sizes", "32,38", "--repeats", "2", "--warmup", "1", "--ngf", "8", "--n-blocks", "1",
                               "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [row["size"] for row in report["results"]] == [32, 38]
    for row in report["results"]:
        assert len(row["runs"]["torch"]) == len(row["runs"]["onnxruntime"]) == 2
        assert row["torch_s_per_image"] > 0 and row["onnxruntime_s_per_image"] > 0
        assert row["max_abs_difference"] < 1e-4, row


@pytest.mark.server
def test_serve_load_answers_every_request_correctly_with_and_without_batching(tmp_path: Path) -> None:
    """The load test, bounded: 48 requests from 8 clients per mode against a real server; every answer checked."""
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    import serve_load

    out = tmp_path / "serve.json"
    assert serve_load.main(["--requests", "48", "--clients", "8", "--size", "32", "--ngf", "8", "--blocks", "1",
                            "--json", str(out)]) == 0
    rows = {row["mode"]: row for row in json.loads(out.read_text())["results"]}
    assert set(rows) == {"batched", "unbatched"}
    for row in rows.values():
        assert row["answered"] == row["requests"] == 48 and row["errors"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["throughput_rps"] > 0
    assert rows["batched"]["mean_batch_size"] > 1 and rows["unbatched"]["mean_batch_size"] == 1


def test_student_speed_counts_and_times_the_students_against_the_teacher(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import student_speed

    out = tmp_path / "students.json"
    networks = "teacher resnet_9blocks ngf64,mobile_resnet_h2z,narrow_resnet_ngf12 (9 blocks)"
    assert student_speed.main(["--networks", networks, "--size", "16", "--rounds", "2", "--images", "1",
                               "--warmup", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [row["network"] for row in rows] == networks.split(",")
    teacher, mobile, narrow = rows
    assert teacher["speedup_fp32"] == teacher["speedup_bf16"] == teacher["macs_ratio"] == 1.0
    assert teacher["params"] == 11_378_179 and mobile["params"] == 356_867
    assert teacher["macs"] > narrow["macs"] > mobile["macs"] > 0  # at 16 px too
    assert all(len(row["ms_fp32_runs"]) == 2 and row["ms_bf16"] > 0 for row in rows)
    assert "| mobile_resnet_h2z |" in capsys.readouterr().out
