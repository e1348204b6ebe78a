"""Test-wide settings: offline, quiet, deterministic, small."""

import os

# Set before anything imports albumentations or wandb.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("PYTHONHASHSEED", "0")
# One intra-op thread, here and in every subprocess a test starts (bit-exact comparisons between a run in
# this process and one in a subprocess need the same reduction order). The test networks are tiny, so a
# second thread gains little even on an idle 2-core machine, while on a busy one OpenMP's spin-waiting
# made two threads 4-10x slower per training step (measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch


@pytest.fixture(autouse=True)
def _small_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)


from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic two-domain dataset (32 px) with ground truth, shared by the whole session."""
    from gan_translate.data.synthetic import make_synthetic

    return Path(make_synthetic(tmp_path_factory.mktemp("synthetic") / "synthetic", size=32, n_train=8, n_test=4, seed=0))


@pytest.fixture(autouse=True)
def _finish_wandb():
    """Never let one test's W&B run leak into the next (wandb keeps a global current run)."""
    yield
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except ImportError:
        pass


@pytest.fixture()
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache in tmp_path and a download that fails like a machine without network."""
    import urllib.error

    def no_network(url: str, *args, **kwargs) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub"
