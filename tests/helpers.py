"""Shared helpers for tests that train tiny models through the real CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gan_translate.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"


def _tiny_run(config: str, run_dir: Path, epochs: int, batches: int, filters: bool = True) -> list[str]:
    """The flags every tiny test run shares: a quickstart config, on the CPU, quiet, logging every step
    (and, for GANs, 8 filters per layer)."""
    return [
        "--config", str(CONFIGS / config / "quickstart.yaml"),
        "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(epochs),
        "--trainer.limit_train_batches", str(batches),
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
        "--data.synthetic", "false",
        "--data.num_workers", "0",
        *(["--model.ngf", "8", "--model.ndf", "8"] if filters else []),
    ]


def _tiny_translator(config: str, data_root: Path, run_dir: Path, epochs: int, batches: int) -> list[str]:
    """A translator's tiny run: 32 px crops of 36 px images, batches of 2, one validation batch, grids every 2 steps."""
    return [
        *_tiny_run(config, run_dir, epochs, batches),
        "--data.root", str(data_root),
        "--data.transform.load_size", "36",
        "--data.transform.crop_size", "32",
        "--data.batch_size", "2",
        "--model.sample_every_n_steps", "2",
        "--trainer.limit_val_batches", "1",
    ]


def tiny_cyclegan_args(data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The quickstart config shrunk to seconds: 32 px, 8 filters, one residual block."""
    return [*_tiny_translator("cyclegan", data_root, run_dir, epochs, batches), "--model.generator_args", "{n_blocks: 1}"]


def tiny_pix2pix_args(data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The pix2pix quickstart shrunk to seconds: 32 px, 8 filters, a 5-level U-Net (size multiple 32).

    ``data_root`` holds the pair splits (train/ and val/ or test/), e.g. the synthetic set's ``paired``.
    """
    return [*_tiny_translator("pix2pix", data_root, run_dir, epochs, batches), "--data.layout", "auto",
            "--model.generator_args", "{num_downs: 5}"]


def tiny_dcgan_args(data_root: Path, run_dir: Path, epochs: int = 2, batches: int = 2) -> list[str]:
    """The DCGAN quickstart shrunk to seconds: 32 px, 8 filters, a 16-d latent, 16 fixed samples.

    ``data_root`` is a folder of images (e.g. the synthetic set's ``trainB``).
    """
    return [
        *_tiny_run("dcgan", run_dir, epochs, batches),
        "--data.root", str(data_root),
        "--data.image_size", "32",
        "--data.batch_size", "4",
        "--model.resolution", "32",
        "--model.latent_dim", "16",
        "--model.num_fixed_samples", "16",
    ]


def tiny_stylegan2_args(data_root: Path, run_dir: Path, epochs: int = 2, batches: int = 2) -> list[str]:
    """The StyleGAN2 quickstart shrunk to seconds: 32 px, 16 channels at most, 16-d z and w, a 2-layer mapping,
    4 fixed samples, batches of 4, path length and style mixing on, ADA adjusting every 2 batches fast enough to move p.

    ``data_root`` is a folder of images (e.g. the synthetic set's ``trainB``).
    """
    return [
        *_tiny_run("stylegan2", run_dir, epochs, batches, filters=False),
        "--data.root", str(data_root),
        "--data.image_size", "32",
        "--data.batch_size", "4",
        "--model.resolution", "32",
        "--model.z_dim", "16",
        "--model.w_dim", "16",
        "--model.mapping_layers", "2",
        "--model.channel_base", "256",
        "--model.channel_max", "16",
        "--model.num_fixed_samples", "4",
        "--model.ada_interval", "2",
        "--model.ada_kimg", "0.1",
        # The quickstart turns these two off (ADA's 32 px config); the tiny runs keep them on, so that resume, DDP
        # and precision tests cover the path-length step (and its running mean) and style mixing.
        "--model.pl_weight", "2",
        "--model.style_mixing_prob", "0.9",
    ]


def tiny_adain_args(data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The AdaIN quickstart shrunk to seconds: the synthetic trainA as content, trainB as styles, 32 px crops,
    batches of 2, the seeded random VGG encoder (its outputs say it is untrained)."""
    return [
        *_tiny_run("adain", run_dir, epochs, batches, filters=False),
        "--data.root", str(data_root / "trainA"),
        "--data.style_root", str(data_root / "trainB"),
        "--data.transform.load_size", "36",
        "--data.transform.crop_size", "32",
        "--data.batch_size", "2",
        "--model.encoder_weights", "random",
        "--model.sample_every_n_steps", "2",
        "--trainer.max_steps", "-1",
    ]


def fit(args: Sequence[str]) -> None:
    code = main(["fit", *args])
    assert code == 0, f"fit exited with {code}"


def checkpoints(run_dir: Path, pattern: str = "last*.ckpt") -> list[Path]:
    return sorted(run_dir.rglob(pattern), key=lambda p: p.stat().st_mtime)


def load_raw(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_offline_wandb_images(run_dir: Path, name_part: str) -> None:
    """The run's one offline W&B run holds uint8 pictures whose names contain ``name_part`` (not black ones)."""
    import numpy as np
    from PIL import Image

    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    images = list(runs[0].rglob("media/images/**/*.png"))
    assert any(name_part in p.name for p in images), images
    picture = np.asarray(Image.open(images[0]))
    assert picture.dtype == np.uint8 and picture.max() > 0, "W&B images came out black"
