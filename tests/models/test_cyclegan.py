"""CycleGAN end to end at toy size: fit, logging, checkpoints, resume, translate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.cli import main
from gan_translate.models import CycleGAN
from tests.helpers import assert_offline_wandb_images, checkpoints, fit, load_raw, tiny_cyclegan_args


def test_generator_losses_are_finite_and_named() -> None:
    model = CycleGAN(generator="resnet", generator_args={"n_blocks": 1}, ngf=8, ndf=8, discriminator_args={"n_layers": 2})
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses, images = model.generator_losses(a, b)
    assert set(losses) == {"g_adv_ab", "g_adv_ba", "cycle_a", "cycle_b", "idt_a", "idt_b"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert images["fake_b"].shape == a.shape
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.generator_ab.parameters())


def test_identity_loss_needs_matching_channels() -> None:
    from gan_translate.core.errors import UserError

    with pytest.raises(UserError, match="lambda_identity"):
        CycleGAN(in_channels=1, out_channels=3, ngf=8, ndf=8)


@pytest.fixture(scope="module")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cyclegan_run")
    fit(tiny_cyclegan_args(synthetic_root, run_dir, epochs=1, batches=3))
    return run_dir


def test_fit_writes_checkpoints_config_and_samples(trained_run: Path) -> None:
    last = checkpoints(trained_run)
    assert len(last) == 1
    ckpt = load_raw(last[0])
    assert ckpt["gan_translate"]["model"] == "cyclegan"
    assert ckpt["hyper_parameters"]["ngf"] == 8
    # two optimiser steps (G and D) per batch
    assert ckpt["global_step"] == 2 * 3
    assert "image_pools" in ckpt and len(ckpt["image_pools"]["a"]["images"]) > 0
    assert checkpoints(trained_run, "best-*.ckpt"), "the monitored best checkpoint is missing"
    assert list(trained_run.rglob("config.yaml"))
    assert list(trained_run.glob("gan-translate/*/samples/val_samples_ab_*.png"))  # in the run folder


def test_offline_wandb_run_has_images(trained_run: Path) -> None:
    assert_offline_wandb_images(trained_run, "samples_ab")


def test_resume_continues_step_and_optimiser_state(synthetic_root: Path, tmp_path: Path) -> None:
    fit(tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=3))
    first = checkpoints(tmp_path)[-1]
    fit([*tiny_cyclegan_args(synthetic_root, tmp_path, epochs=2, batches=3), "--ckpt_path", str(first)])
    resumed_path = checkpoints(tmp_path)[-1]
    # the resumed run continues the same W&B run, so its checkpoints land in the same run folder
    assert resumed_path.parent == first.parent
    resumed = load_raw(resumed_path)
    assert resumed["gan_translate"]["wandb_run_id"] == first.parent.parent.name
    assert resumed["epoch"] == 1
    assert resumed["global_step"] == 2 * 3 * 2
    # Adam's step count would be 3 had the optimiser started afresh.
    adam_steps = {float(s["step"]) for s in resumed["optimizer_states"][0]["state"].values()}
    assert adam_steps == {6.0}


def test_runs_twice_in_the_same_folder(synthetic_root: Path, tmp_path: Path) -> None:
    fit(tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=1))
    first_grids = {p: p.read_bytes() for p in tmp_path.rglob("samples/*.png")}
    fit(tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=1))
    # nothing from the first run is overwritten: two runs, two last checkpoints, two configs, own sample grids
    assert len(checkpoints(tmp_path)) == 2
    assert len(list(tmp_path.rglob("config.yaml"))) == 2
    assert first_grids and {p.parent for p in tmp_path.rglob("samples/*.png")} == {
        c.parent.parent / "samples" for c in checkpoints(tmp_path)}
    # `validate` of a checkpoint logs into its run: its grids are added beside the training's, not over them
    assert main(["validate", *tiny_cyclegan_args(synthetic_root, tmp_path), "--ckpt_path", str(checkpoints(tmp_path)[0])]) == 0
    assert all(p.read_bytes() == data for p, data in first_grids.items())
    assert list(tmp_path.rglob("samples/validate_val_samples_ab_*.png"))


def test_ckpt_path_last_and_folders_resume_the_newest_last_checkpoint(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Lightning's own "last" looks only in the new run's (empty) folder and trains from scratch: here it is
    # the newest last checkpoint under the run's folders, and nothing to resume is a one-line error.
    assert main(["fit", *tiny_cyclegan_args(synthetic_root, tmp_path / "none"), "--ckpt_path", "last"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --ckpt_path last: no last.ckpt under {tmp_path / 'none'}; give the path of the checkpoint to resume")
    assert not checkpoints(tmp_path)

    fit(tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=2))
    first = checkpoints(tmp_path)[-1]
    capsys.readouterr()
    fit([*tiny_cyclegan_args(synthetic_root, tmp_path, epochs=2, batches=2), "--ckpt_path", "last"])
    assert f"--ckpt_path last: using {first}" in capsys.readouterr().err
    assert checkpoints(tmp_path) == [first]  # continued in place: same run, same file
    assert load_raw(first)["global_step"] == 2 * 2 * 2
    # a run folder works as translate's --checkpoint does
    fit([*tiny_cyclegan_args(synthetic_root, tmp_path, epochs=3, batches=2), "--ckpt_path", str(tmp_path)])
    assert load_raw(first)["global_step"] == 3 * 2 * 2
    # fewer epochs than the checkpoint already has: Lightning's refusal, as one line
    assert main(["fit", *tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=2), "--ckpt_path", str(first)]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("error: You restored a checkpoint with current_epoch=") and "max_epochs=1" in last_line


def test_second_run_without_a_logger_keeps_the_first_runs_last_checkpoint(synthetic_root: Path, tmp_path: Path) -> None:
    # Without a logger both runs save into default_root_dir/checkpoints; the periodic save must not take the
    # first run's last.ckpt for its own.
    args = [*tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=2), "--trainer.logger", "false",
            "--reliability.save_every_n_batches", "1"]
    fit(args)
    first = tmp_path / "checkpoints" / "last.ckpt"
    first_bytes = first.read_bytes()
    fit([*args, "--model.lambda_a", "7"])
    assert first.read_bytes() == first_bytes
    second = load_raw(tmp_path / "checkpoints" / "last-v1.ckpt")
    assert second["hyper_parameters"]["lambda_a"] == 7


def test_unlogged_monitor_warns_and_keeps_last(synthetic_root: Path, tmp_path: Path) -> None:
    # The quickstart config on a user's own data: no testA_gt/, so its monitor val/l1_ab is never logged.
    data = tmp_path / "data"
    for folder in ("trainA", "trainB", "testA", "testB"):
        (data / folder).mkdir(parents=True)
        for image in sorted((synthetic_root / folder).iterdir())[:4]:
            (data / folder / image.name).symlink_to(image)
    with pytest.warns(UserWarning, match=r"the run does not log val/l1_ab, so no best checkpoint is kept"):
        fit(tiny_cyclegan_args(data, tmp_path / "run", epochs=2, batches=2))
    assert len(checkpoints(tmp_path / "run")) == 1
    assert not checkpoints(tmp_path / "run", "best*.ckpt")


def test_predict_writes_the_translated_test_images(
    synthetic_root: Path, trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    last = checkpoints(trained_run)[-1]
    args = ["predict", *tiny_cyclegan_args(synthetic_root, tmp_path), "--ckpt_path", str(last)]
    for folder in ("predictions", "predictions-1"):  # a second predict never writes over the first
        assert main(args) == 0
        written = tmp_path / "gan-translate" / last.parent.parent.name / folder  # the checkpoint's W&B run, continued
        assert f"predict: wrote 4 images to {written}" in capsys.readouterr().out
        names = sorted(p.name for p in written.iterdir())
        assert names == sorted(p.name for p in (synthetic_root / "testA").iterdir())
        assert Image.open(written / names[0]).size == (32, 32)


def _write(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(size))
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_translate_round_trip_keeps_names_and_sizes(trained_run: Path, tmp_path: Path, direction: str) -> None:
    inputs = tmp_path / "in"
    _write(inputs / "odd.png", (250, 190))
    _write(inputs / "gray.png", (33, 47), mode="L")
    _write(inputs / "nested" / "small.jpg", (9, 5))
    out = tmp_path / "out"
    code = main(["translate", "--checkpoint", str(trained_run), "--input", str(inputs), "--output", str(out),
                 "--direction", direction, "--batch-size", "2", "--device", "cpu"])
    assert code == 0
    for name, size in {"odd.png": (250, 190), "gray.png": (33, 47), "nested/small.jpg": (9, 5)}.items():
        result = Image.open(out / name)
        assert result.size == size
        assert result.mode == "RGB"


def test_translate_api_matches_command(trained_run: Path, tmp_path: Path) -> None:
    from gan_translate import load_translator

    translator = load_translator(trained_run, direction="AtoB", device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (37, 41, 3), dtype=np.uint8)
    out = translator(image)
    assert out.shape == (37, 41, 3) and out.dtype == np.uint8
    batched = dict(translator.translate_many([("x", image), ("y", image)], batch_size=2))
    np.testing.assert_array_equal(batched["x"], out)


def test_translate_precision_and_compile_flags(trained_run: Path, tmp_path: Path) -> None:
    _write(tmp_path / "in" / "a.png", (40, 36))
    outputs = {}
    for flags in (["--precision", "fp32"], ["--precision", "bf16"], ["--precision", "fp32", "--compile"]):
        out = tmp_path / "_".join(flags).strip("-")
        assert main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"), "--output", str(out),
                     "--device", "cpu", *flags]) == 0
        outputs[flags[-1]] = np.asarray(Image.open(out / "a.png"), dtype=np.int16)
    # bf16 keeps 8 bits of mantissa: a few uint8 levels from fp32, not a different picture.
    assert np.abs(outputs["bf16"] - outputs["fp32"]).mean() < 3.0
    assert not np.array_equal(outputs["bf16"], outputs["fp32"])  # it did run in bf16
    # The compiled generator computes the same function (to float reordering).
    assert np.abs(outputs["--compile"] - outputs["fp32"]).max() <= 1


# /proc/cpuinfo flags of a CPU with AVX512-BF16 (Zen 4) and of an AVX-512 one without (Skylake-X).
_BF16_CPU = frozenset("avx512f avx512bw avx512_bf16".split())
_FP32_CPU = frozenset("avx512f avx512bw".split())


def test_translate_precision_auto_is_the_default_and_follows_the_cpu(trained_run: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No --precision: bf16 on a CPU with AVX512-BF16, fp32 on one without; the summary says which, and why."""
    from gan_translate.core import hardware

    _write(tmp_path / "in" / "a.png", (40, 36))
    outputs, lines = {}, {}
    for name, flags in {"auto-bf16": _BF16_CPU, "auto-fp32": _FP32_CPU, "bf16": None, "fp32": None}.items():
        monkeypatch.setattr(hardware, "cpu_flags", lambda flags=flags: flags if flags is not None else _FP32_CPU)
        precision = [] if flags is not None else ["--precision", name]
        out = tmp_path / name
        assert main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"), "--output", str(out),
                     "--device", "cpu", *precision]) == 0
        outputs[name] = np.asarray(Image.open(out / "a.png"))
        lines[name] = capsys.readouterr().out.strip().splitlines()[-1]
    np.testing.assert_array_equal(outputs["auto-bf16"], outputs["bf16"])
    np.testing.assert_array_equal(outputs["auto-fp32"], outputs["fp32"])
    assert lines["auto-bf16"].endswith("on cpu in bf16 (auto: this CPU has AVX512-BF16)")
    assert lines["auto-fp32"].endswith("on cpu in fp32 (auto: this CPU has no AVX512-BF16/AMX)")
    assert lines["fp32"].endswith("on cpu in fp32")  # named: no reason to give
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal: usage, then one line
        main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"), "--output",
              str(tmp_path / "x"), "--precision", "fp64"])
    assert exit_info.value.code == 2
    assert "--precision: invalid choice: 'fp64' (choose from 'auto', 'fp32', 'bf16', 'fp16')" in capsys.readouterr().err


def test_translate_glob_and_refusals(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path / "a.png", (32, 32))
    _write(tmp_path / "b.png", (40, 24))
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "*.png"),
                 "--output", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    # again without --overwrite: refused, one line, exit 2
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "a.png"),
                 "--output", str(out), "--device", "cpu"]) == 2
    assert "already exists" in capsys.readouterr().err
    # output into the input folder is refused
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "a.png"),
                 "--output", str(tmp_path), "--device", "cpu"]) == 2
    assert "holds input images" in capsys.readouterr().err
    # a missing checkpoint is one line, exit 2
    assert main(["translate", "--checkpoint", str(tmp_path / "nope.ckpt"), "--input", str(tmp_path / "a.png"),
                 "--output", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: checkpoint not found: {tmp_path / 'nope.ckpt'}"]


def _translate(run: Path, *args: str) -> int:
    return main(["translate", "--checkpoint", str(run), "--device", "cpu", *args])


def test_translate_images_smaller_than_the_network(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The ResNet's reflection pads and instance norms need a few pixels a side after the downsampling:
    # thin and tiny images are padded up to its minimum and cropped back, not a crash that ends the folder.
    sizes = {"dot.png": (1, 1), "two.png": (2, 2), "row.png": (300, 1), "column.png": (1, 300), "strip.png": (500, 3)}
    for name, size in sizes.items():
        _write(tmp_path / "in" / name, size)
    assert _translate(trained_run, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")) == 0
    for name, size in sizes.items():
        assert Image.open(tmp_path / "out" / name).size == size
    # the summary names the checkpoint a run folder resolved to
    assert str(checkpoints(trained_run)[-1]) in capsys.readouterr().out


def test_translate_output_naming(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "in"
    _write(inputs / "a.png", (20, 16))
    _write(inputs / "deep" / "one" / "b.png", (16, 16))
    _write(inputs / "deep" / "two" / "b.png", (16, 20))
    Image.open(inputs / "a.png").save(inputs / "scan", format="PNG")  # a readable image without an extension
    Image.open(inputs / "a.png").save(inputs / "anim.gif")

    # one input: --output may name the result file, even beside the input
    assert _translate(trained_run, "--input", str(inputs / "a.png"), "--output", str(inputs / "a_b.jpg")) == 0
    assert Image.open(inputs / "a_b.jpg").size == (20, 16)
    assert _translate(trained_run, "--input", str(inputs / "a.png"), "--output", str(inputs / "a.png")) == 2
    assert "refusing to overwrite input image" in capsys.readouterr().err
    assert _translate(trained_run, "--input", str(inputs), "--output", str(tmp_path / "x.png")) == 2
    assert "names one image file, but 5 input images were given" in capsys.readouterr().err

    # a glob keeps the sub-folders below its first wildcard: the two b.png do not collide
    assert _translate(trained_run, "--input", str(inputs / "**" / "b.png"), "--output", str(tmp_path / "g")) == 0
    assert sorted(str(p.relative_to(tmp_path / "g")) for p in (tmp_path / "g").rglob("*.png")) == [
        "deep/one/b.png", "deep/two/b.png"]

    # an extension no writer knows gets .png appended (the file is read by its content); GIFs are images
    assert _translate(trained_run, "--input", str(inputs / "scan"), str(inputs / "anim.gif"),
                      "--output", str(tmp_path / "s")) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["anim.gif", "scan.png"]

    # an output folder inside the input folder: earlier results are not read back as inputs on a re-run
    nested_out = inputs / "translated"
    for _ in range(2):
        assert _translate(trained_run, "--input", str(inputs), "--output", str(nested_out), "--overwrite") == 0
    # a, a_b, the two b and anim (a folder scan takes image extensions only: not scan)
    assert len([p for p in nested_out.rglob("*") if p.is_file()]) == 5
    assert not (nested_out / "translated").exists()


@pytest.mark.parametrize(
    ("output", "suffix", "message"),
    [
        ("notes.txt", "", "--output {tmp}/notes.txt is a file, not a folder; give a folder for the results"),
        ("notes.txt/sub", "", "--output {tmp}/notes.txt/sub cannot be made: {tmp}/notes.txt is a file, not a folder"),
        ("out", "sub/x", "--suffix 'sub/x' must not contain a path separator"),
    ],
)
def test_translate_bad_output_is_one_line(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, output: str, suffix: str, message: str
) -> None:
    _write(tmp_path / "in" / "a.png", (16, 16))
    (tmp_path / "notes.txt").write_text("keep me\n")
    args = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / output), "--suffix", suffix]
    assert _translate(trained_run, *args) == 2
    assert capsys.readouterr().err.strip() == "error: " + message.format(tmp=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["trian"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown command 'trian'; valid commands: fit")
