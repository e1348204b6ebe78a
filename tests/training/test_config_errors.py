"""gan-translate 0.1 config keys of the data options: one line naming the new key, wherever the old one was."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_translate.cli import main
from gan_translate.data.options import RENAMED_OPTIONS, ImageTransform, SyntheticSet, plain_hparams
from tests.helpers import CONFIGS

QUICKSTART = str(CONFIGS / "cyclegan" / "quickstart.yaml")


def _error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    assert main(["fit", "--config", QUICKSTART, *args]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("old", sorted(RENAMED_OPTIONS))
def test_an_old_flag_names_its_new_one(old: str, capsys: pytest.CaptureFixture) -> None:
    new = RENAMED_OPTIONS[old]
    line = _error(capsys, [f"--data.{old}", "1"])
    assert line.startswith(f"error: --data: option '{old}' is not accepted (on the command line); it is '{new}'")
    assert f"--data.{new}" in line


def test_an_old_key_in_a_users_config_names_the_file_and_the_new_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    old = tmp_path / "my_run.yaml"
    old.write_text("data:\n  init_args:\n    load_size: 300\n    synthetic_seed: 3\n")
    line = _error(capsys, ["--config", str(old)])
    assert f"(in {old})" in line and "it is 'transform.load_size'" in line


def test_option_groups_are_stored_as_plain_values() -> None:
    stored = plain_hparams({"self": object(), "__class__": object, "root": "x", "transform": ImageTransform(crop_size=8),
                            "synthetic_set": SyntheticSet(size=16)})
    assert stored == {"root": "x", "transform": {"preprocess": "resize_and_crop", "load_size": 286, "crop_size": 8, "flip": True},
                      "synthetic_set": {"size": 16, "n_train": 200, "n_test": 20, "seed": 0}}
