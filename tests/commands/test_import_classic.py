"""`gan-translate import-classic`: a classic generator file -> an export that `translate` reads unchanged."""

from __future__ import annotations

import importlib.util
import urllib.error
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.artifacts import classic_zoo, load_checkpoint
from gan_translate.cli import main
from gan_translate.core.images import tensor_to_uint8, uint8_to_tensor
from tests.artifacts.test_classic_import import classic_resnet, classic_unet


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_import_then_translate_gives_the_classic_generators_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    classic = classic_resnet(ngf=4)
    torch.save(classic.state_dict(), tmp_path / "horse2zebra.pth")
    model = tmp_path / "h2z.safetensors"
    assert main(["import-classic", str(tmp_path / "horse2zebra.pth"), "--arch", "resnet_9blocks", "--output", str(model)]) == 0
    report = capsys.readouterr().out
    assert "resnet_9blocks, instance norm, dropout off, ngf 4, 3 -> 3 channels" in report
    assert f"gan-translate translate --checkpoint {model} --input" in report

    photo = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo).save(tmp_path / "photos" / "horse.png")
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(model), "--input", str(tmp_path / "photos"), "--output", str(out),
                 "--device", "cpu", "--precision", "fp32"]) == 0  # the classic generator runs in fp32
    ours = np.asarray(Image.open(out / "horse.png"))
    with torch.no_grad():
        theirs = tensor_to_uint8(classic(uint8_to_tensor(photo).unsqueeze(0))[0])
    assert ours.shape == photo.shape
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # rounding of the same floats


def test_a_file_of_another_arch_is_one_line_naming_the_key_and_the_arch_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(classic_resnet(n_blocks=6).state_dict(), tmp_path / "g.pth")
    code = main(["import-classic", str(tmp_path / "g.pth"), "--arch", "resnet_9blocks", "--output", str(tmp_path / "o.safetensors")])
    line = _error_line(capsys)
    assert code == 2 and "g.pth" in line and "'model.26.weight'" in line and "--arch resnet_6blocks" in line
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.pth", "--arch", "resnet_9blocks", "--output", "o.safetensors"], "classic generator file not found: missing.pth"),
        (["g.pth", "--output", "o.safetensors"], "--arch is needed to read g.pth: one of resnet_9blocks"),
        (["g.pth", "--arch", "unet_256", "--output", "o.ckpt"], "--output must end in .safetensors, got o.ckpt"),
        (["g.pth", "--arch", "unet_256"], "--output is needed"),
        (["g.pth", "--download", "horse2zebra", "--output", "o.safetensors"], "give either FILE (g.pth) or --download"),
        (["--download", "sat2map", "--output", "o.safetensors"], "choose cyclegan/sat2map or pix2pix/sat2map"),
    ],
)
def test_usage_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["import-classic", *args]) == 2
    assert message in _error_line(capsys)


def test_an_existing_output_is_kept_without_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(classic_resnet().state_dict(), tmp_path / "g.pth")
    (tmp_path / "o.safetensors").write_bytes(b"keep me")
    args = ["import-classic", str(tmp_path / "g.pth"), "--arch", "resnet_9blocks", "--output", str(tmp_path / "o.safetensors")]
    assert main(args) == 2 and "already exists; pass --overwrite" in _error_line(capsys)
    assert (tmp_path / "o.safetensors").read_bytes() == b"keep me"
    assert main([*args, "--overwrite"]) == 0
    assert load_checkpoint(tmp_path / "o.safetensors")["gan_translate"]["model"] == "cyclegan"


def test_list_shows_every_zoo_model_and_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-classic", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(classic_zoo.ZOO)
    assert any(line.startswith("cyclegan/style_vangogh") and line.endswith("--arch resnet_9blocks --norm instance --no-dropout")
               for line in lines)
    assert any(line.startswith("pix2pix/day2night") and line.endswith("--arch unet_256 --norm batch --dropout") for line in lines)


def test_download_offline_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> None:
        raise urllib.error.URLError("Network is unreachable")

    monkeypatch.setattr(classic_zoo.urllib.request, "urlopen", offline)
    assert main(["import-classic", "--download", "style_monet", "--output", str(tmp_path / "monet.safetensors")]) == 2
    line = _error_line(capsys)
    assert "download failed: http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth" in line
    assert "Network is unreachable" in line and not (tmp_path / "monet.safetensors").exists()


def test_download_uses_the_zoo_settings_and_a_file_already_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(url: str, timeout: float) -> None:
        raise AssertionError("a file already in --download-dir must not be downloaded again")

    monkeypatch.setattr(classic_zoo.urllib.request, "urlopen", no_network)
    (tmp_path / "zoo").mkdir()
    torch.save(classic_unet().state_dict(), tmp_path / "zoo" / "edges2shoes.pth")
    out = tmp_path / "e2s.safetensors"
    assert main(["import-classic", "--download", "edges2shoes", "--download-dir", str(tmp_path / "zoo"), "--output", str(out)]) == 0
    assert "unet_256, batch norm, dropout on" in capsys.readouterr().out
    hp = load_checkpoint(out)["hyper_parameters"]
    assert (hp["generator"], hp["norm"], hp["dropout"], hp["inference_mode"]) == ("unet_256", "batch", True, "classic")


def _download_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("script_download", Path(__file__).resolve().parents[2] / "datasets" / "download.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dataset_script_fetches_zoo_models_and_says_how_to_import_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _download_script()
    closed_port = "http://127.0.0.1:9"  # nothing listens there: refused at once, no network involved
    assert script.main(["pretrained", "horse2zebra", "--root", str(tmp_path), "--mirror", closed_port]) == 2
    assert f"download failed: {closed_port}/cyclegan/pretrained_models/horse2zebra.pth" in _error_line(capsys)
    torch.save(classic_resnet().state_dict(), tmp_path / "horse2zebra.pth")  # downloaded by hand: used as is
    assert script.main(["pretrained", "horse2zebra", "--root", str(tmp_path), "--mirror", closed_port]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{tmp_path / 'horse2zebra.pth'}: import it with `gan-translate import-classic {tmp_path / 'horse2zebra.pth'} "
        "--arch resnet_9blocks --norm instance --no-dropout --output MODEL.safetensors`"
    )
