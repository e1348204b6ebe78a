"""Shared helpers for tests that train tiny models through the real CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gan_translate.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"


def tiny_cyclegan_args(data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The quickstart config shrunk to seconds: 32 px, 8 filters, one residual block."""
    return [
        "--config", str(CONFIGS / "cyclegan" / "quickstart.yaml"),
        "--data.root", str(data_root),
        "--data.synthetic", "false",
        "--data.transform.load_size", "36",
        "--data.transform.crop_size", "32",
        "--data.batch_size", "2",
        "--data.num_workers", "0",
        "--model.ngf", "8",
        "--model.ndf", "8",
        "--model.generator_args", "{n_blocks: 1}",
        "--model.sample_every_n_steps", "2",
        "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(epochs),
        "--trainer.limit_train_batches", str(batches),
        "--trainer.limit_val_batches", "1",
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
    ]


def fit(args: Sequence[str]) -> None:
    code = main(["fit", *args])
    assert code == 0, f"fit exited with {code}"


def checkpoints(run_dir: Path, pattern: str = "last*.ckpt") -> list[Path]:
    return sorted(run_dir.rglob(pattern), key=lambda p: p.stat().st_mtime)


def load_raw(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def tiny_dcgan_args(data_root: Path, run_dir: Path, epochs: int = 2, batches: int = 2) -> list[str]:
    """The DCGAN quickstart shrunk to seconds: 32 px, 8 filters, a 16-d latent, 16 fixed samples.

    ``data_root`` is a folder of images (e.g. the synthetic set's ``trainB``).
    """
    return [
        "--config", str(CONFIGS / "dcgan" / "quickstart.yaml"),
        "--data.root", str(data_root),
        "--data.synthetic", "false",
        "--data.image_size", "32",
        "--data.batch_size", "4",
        "--data.num_workers", "0",
        "--model.resolution", "32",
        "--model.latent_dim", "16",
        "--model.ngf", "8",
        "--model.ndf", "8",
        "--model.num_fixed_samples", "16",
        "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(epochs),
        "--trainer.limit_train_batches", str(batches),
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
    ]


def tiny_pix2pix_args(data_root: Path, run_dir: Path, epochs: int = 1, batches: int = 3) -> list[str]:
    """The pix2pix quickstart shrunk to seconds: 32 px, 8 filters, a 5-level U-Net (size multiple 32).

    ``data_root`` holds the pair splits (train/ and val/ or test/), e.g. the synthetic set's ``paired``.
    """
    return [
        "--config", str(CONFIGS / "pix2pix" / "quickstart.yaml"),
        "--data.root", str(data_root),
        "--data.synthetic", "false",
        "--data.layout", "auto",
        "--data.transform.load_size", "36",
        "--data.transform.crop_size", "32",
        "--data.batch_size", "2",
        "--data.num_workers", "0",
        "--model.ngf", "8",
        "--model.ndf", "8",
        "--model.generator_args", "{num_downs: 5}",
        "--model.sample_every_n_steps", "2",
        "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(epochs),
        "--trainer.limit_train_batches", str(batches),
        "--trainer.limit_val_batches", "1",
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
    ]
