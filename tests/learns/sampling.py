"""What the "it learns" tests of the sampling models (DCGAN, StyleGAN2) share: the synthetic shapes, a short
quickstart fit through the CLI, and the colour-distribution distance their assertions use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gan_translate.core.images import tensor_to_uint8
from tests.helpers import CONFIGS, fit


def colour_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean over R, G, B of the 1-D Wasserstein distance between the pixel-value distributions (0-255 units).

    A colour-distribution statistic that is smooth in the generator's output. (An L1 distance between
    8-bin 3-D colour histograms was tried first: it sits at its maximum, 2, for untrained AND briefly
    trained generators alike, because the synthetic images have a few exact flat colours and early
    samples land in neighbouring bins.) Two disjoint sets of 256 real images are ~1.7 apart.
    """
    n = min(len(fake), len(real))
    per_channel = [
        np.abs(np.sort(fake[:n, ..., c].ravel()).astype(np.float64) - np.sort(real[:n, ..., c].ravel())).mean()
        for c in range(3)
    ]
    return float(np.mean(per_channel))


def seeded_samples(model: Any, n: int = 256) -> np.ndarray:
    """``n`` uint8 samples (N, H, W, C) of ``model``, seed 0."""
    return tensor_to_uint8(model.sample(n, generator=torch.Generator().manual_seed(0)))


def learn_quickstart(model: str, tmp_path: Path, *trainer_args: str) -> tuple[float, float, dict[str, Any]]:
    """Fit ``configs/<model>/quickstart.yaml`` on 1024 synthetic 32 px shapes with ``trainer_args`` (the budget),
    on the CPU, then the colour distance to 256 real images of an untrained model (same hyperparameters, seed 0)
    and of the trained one. Returns ``(before, after, checkpoint)``; prints both and the fit's time."""
    from gan_translate.artifacts import build_model, load_checkpoint
    from gan_translate.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "synthetic", size=32, n_train=1024, n_test=1, seed=0)
    real = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((root / "trainB").glob("*.png"))[:256]])
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    fit([
        "--config", str(CONFIGS / model / "quickstart.yaml"),
        "--data.root", str(root / "trainB"), "--data.synthetic", "false", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
        *trainer_args,
    ])
    elapsed = time.perf_counter() - started
    checkpoint = load_checkpoint(run_dir)
    trained = build_model(checkpoint, capability="sample")
    torch.manual_seed(0)
    untrained = type(trained)(**{k: v for k, v in dict(trained.hparams).items() if not k.startswith("_")})
    before, after = colour_distance(seeded_samples(untrained), real), colour_distance(seeded_samples(trained), real)
    print(f"{model} colour distance: untrained {before:.1f}, trained {after:.1f}; fit took {elapsed:.0f} s")
    return before, after, checkpoint
