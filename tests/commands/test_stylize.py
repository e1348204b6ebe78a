"""`gan-translate stylize --method adain`: a trained checkpoint or the published files, any content size, several
styles mixed, alpha, the summary file, and one-line refusals (the VGG is the seeded random one, labelled)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.artifacts.checkpoints import CHECKPOINT_KEY
from gan_translate.cli import main
from gan_translate.data import ImageTransform, StyleDataModule
from gan_translate.models import AdaIN, CycleGAN, models_that
from gan_translate.nn.adain import REFERENCE_ENCODER_KEYS


@pytest.fixture(scope="module")
def adain_checkpoint(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AdaIN checkpoint as `fit` writes it (random VGG encoder), trained until its outputs are no longer flat."""
    folder = tmp_path_factory.mktemp("adain")
    model = AdaIN(encoder_weights="random", sample_every_n_steps=0, lr=1e-3)
    data = StyleDataModule(str(synthetic_root / "trainA"), style_root=str(synthetic_root / "trainB"), batch_size=2,
                           num_workers=0, transform=ImageTransform(load_size=36, crop_size=32, flip=False))
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_steps=20)
    trainer.fit(model, data)
    trainer.save_checkpoint(folder / "adain.ckpt")
    return folder / "adain.ckpt"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    (folder / "content" / "sub").mkdir(parents=True)
    paths = {"odd": folder / "content" / "odd.png", "square": folder / "content" / "sub" / "square.jpg",
             "style1": folder / "style1.png", "style2": folder / "style2.png"}
    for name, shape in {"odd": (29, 37), "square": (40, 40), "style1": (64, 48), "style2": (50, 50)}.items():
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(paths[name])
    return paths


def _stylize(*args: str) -> int:
    return main(["stylize", "--method", "adain", "--device", "cpu", *args])


def _error(capsys: pytest.CaptureFixture) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert len(err) == 1, err
    return err[0]


def test_a_checkpoint_stylizes_a_folder_keeping_names_and_sizes(
    adain_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert _stylize("--checkpoint", str(adain_checkpoint), "--content", str(images["odd"].parent),
                    "--style", str(images["style1"]), str(images["style2"]), "--style-weights", "0.3,0.7",
                    "--output", str(out)) == 0
    captured = capsys.readouterr()
    assert "untrained" in captured.err and "stylized 2 of 2 images" in captured.out
    assert np.asarray(Image.open(out / "odd.png")).shape == (29, 37, 3)
    assert np.asarray(Image.open(out / "sub" / "square.jpg")).shape == (40, 40, 3)
    summary = json.loads((out / "stylize.json").read_text())
    assert summary["method"] == "adain" and summary["weights"] == [0.3, 0.7]
    assert summary["weights_source"] == str(adain_checkpoint) and "untrained" in summary["description"]
    assert len(summary["styles"]) == 2 and len(summary["images"]) == 2 and summary["failed"] == []


def test_alpha_zero_differs_from_the_full_style_and_colour_can_be_kept(
    adain_checkpoint: Path, images: dict[str, Path], tmp_path: Path
) -> None:
    results = {}
    for name, extra in {"full": [], "none": ["--alpha", "0"], "colour": ["--preserve-color"]}.items():
        assert _stylize("--checkpoint", str(adain_checkpoint), "--content", str(images["odd"]),
                        "--style", str(images["style1"]), "--output", str(tmp_path / f"{name}.png"), *extra) == 0
        results[name] = np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int)
    assert np.abs(results["full"] - results["none"]).mean() > 1
    content = np.asarray(Image.open(images["odd"])).astype(float)

    def chroma(image: np.ndarray) -> np.ndarray:  # BT.601 Cb, Cr
        r, g, b = (image[..., i].astype(float) for i in range(3))
        return np.stack([-0.1687 * r - 0.3313 * g + 0.5 * b, 0.5 * r - 0.4187 * g - 0.0813 * b])

    assert np.abs(chroma(results["colour"]) - chroma(content)).mean() < np.abs(chroma(results["full"]) - chroma(content)).mean()
    assert (tmp_path / "full.stylize.json").is_file()  # beside the named result file


def test_the_published_weight_files_work_without_training(images: dict[str, Path], tmp_path: Path) -> None:
    """vgg_normalised.pth (integer keys, conv layers of the port's Sequential) and decoder.pth, as downloaded."""
    torch.manual_seed(0)
    reference = AdaIN(encoder="normalised", encoder_weights="random")
    encoder = reference.encoder.state_dict()
    published = {f"{index}.{part}": encoder[f"{name}.{part}"] for index, name in REFERENCE_ENCODER_KEYS.items()
                 for part in ("weight", "bias")}
    torch.save(published, tmp_path / "vgg_normalised.pth")
    torch.save(reference.decoder.state_dict(), tmp_path / "decoder.pth")
    out = tmp_path / "out.png"
    assert _stylize("--adain-encoder", str(tmp_path / "vgg_normalised.pth"), "--adain-decoder", str(tmp_path / "decoder.pth"),
                    "--content", str(images["odd"]), "--style", str(images["style1"]), "--output", str(out)) == 0
    summary = json.loads((tmp_path / "out.stylize.json").read_text())
    assert summary["weights_source"].endswith("vgg_normalised.pth + " + str(tmp_path / "decoder.pth"))
    content = torch.from_numpy(np.asarray(Image.open(images["odd"]))).permute(2, 0, 1)[None].float() / 127.5 - 1
    style = torch.from_numpy(np.asarray(Image.open(images["style1"]))).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():  # the file-loaded model computes what the model the files came from computes
        padded = torch.nn.functional.pad(content, (0, 3, 0, 3), mode="reflect")
        expected = reference.eval().stylize(padded, [style])[..., :29, :37].clamp(-1, 1)
    result = torch.from_numpy(np.asarray(Image.open(out)).astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    assert float((result - expected).abs().max()) <= 1.5 / 127.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "AdaIN needs a --checkpoint (a trained AdaIN run), or both --adain-encoder"),
        (["--adain-encoder", "x.pth"], "AdaIN needs a --checkpoint"),
        (["--checkpoint", "CKPT", "--adain-decoder", "d.pth"], "give either an AdaIN --checkpoint or the published"),
        (["--checkpoint", "CKPT", "--style-weights", "1,2,3"], "--style-weights gives 3 weights for 1 --style images"),
        (["--checkpoint", "CKPT", "--style-weights", "a,b"], "--style-weights must be numbers like 0.3,0.7"),
        (["--checkpoint", "CKPT", "--alpha", "2"], "alpha must be between 0 and 1, got 2.0"),
        (["--adain-encoder", "missing.pth", "--adain-decoder", "d.pth"], "AdaIN encoder weights not found: missing.pth"),
    ],
)
def test_refusals_are_one_line(
    extra: list[str], message: str, adain_checkpoint: Path, images: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = [str(adain_checkpoint) if value == "CKPT" else value for value in extra]
    code = _stylize(*extra, "--content", str(images["odd"]), "--style", str(images["style1"]), "--output", str(tmp_path / "o"))
    assert code == 2
    assert message in _error(capsys)


def test_a_translator_checkpoint_and_gatys_with_two_styles_are_refused(
    images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cyclegan = CycleGAN(generator="resnet", generator_args={"n_blocks": 1}, ngf=4, ndf=4, discriminator_args={"n_layers": 1})
    torch.save({"state_dict": cyclegan.state_dict(), "hyper_parameters": dict(cyclegan.hparams),
                CHECKPOINT_KEY: {"model": "cyclegan", "version": "0.2.0"}}, tmp_path / "cyclegan.ckpt")
    common = ["--content", str(images["odd"]), "--output", str(tmp_path / "o")]
    assert _stylize("--checkpoint", str(tmp_path / "cyclegan.ckpt"), "--style", str(images["style1"]), *common) == 2
    stylizers = ", ".join(models_that("stylize"))
    assert f"is a cyclegan checkpoint; `stylize --method adain` needs a model that stylises images: {stylizers}" in _error(capsys)
    assert main(["stylize", "--style", str(images["style1"]), str(images["style2"]), *common]) == 2
    assert "Gatys takes one --style image" in _error(capsys)
