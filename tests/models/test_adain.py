"""AdaIN: the stylise operation (alpha, style mixing), training only the decoder (its loss falls, the encoder stays
frozen, the reference learning-rate decay), checkpoints that rebuild without the encoder's file, exact resume,
the quickstart through the CLI, and clear refusals. The VGG is the seeded random one (labelled untrained)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from gan_translate.artifacts import load_model
from gan_translate.core.errors import CapabilityError, UserError
from gan_translate.data import ImageTransform, StyleDataModule
from gan_translate.models import AdaIN
from gan_translate.nn.adain import adaptive_instance_norm
from gan_translate.nn.vgg import VGG19Features
from tests.helpers import assert_offline_wandb_images, checkpoints, fit, load_raw, tiny_adain_args


def _images(seed: int, n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _data(root: Path, batch_size: int = 2) -> StyleDataModule:
    return StyleDataModule(str(root / "trainA"), style_root=str(root / "trainB"), batch_size=batch_size, num_workers=0,
                           transform=ImageTransform(load_size=36, crop_size=32, flip=False))


def _trainer(folder: Path, steps: int) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(folder))


@pytest.fixture(scope="module")
def model() -> AdaIN:
    built = AdaIN(encoder_weights="random")
    built.load_encoder_weights()
    return built.eval()


def test_defaults_are_the_reference_implementations() -> None:
    hp = AdaIN().hparams
    assert (hp.style_weight, hp.content_weight, hp.lr, hp.beta1, hp.lr_decay) == (10.0, 1.0, 1e-4, 0.9, 5e-5)
    assert StyleDataModule().transform == ImageTransform(load_size=512, crop_size=256, flip=False)
    assert StyleDataModule().batch_size == 8


def test_alpha_blends_the_content_features_with_the_adain_target(model: AdaIN) -> None:
    content, style = _images(0), _images(1)
    with torch.no_grad():
        own = model.encode(content)["relu4_1"]
        target = adaptive_instance_norm(own, model.encode(style)["relu4_1"])
        torch.testing.assert_close(model.stylize(content, [style], alpha=0.0), model.decode(own))
        torch.testing.assert_close(model.stylize(content, [style], alpha=1.0), model.decode(target))
        torch.testing.assert_close(model.stylize(content, [style], alpha=0.3), model.decode(0.3 * target + 0.7 * own))


def test_styles_mix_by_their_weights(model: AdaIN) -> None:
    content, first, second = _images(0), _images(1), _images(2)
    with torch.no_grad():
        alone = model.stylize(content, [first])
        torch.testing.assert_close(model.stylize(content, [first, second], weights=[1.0, 0.0]), alone)
        own = model.encode(content)["relu4_1"]
        mixed = sum(w * adaptive_instance_norm(own, model.encode(s)["relu4_1"]) for w, s in ((0.25, first), (0.75, second)))
        torch.testing.assert_close(model.stylize(content, [first, second], weights=[1, 3]), model.decode(mixed))
    with pytest.raises(UserError, match="one non-negative number per style"):
        model.stylize(content, [first, second], weights=[1.0])
    with pytest.raises(UserError, match="alpha must be between 0 and 1"):
        model.stylize(content, [first], alpha=1.5)


def test_training_lowers_the_loss_and_only_the_decoder_changes(synthetic_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    adain = AdaIN(encoder_weights="random", sample_every_n_steps=0, lr=1e-3, lr_decay=0.01)
    data = _data(synthetic_root)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    content, style = batch["A"], batch["B"]

    def loss() -> float:
        with torch.no_grad():
            losses, _ = adain.losses(content, style)
        return float(losses["content"] + losses["style"])

    adain.load_encoder_weights()
    before, encoder = loss(), {k: v.clone() for k, v in adain.encoder.state_dict().items()}
    _trainer(tmp_path, 30).fit(adain, data)
    assert loss() < 0.7 * before
    assert all(torch.equal(v, adain.encoder.state_dict()[k]) for k, v in encoder.items())
    assert not adain.encoder.training and not any(p.requires_grad for p in adain.encoder.parameters())
    # The reference's decay, per iteration: lr / (1 + decay * i) at the last step taken (i = 29).
    assert adain.optimizers().param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + 0.01 * 29))


def test_a_checkpoint_rebuilds_without_the_encoder_file(synthetic_root: Path, tmp_path: Path) -> None:
    """Trained from a VGG-19 state dict on disk; the checkpoint holds the encoder, so the file can go."""
    weights = tmp_path / "vgg19.pth"
    source = VGG19Features(("relu4_1",), weights="random")
    torch.save({f"features.{k.split('.', 1)[1]}": v + 0.01 for k, v in source.state_dict().items()}, weights)
    adain = AdaIN(encoder_weights=str(weights), sample_every_n_steps=0)
    trainer = _trainer(tmp_path, 1)
    trainer.fit(adain, _data(synthetic_root))
    trainer.save_checkpoint(tmp_path / "adain.ckpt")
    assert torch.equal(adain.encoder.features[0].weight, source.features[0].weight + 0.01)  # the file's weights
    weights.unlink()
    rebuilt = load_model(tmp_path / "adain.ckpt", capability="stylize")
    assert all(torch.equal(v, adain.state_dict()[k]) for k, v in rebuilt.state_dict().items())
    rebuilt.configure_model()  # what training again would do: the file is not needed any more
    assert rebuilt.pretrained and "vgg19.pth" in rebuilt.description


def test_a_missing_encoder_file_is_one_line_when_training_starts(synthetic_root: Path, tmp_path: Path) -> None:
    adain = AdaIN(encoder="normalised", encoder_weights=str(tmp_path / "vgg_normalised.pth"))
    with pytest.raises(UserError, match="AdaIN encoder weights not found: .*vgg_normalised.pth"):
        _trainer(tmp_path, 1).fit(adain, _data(synthetic_root))
    with pytest.raises(UserError, match="model.encoder must be imagenet or normalised"):
        AdaIN(encoder="resnet")


def test_it_stylizes_and_refuses_translation_and_sampling(model: AdaIN, tmp_path: Path) -> None:
    assert model.capabilities == {"stylize"}
    with pytest.raises(CapabilityError):
        model.translator("AtoB")
    with pytest.raises(CapabilityError):
        model.sample(1)
    assert "untrained" in model.description


def test_quickstart_runs_logs_grids_and_resumes_exactly(synthetic_root: Path, tmp_path: Path) -> None:
    def args(run: Path, *extra: str) -> list[str]:
        return [*tiny_adain_args(synthetic_root, run, epochs=2, batches=2), "--reliability.save_every_n_batches", "1", *extra]

    fit(args(tmp_path / "reference"))
    assert_offline_wandb_images(tmp_path / "reference", "samples")
    fit(args(tmp_path / "run", "--trainer.logger", "false", "--trainer.max_steps", "3"))
    stopped = checkpoints(tmp_path / "run")[-1]
    assert load_raw(stopped)["global_step"] == 3
    fit([*args(tmp_path / "run", "--trainer.logger", "false"), "--ckpt_path", str(stopped)])
    reference, resumed = load_raw(checkpoints(tmp_path / "reference")[-1]), load_raw(stopped)
    assert reference["global_step"] == resumed["global_step"] == 4
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_training_offline_without_the_imagenet_weights_is_one_line(
    offline_hub: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from gan_translate.cli import main

    args = tiny_adain_args(synthetic_root, tmp_path / "run")
    args[args.index("--model.encoder_weights") + 1] = "imagenet"  # not in this machine's (empty) hub cache
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: VGG19 ImageNet weights not found at "), err
