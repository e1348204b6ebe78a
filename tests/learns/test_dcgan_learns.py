"""DCGAN learns: trained briefly on the synthetic shapes, it draws their colours far better than before."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.models import DCGAN
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


def _samples(model: DCGAN, n: int = 256) -> np.ndarray:
    from gan_translate.images import tensor_to_uint8

    return tensor_to_uint8(model.sample(n, generator=torch.Generator().manual_seed(0)))


#: Training batches of the "it learns" test (the quickstart's model and batch size).
LEARN_BATCHES = 400
#: Required drop of the colour distance (untrained ~73); see the measurements in the test's docstring.
LEARN_MARGIN = 25.0


@pytest.mark.slow
def test_it_learns_the_colour_distribution(tmp_path: Path) -> None:
    """The quickstart DCGAN, trained briefly on synthetic shapes, draws their colours far better than before.

    Measured on a shared 2-core machine (one thread, ~25 s of training): untrained 72.8 for every seed;
    after 400 batches 19.8 with this test's seed 0 (the same on reruns) and 17.2, 26.8, 24.4, 20.4, 36.4
    with seeds 1-5, i.e. drops of 36-56. The margin, 25, is half the typical drop and well below the
    smallest one.
    """
    from gan_translate.artifacts import build_model, load_checkpoint
    from gan_translate.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "synthetic", size=32, n_train=1024, n_test=1, seed=0)
    real = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((root / "trainB").glob("*.png"))[:256]])
    run_dir = tmp_path / "run"
    args = [
        "--config", str(CONFIGS / "dcgan" / "quickstart.yaml"),
        "--data.root", str(root / "trainB"), "--data.synthetic", "false", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1000", "--trainer.max_steps", str(2 * LEARN_BATCHES),
        "--trainer.max_time", "00:00:01:30",  # the bound on a loaded machine; the step budget ends it first
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
    ]
    # One intra-op thread (the module's fixture): on a shared 2-core machine two threads made each batch
    # 4-10x slower, as they wait for each other whenever another process holds a core.
    started = time.perf_counter()
    fit(args)
    elapsed = time.perf_counter() - started
    checkpoint = load_checkpoint(run_dir)
    trained = build_model(checkpoint, capability="sample")
    untrained = DCGAN(**{k: v for k, v in dict(trained.hparams).items() if not k.startswith("_")})
    before, after = colour_distance(_samples(untrained), real), colour_distance(_samples(trained), real)
    batches = checkpoint["global_step"] // 2
    print(f"colour distance: untrained {before:.1f}, trained {after:.1f} after {batches} batches; fit took {elapsed:.0f} s")
    assert after < before - LEARN_MARGIN, (before, after, batches)
