"""Every shipped config parses against the code as it is (option names, types, class paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_translate.cli import main
from tests.helpers import CONFIGS

ALL_CONFIGS = sorted(CONFIGS.rglob("*.yaml"))


def test_the_configs_are_found() -> None:
    names = {f"{p.parent.name}/{p.stem}" for p in ALL_CONFIGS}
    assert {"cyclegan/quickstart", "cut/quickstart", "fastcut/horse2zebra", "pix2pix/facades", "dcgan/mnist"} <= names


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_parses(config: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as printed:  # --print_config prints the resolved config, then exits 0
        main(["fit", "--config", str(config), "--print_config"])
    assert printed.value.code == 0, capsys.readouterr().err[-2000:]
    assert "class_path: gan_translate.models." in capsys.readouterr().out
