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


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_states_its_precision_and_why_when_it_is_not_auto(config: Path) -> None:
    """`precision: auto` (bf16 where the hardware runs it fast) is every config's default where bf16 was measured to
    keep fp32's quality (benchmarks/RESULTS.md); a config left in fp32 says why on that line."""
    import yaml

    precision = yaml.safe_load(config.read_text())["trainer"].get("precision")
    assert precision is not None, f"{config}: set trainer.precision (auto, or 32-true with the reason)"
    (line,) = [line for line in config.read_text().splitlines() if line.strip().startswith("precision:")]
    assert str(precision) == "auto" or "#" in line, f"{config}: precision {precision} needs a comment saying why not auto"
