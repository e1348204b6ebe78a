"""Test-wide settings: offline, quiet, deterministic, small."""

import os

# Set before anything imports albumentations or wandb.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _small_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
