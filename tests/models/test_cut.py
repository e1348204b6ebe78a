"""CUT and FastCUT: the PatchNCE heads train with the generator, flip equivariance, the identity term, the CLI run
(grids, metrics, checkpoint), exact resume, and the one-way translator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gan_translate.artifacts import load_model
from gan_translate.core.errors import CapabilityError, UserError
from gan_translate.models import CUT, FastCUT
from tests.helpers import checkpoints, fit, load_raw, tiny_cyclegan_args

TINY: dict[str, Any] = {"generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 8, "ndf": 8,
                        "discriminator_args": {"n_layers": 1}, "num_patches": 16, "nce_mlp_channels": 16}


def tiny_cut_args(config: str, data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The CycleGAN tiny run with the CUT / FastCUT quickstart config and its PatchNCE shrunk too."""
    args = tiny_cyclegan_args(data_root, run_dir, epochs, batches)
    args[args.index("--config") + 1] = str(Path(args[args.index("--config") + 1]).parents[1] / config / "quickstart.yaml")
    return [*args, "--model.num_patches", "16", "--model.nce_mlp_channels", "16"]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


def test_defaults_are_the_papers() -> None:
    with torch.device("meta"):
        cut, fast = CUT(), FastCUT()
    assert (cut.hparams.lambda_nce, cut.hparams.nce_idt, cut.hparams.flip_equivariance) == (1.0, True, False)
    assert (fast.hparams.lambda_nce, fast.hparams.nce_idt, fast.hparams.flip_equivariance) == (10.0, False, True)
    assert (fast.hparams.n_epochs, fast.hparams.n_epochs_decay) == (150, 50)
    assert (cut.hparams.num_patches, cut.hparams.nce_temperature, cut.hparams.gan_loss) == (256, 0.07, "lsgan")
    assert cut.nce_layers == [0, 4, 7, 10, 14]  # ResNet-9 without antialiasing: input, downsamplings, blocks 1 and 5
    with torch.device("meta"):
        antialiased = CUT(generator_args={"antialias": True})
    assert antialiased.nce_layers == [0, 4, 8, 12, 16]  # CUT's own indices in its own network
    assert sum(p.numel() for p in cut.feature_heads.parameters()) == sum(
        c * 256 + 256 + 256 * 256 + 256 for c in (3, 128, 256, 256, 256))


def test_identity_term_and_its_pictures() -> None:
    model = CUT(**TINY)
    real_a, real_b = _batch()
    images = model.generate(real_a, real_b)
    assert set(images) == {"fake_b", "idt_b", "flipped", "keys"} and images["flipped"] is False
    assert len(images["keys"]) == 2  # the sources' features, from the pass that made the outputs
    losses = model.generator_losses(real_a, real_b, images)
    assert set(losses) == {"g_adv", "nce", "nce_idt"} and all(torch.isfinite(v) for v in losses.values())
    fast = FastCUT(**TINY)
    assert set(fast.generator_losses(real_a, real_b, fast.generate(real_a, real_b))) == {"g_adv", "nce"}


def test_flip_equivariance_trains_on_flipped_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FastCUT(**TINY)
    real_a, real_b = _batch()
    monkeypatch.setattr("numpy.random.random", lambda: 0.1)  # < 0.5: this batch is flipped
    images = model.generate(real_a, real_b)
    assert images["flipped"] is True
    torch.testing.assert_close(images["fake_b"], model.generator(torch.flip(real_a, dims=[3])))
    # The queries of a flipped output are flipped back onto the input. Layer 0 (the reflection-padded image) is
    # exactly flip-equivariant, so there an output given flipped, with flipped=True, scores as the output itself.
    model = FastCUT(**{**TINY, "nce_layers": [0]})
    output = torch.rand(2, 3, 32, 32) * 2 - 1

    def nce(image: torch.Tensor, flipped: bool) -> torch.Tensor:
        torch.manual_seed(3)  # the same patch locations
        return model.nce_loss(real_a, image, flipped=flipped)

    torch.testing.assert_close(nce(torch.flip(output, dims=[3]), True), nce(output, False))
    assert not torch.allclose(nce(torch.flip(output, dims=[3]), False), nce(output, False))


def test_one_step_trains_the_heads_and_the_generator(synthetic_root: Path, tmp_path: Path) -> None:
    fit([*tiny_cut_args("cut", synthetic_root, tmp_path, batches=1), "--trainer.logger", "false"])
    trained = load_raw(checkpoints(tmp_path)[-1])
    fresh = CUT(**{k: v for k, v in trained["hyper_parameters"].items() if not k.startswith("_")}).state_dict()
    for prefix in ("generator.", "feature_heads.", "discriminator."):
        changed = [k for k, v in trained["state_dict"].items() if k.startswith(prefix) and not torch.equal(v, fresh[k])]
        assert changed, f"one training step left {prefix} unchanged"
    assert len(trained["optimizer_states"]) == 2  # the heads train in the generator's Adam


def test_quickstart_run_logs_grids_metrics_and_translates(synthetic_root: Path, tmp_path: Path) -> None:
    fit(tiny_cut_args("cut", synthetic_root, tmp_path))
    samples = {p.name.split("_epoch")[0] for p in tmp_path.glob("gan-translate/*/samples/*.png")}
    assert {"val_samples_ab", "val_samples_idt"} <= samples
    trained = load_raw(checkpoints(tmp_path)[-1])
    best = [v for k, v in trained["callbacks"].items() if k.startswith("ModelCheckpoint")][0]
    assert best["monitor"] == "val/l1_ab" and torch.isfinite(best["best_model_score"])
    model = load_model(checkpoints(tmp_path)[-1], capability="translate")
    assert isinstance(model, CUT) and model.nce_layers == [0, 4, 7, 10]
    with pytest.raises(CapabilityError, match="cut translates AtoB only; for B -> A, train another model"):
        model.translator("BtoA")


def test_commands_take_a_cut_checkpoint(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from gan_translate.cli import main

    fit([*tiny_cut_args("fastcut", synthetic_root, tmp_path / "run", batches=1), "--trainer.logger", "false"])
    checkpoint = str(checkpoints(tmp_path / "run")[-1])
    inputs = str(synthetic_root / "testA")
    assert main(["translate", "--checkpoint", checkpoint, "--input", inputs, "--output", str(tmp_path / "out"),
                 "--device", "cpu"]) == 0
    assert main(["translate", "--checkpoint", checkpoint, "--input", inputs, "--output", str(tmp_path / "ba"),
                 "--direction", "BtoA", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: fastcut translates AtoB only")
    assert main(["evaluate", "--checkpoint", checkpoint, "--data", str(synthetic_root), "--feature", "random-conv",
                 "--image-size", "32", "--kid-subset-size", "2", "--device", "cpu"]) == 0
    assert "psnr" in capsys.readouterr().out
    assert main(["export", "--checkpoint", checkpoint, "--output", str(tmp_path / "g.safetensors")]) == 0
    assert load_model(tmp_path / "g.safetensors", capability="translate").model_name == "fastcut"


@pytest.mark.parametrize("config", ["cut", "fastcut"])
def test_resume_mid_epoch_is_exact(config: str, synthetic_root: Path, tmp_path: Path) -> None:
    """Stopped after 4 of 6 batches and resumed: bit-identical to an uninterrupted run (patch locations and
    flips come from the restored random states)."""
    def args(run: Path, *extra: str) -> list[str]:
        return [*tiny_cut_args(config, synthetic_root, run, epochs=2, batches=3), "--trainer.logger", "false",
                "--reliability.save_every_n_batches", "1", "--trainer.num_sanity_val_steps", "0", *extra]

    fit(args(tmp_path / "reference"))
    fit(args(tmp_path / "run", "--trainer.max_steps", "8"))  # 4 batches of two optimiser steps
    stopped = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert load_raw(stopped)["global_step"] == 8
    fit([*args(tmp_path / "run"), "--ckpt_path", str(stopped)])
    reference, resumed = load_raw(tmp_path / "reference" / "checkpoints" / "last.ckpt"), load_raw(stopped)
    assert resumed["global_step"] == reference["global_step"] == 12
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_bad_options_are_one_line() -> None:
    with pytest.raises(UserError, match="use a ResNet generator"):
        CUT(generator="unet", generator_args={"num_downs": 5})
    with pytest.raises(UserError, match="encoder layers 0 to"):
        CUT(**{**TINY, "nce_layers": [0, 99]})
    with pytest.raises(UserError, match="nce_idt needs in_channels == out_channels"):
        CUT(**TINY, in_channels=1)
    with pytest.raises(UserError, match="num_patches must be >= 1"):
        CUT(**{**TINY, "num_patches": 0})


def test_reused_keys_equal_a_second_encoder_pass() -> None:
    """The keys taken from the generator pass are the values CUT's own second encoder pass gives."""
    model = CUT(**TINY)
    real_a, real_b = _batch()
    images = model.generate(real_a, real_b)
    for source, keys in zip((real_a, real_b), images["keys"]):
        for reused, direct in zip(keys, model.generator.features(source, model.nce_layers)):
            torch.testing.assert_close(reused, direct)
    torch.manual_seed(1)
    with_reuse = model.nce_losses([real_a], [images["fake_b"]], keys=[images["keys"][0]])
    torch.manual_seed(1)
    without = model.nce_losses([real_a], [images["fake_b"]])
    torch.testing.assert_close(with_reuse[0], without[0])
