"""Files written by gan-translate 0.1.0 and 0.2.0 (tests/fixtures/legacy_0.1.0 and legacy_0.2.0, see their READMEs)
still work: they load, rebuild the same networks, give the same outputs, and training checkpoints resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gan_translate.artifacts import load_checkpoint, load_model
from gan_translate.cli import main
from gan_translate.core.images import uint8_to_tensor
from gan_translate.data.io import load_image, save_image
from gan_translate.inference.translator import load_translator
from tests.helpers import CONFIGS, checkpoints, load_raw, tiny_stylegan2_args

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_0.1.0"
EXPECTED = torch.load(LEGACY / "expected_outputs.pt", weights_only=True)


@pytest.mark.parametrize(
    ("name", "file", "direction"),
    [("cyclegan_AtoB", "cyclegan.ckpt", "AtoB"), ("cyclegan_BtoA", "cyclegan.ckpt", "BtoA"),
     ("pix2pix_AtoB", "pix2pix.ckpt", "AtoB"), ("exported_AtoB", "cyclegan_AtoB.safetensors", "AtoB")],
)
def test_old_translators_give_the_same_images(name: str, file: str, direction: str) -> None:
    image = uint8_to_tensor(load_image(LEGACY / "input.png"))[None]
    torch.testing.assert_close(image, EXPECTED["input"])
    translator = load_translator(LEGACY / file, direction=direction, device="cpu")
    torch.testing.assert_close(translator.translate_batch(image), EXPECTED[name], atol=1e-5, rtol=0)


def test_old_dcgan_samples_the_same_images() -> None:
    model = load_model(LEGACY / "dcgan.ckpt", capability="sample")
    samples = model.sample(2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(samples, EXPECTED["dcgan_seed3"], atol=1e-6, rtol=0)


def test_old_files_name_their_models() -> None:
    names = {file: load_checkpoint(LEGACY / file)["gan_translate"]["model"] for file in
             ("cyclegan.ckpt", "pix2pix.ckpt", "dcgan.ckpt", "cyclegan_AtoB.safetensors")}
    assert names == {"cyclegan.ckpt": "cyclegan", "pix2pix.ckpt": "pix2pix", "dcgan.ckpt": "dcgan",
                     "cyclegan_AtoB.safetensors": "cyclegan"}


def test_old_cyclegan_checkpoint_resumes(synthetic_root: Path, tmp_path: Path) -> None:
    """fit --ckpt_path of a 0.1 checkpoint: weights, optimisers, pools, step and random states come back, and
    training goes on from there (one more epoch)."""
    old = tmp_path / "old.ckpt"
    shutil.copy(LEGACY / "cyclegan.ckpt", old)
    saved = load_raw(old)
    assert "Reliability" in saved["callbacks"]  # the random states 0.1 kept, now ExactResume's
    run = tmp_path / "run"
    code = main(["fit", "--config", str(CONFIGS / "cyclegan" / "quickstart.yaml"), "--ckpt_path", str(old),
                 "--data.root", str(synthetic_root), "--data.synthetic", "false",
                 "--data.transform.load_size", "32", "--data.transform.crop_size", "32", "--data.batch_size", "2",
                 "--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "2",
                 "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run)])
    assert code == 0
    resumed = load_raw(checkpoints(run)[-1])
    assert resumed["epoch"] == 1 and resumed["global_step"] == saved["global_step"] + 2 * 2
    assert resumed["hyper_parameters"]["ngf"] == 4  # rebuilt from the old file's hyperparameters
    translated = tmp_path / "out.png"
    save_image(load_translator(checkpoints(run)[-1], device="cpu")(load_image(LEGACY / "input.png")), translated)
    assert load_image(translated).shape == load_image(LEGACY / "input.png").shape


LEGACY_02 = LEGACY.parent / "legacy_0.2.0"
EXPECTED_02 = torch.load(LEGACY_02 / "expected_outputs.pt", weights_only=True)


@pytest.mark.parametrize(("name", "file", "direction"),
                         [("cyclegan_AtoB", "cyclegan.ckpt", "AtoB"), ("cyclegan_BtoA", "cyclegan.ckpt", "BtoA"),
                          ("cut_AtoB", "cut.ckpt", "AtoB")])
def test_0_2_translators_give_the_same_images(name: str, file: str, direction: str) -> None:
    image = uint8_to_tensor(load_image(LEGACY_02 / "input.png"))[None]
    torch.testing.assert_close(image, EXPECTED_02["input"])
    translator = load_translator(LEGACY_02 / file, direction=direction, device="cpu")
    torch.testing.assert_close(translator.translate_batch(image), EXPECTED_02[name], atol=1e-5, rtol=0)


@pytest.mark.parametrize("file", ["stylegan2.ckpt", "stylegan2.safetensors"])
def test_0_2_stylegan2_files_sample_the_same_images(file: str) -> None:
    """A 0.2 StyleGAN2 checkpoint and its generator export: the same samples, and the same truncated decode."""
    model = load_model(LEGACY_02 / file, capability="sample")
    samples = model.sample(2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(samples, EXPECTED_02[f"{file}_seed3"], atol=1e-5, rtol=0)
    if file.endswith(".ckpt"):
        z = torch.randn(2, model.hparams.z_dim, generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(model.decode(z, psi=0.5), EXPECTED_02["stylegan2_psi0.5"], atol=1e-5, rtol=0)


def test_0_2_files_name_their_models() -> None:
    names = {file: load_checkpoint(LEGACY_02 / file)["gan_translate"]["model"]
             for file in ("cyclegan.ckpt", "cut.ckpt", "stylegan2.ckpt", "stylegan2.safetensors")}
    assert names == {"cyclegan.ckpt": "cyclegan", "cut.ckpt": "cut", "stylegan2.ckpt": "stylegan2",
                     "stylegan2.safetensors": "stylegan2"}


def test_0_2_stylegan2_checkpoint_resumes(synthetic_root: Path, tmp_path: Path) -> None:
    """fit --ckpt_path of a 0.2 StyleGAN2 checkpoint (EMA generator, ADA's p, path-length mean): it trains one more
    epoch from there and the result still samples."""
    old = tmp_path / "old.ckpt"
    shutil.copy(LEGACY_02 / "stylegan2.ckpt", old)
    saved = load_raw(old)
    run = tmp_path / "run"
    code = main(["fit", *tiny_stylegan2_args(synthetic_root / "trainB", run, epochs=2, batches=2), "--ckpt_path", str(old),
                 "--trainer.logger", "false"])
    assert code == 0
    resumed = load_raw(checkpoints(run)[-1])
    assert resumed["epoch"] == saved["epoch"] + 1 and resumed["global_step"] > saved["global_step"]
    assert resumed["hyper_parameters"]["z_dim"] == saved["hyper_parameters"]["z_dim"] == 16
    model = load_model(checkpoints(run)[-1], capability="sample")
    assert torch.isfinite(model.sample(2, generator=torch.Generator().manual_seed(3))).all()
