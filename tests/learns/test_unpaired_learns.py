"""It learns: the quickstart CycleGAN, CUT and UNSB, trained briefly on CPU, beat doing nothing on held-out images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from gan_translate import load_translator
from gan_translate.data.io import list_images, load_image
from gan_translate.data.synthetic import make_synthetic
from tests.helpers import CONFIGS, checkpoints, fit


def _mean_l1(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean([np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0 for a, b in pairs]))


def _train_and_score(config: str, tmp_path: Path, batches: int, steps_per_batch: int = 2) -> tuple[float, float, float]:
    """Train the ``config`` quickstart for ``batches`` batches (``steps_per_batch`` optimiser steps each); (L1
    translated, L1 untranslated, seconds) on testA."""
    root = make_synthetic(tmp_path / "synthetic", size=64, n_train=200, n_test=20, seed=0)
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    fit([
        "--config", str(CONFIGS / config / "quickstart.yaml"),
        "--data.root", str(root),
        "--data.num_workers", "0",
        "--trainer.accelerator", "cpu",
        "--trainer.max_steps", str(steps_per_batch * batches),
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
    ])
    train_seconds = time.perf_counter() - started
    translator = load_translator(checkpoints(run_dir)[-1], direction="AtoB", device="cpu")
    inputs = list_images(root / "testA")
    truths = [load_image(root / "testA_gt" / p.name) for p in inputs]
    images = [load_image(p) for p in inputs]
    translated = [translator(image) for image in images]
    l1_model, l1_identity = _mean_l1(list(zip(translated, truths))), _mean_l1(list(zip(images, truths)))
    print(f"{config}: trained {train_seconds:.0f} s: L1 translated {l1_model:.4f} vs untranslated {l1_identity:.4f}")
    return l1_model, l1_identity, train_seconds


@pytest.mark.slow
def test_quickstart_cyclegan_translates_towards_ground_truth(tmp_path: Path) -> None:
    l1_model, l1_identity, _ = _train_and_score("cyclegan", tmp_path, batches=150)
    # Measured (2 cores, shared, one thread): 0.060 vs 0.241 after 150 batches in 67 s. Demand at least a halving.
    assert l1_model < 0.5 * l1_identity


@pytest.mark.slow
def test_quickstart_cut_translates_towards_ground_truth(tmp_path: Path) -> None:
    l1_model, l1_identity, _ = _train_and_score("cut", tmp_path, batches=150)
    # Measured (2 cores, one thread): 0.082 vs 0.241 after 150 batches in 44 s (CycleGAN: 0.063 in 91 s).
    assert l1_model < 0.5 * l1_identity


@pytest.mark.slow
def test_quickstart_unsb_translates_towards_ground_truth(tmp_path: Path) -> None:
    """The bridge, run with all its steps and the default seed, on held-out images: much closer to the truth than the
    input is (UNSB's batch of 4 trains on 2 images and contrasts them with the other 2; 3 optimiser steps a batch)."""
    l1_model, l1_identity, _ = _train_and_score("unsb", tmp_path, batches=200, steps_per_batch=3)
    # Measured (2 cores, shared, one thread): 0.099 vs 0.241 after 200 batches in 117 s (0.112 after 150 in 84 s).
    assert l1_model < 0.5 * l1_identity
