"""Files written by gan-translate 0.1.0 (tests/fixtures/legacy_0.1.0, see its README) still work: they load,
rebuild the same networks, give the same outputs, and a 0.1 training checkpoint resumes."""

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
from tests.helpers import CONFIGS, checkpoints, load_raw

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
