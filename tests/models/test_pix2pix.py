"""Pix2Pix end to end at toy size: networks, losses, inference modes, fit, translate, paired data, it learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gan_translate.cli import main
from gan_translate.core.errors import DataError, UserError
from gan_translate.data.datamodules import PairedDataModule
from gan_translate.data.options import ImageTransform
from gan_translate.models import MODELS, Pix2Pix
from gan_translate.models.pix2pix import INFERENCE_MODES, Pix2PixInference, inference_behaviour
from tests.helpers import CONFIGS, assert_offline_wandb_images, checkpoints, fit, load_raw, tiny_pix2pix_args

# Linear interpolation of (255 - x) and of x can round 1 level apart; geometry errors are far larger.
PIXEL_TOL = 1.01 / 127.5


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def tiny(**kwargs) -> Pix2Pix:
    args = dict(generator="unet", generator_args={"num_downs": 5}, ngf=8, ndf=8, discriminator_args={"n_layers": 2})
    args.update(kwargs)
    return Pix2Pix(**args)


# ----------------------------------------------------------------------------- architecture

def test_registered_and_classic_parameter_counts() -> None:
    assert MODELS.get("pix2pix") is Pix2Pix
    # The paper's networks: U-Net 256 with batch norm, 70x70 PatchGAN on 6 channels (REFERENCE.md).
    with torch.device("meta"):
        model = Pix2Pix()
    assert n_params(model.generator) == 54_413_955
    assert n_params(model.discriminator) == 2_768_705
    first_conv = next(m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 6
    assert model.gan_loss.name == "vanilla" and model.hparams.lambda_l1 == 100.0


@pytest.mark.parametrize("name", ["facades", "maps"])
def test_paper_configs_build_the_classic_networks(name: str) -> None:
    config = yaml.safe_load((CONFIGS / "pix2pix" / f"{name}.yaml").read_text())
    with torch.device("meta"):
        model = Pix2Pix(**config["model"]["init_args"])
    assert n_params(model.generator) == 54_413_955
    assert n_params(model.discriminator) == 2_768_705
    data = config["data"]["init_args"]
    transform = data["transform"]
    assert (data["batch_size"], transform["load_size"], transform["crop_size"], transform["flip"]) == (1, 286, 256, True)
    # Classic scripts: facades labels -> photo is BtoA (labels on the right); maps aerial -> map is AtoB.
    assert data["direction"] == {"facades": "BtoA", "maps": "AtoB"}[name]
    assert config["trainer"]["max_epochs"] == 200 == config["model"]["init_args"]["n_epochs"] * 2


@pytest.mark.parametrize(("generator", "size"), [("unet_256", (256, 256)), ("unet_128", (128, 256))])
def test_both_unets_keep_the_size_through_the_module(generator: str, size: tuple[int, int]) -> None:
    model = Pix2Pix(generator=generator, ngf=4, ndf=4)
    a = torch.rand(1, 3, *size) * 2 - 1
    out = model(a)
    assert out.shape == a.shape and out.abs().max() <= 1
    logits = model.judge(a, out)
    assert logits.shape[:2] == (1, 1)
    if size == (256, 256):
        assert logits.shape[-2:] == (30, 30)  # the 70x70 PatchGAN's map for 256 px


def test_losses_are_finite_and_gradients_go_where_they_should() -> None:
    model = tiny()
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    fake = model.generator(a)
    d = model.discriminator_losses(a, b, fake)
    assert set(d) == {"d", "d_real", "d_fake"}
    assert torch.allclose(d["d"], 0.5 * (d["d_real"] + d["d_fake"]))  # the classic halved D loss
    d["d"].backward()
    assert all(p.grad is None for p in model.generator.parameters()), "D's loss must not reach G (detached fake)"
    assert all(p.grad is not None for p in model.discriminator.parameters())
    model.zero_grad(set_to_none=True)
    g = model.generator_losses(a, b, fake)
    assert set(g) == {"g_adv", "g_l1"}
    assert all(torch.isfinite(v) for v in {**d, **g}.values())
    assert torch.allclose(g["g_l1"], (fake - b).abs().mean() * 100)
    sum(g.values()).backward()
    assert all(p.grad is not None for p in model.generator.parameters())


@pytest.mark.parametrize("gan_loss", ["lsgan", "hinge"])
def test_other_gan_losses(gan_loss: str) -> None:
    model = tiny(gan_loss=gan_loss, lambda_l1=0.0)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    fake = model.generator(a)
    losses = {**model.generator_losses(a, b, fake), **model.discriminator_losses(a, b, fake)}
    assert "g_l1" not in losses and all(torch.isfinite(v) for v in losses.values())


def test_hyperparameters_do_not_clash_with_the_datamodule() -> None:
    # Lightning refuses to merge a model and a datamodule hyperparameter of the same name.
    with torch.device("meta"):
        model_args = set(Pix2Pix().hparams)  # every option of the class chain, **kwargs passed on included
    data_args = set(PairedDataModule().hparams)
    assert "lambda_l1" in model_args and "ngf" in model_args and "transform" in data_args
    assert not model_args & data_args


def test_grayscale_input_and_bad_arguments() -> None:
    model = tiny(in_channels=1, out_channels=3)
    assert model.val_identity is None  # a 1-channel input cannot be scored against an RGB target
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(UserError, match="inference_mode must be one of eval, train_dropout, classic"):
        tiny(inference_mode="test")
    with pytest.raises(UserError, match="lambda_l1"):
        tiny(lambda_l1=-1.0)


# ----------------------------------------------------------------------------- inference behaviour

def test_translator_is_one_directional() -> None:
    model = tiny()
    assert model.translator("AtoB") is model.generator
    with pytest.raises(UserError, match=r"trained A->B.*--data.direction BtoA") as info:
        model.translator("BtoA")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="one of AtoB, BtoA"):
        model.inference_network("sideways")


def _bn_state(model: Pix2Pix) -> list[torch.Tensor]:
    return [t.clone() for name, t in model.generator.state_dict().items() if "running" in name or "num_batches" in name]


def test_inference_modes() -> None:
    model = tiny(dropout=True, generator_args={"num_downs": 6})  # 6 levels: one decoder block with dropout
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    model.train()
    with torch.no_grad():  # give batch norm non-trivial running statistics
        for _ in range(3):
            model.generator(torch.rand(4, 3, 64, 64) * 2 - 1)
    before = _bn_state(model)

    # eval: the plain generator in eval mode, deterministic
    net = model.inference_network()
    assert net is model.generator and not net.training
    with torch.no_grad():
        assert torch.equal(net(x), net(x))

    # train_dropout: dropout on (outputs vary), running statistics kept
    model.train()
    model.hparams.inference_mode = "train_dropout"
    wrapped = model.inference_network()
    assert isinstance(wrapped, Pix2PixInference) and wrapped.size_multiple == 64
    with torch.no_grad():
        assert not torch.equal(wrapped(x), wrapped(x))
    assert model.generator.training, "the wrapper must restore the layers' own train/eval state"

    # classic: batch statistics per image, so an image's result does not depend on its batch neighbours
    model_nd = tiny(dropout=False)
    model_nd.train()
    classic = Pix2PixInference(model_nd.generator, "classic")
    with torch.no_grad():
        together = classic(x[:, :, :32, :32])
        alone = classic(x[1:2, :, :32, :32])
    torch.testing.assert_close(together[1:2], alone)
    with torch.no_grad(), inference_behaviour(model_nd.generator, "eval"):
        assert not torch.allclose(model_nd.generator(x[1:2, :, :32, :32]), alone)

    # no mode ever changes the running statistics a checkpoint would save
    for mode in INFERENCE_MODES:
        with torch.no_grad():
            Pix2PixInference(model.generator, mode)(x)
    for old, new in zip(before, _bn_state(model)):
        assert torch.equal(old, new)


def test_validation_uses_the_inference_mode_and_scores_the_input_baseline() -> None:
    model = tiny(inference_mode="classic", dropout=False)
    model.eval()
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    batch = {"A": a, "B": -a, "A_path": ["x", "y"], "B_path": ["x", "y"]}
    logged: dict[str, float] = {}
    model.log_dict = lambda values, **kw: logged.update({k: float(v) for k, v in values.items()})  # type: ignore[method-assign]
    model.validation_step(batch, 0)
    model.on_validation_epoch_end()
    assert set(logged) == {"val/l1", "val/psnr", "val/ssim", "val/l1_identity", "val/psnr_identity", "val/ssim_identity"}
    with torch.no_grad():
        expected = Pix2PixInference(model.generator, "classic")(a)
    assert logged["val/l1"] == pytest.approx(float(((expected - -a).abs() / 2).mean()), rel=1e-4)
    assert logged["val/l1_identity"] == pytest.approx(float((a.abs()).mean()), rel=1e-4)


# ----------------------------------------------------------------------------- fit and translate

@pytest.fixture(scope="module")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("pix2pix_run")
    fit(tiny_pix2pix_args(synthetic_root / "paired", run_dir, epochs=1, batches=3))
    return run_dir


def test_fit_writes_checkpoint_config_and_samples(trained_run: Path) -> None:
    last = checkpoints(trained_run)
    assert len(last) == 1 and last[0].name == "last.ckpt"
    ckpt = load_raw(last[0])
    assert ckpt["gan_translate"]["model"] == "pix2pix"
    hp = ckpt["hyper_parameters"]
    assert hp["ngf"] == 8 and hp["generator_args"] == {"num_downs": 5} and hp["inference_mode"] == "eval"
    assert ckpt["global_step"] == 2 * 3  # D and G steps per batch
    best = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")][0]
    assert best["monitor"] == "val/psnr" and torch.isfinite(best["best_model_score"])
    assert checkpoints(trained_run, "best-*.ckpt")
    assert list(trained_run.rglob("config.yaml"))
    assert list(trained_run.glob("gan-translate/*/samples/val_samples_*.png"))  # in the run folder


def test_offline_wandb_run_has_sample_grids(trained_run: Path) -> None:
    assert_offline_wandb_images(trained_run, "samples")


def test_command_line_inference_mode_applies_to_a_checkpoint_and_other_changes_are_reported(
    trained_run: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LightningCLI rebuilds the model from --ckpt_path's hyperparameters, over the command line. A test-time
    # behaviour given there must still apply; an architecture change cannot, and is reported, not dropped silently.
    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(Pix2Pix, "on_test_start", lambda self: seen.append((self.hparams.inference_mode, self.hparams.ngf)))
    args = [*tiny_pix2pix_args(synthetic_root / "paired", tmp_path, epochs=1, batches=1),
            "--ckpt_path", str(checkpoints(trained_run)[0]), "--model.inference_mode", "classic", "--model.ngf=16"]
    with pytest.warns(UserWarning, match=r"--model\.ngf 16 is ignored: the model is rebuilt from .*last\.ckpt with its ngf=8"):
        assert main(["test", *args]) == 0
    assert seen == [("classic", 8)]


def _write(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(size))
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


def test_translate_round_trip_keeps_names_and_sizes(trained_run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    sizes = {"odd.png": (250, 190), "gray.png": (33, 47), "nested/tiny.png": (9, 5)}
    for name, size in sizes.items():
        _write(inputs / name, size, mode="L" if name == "gray.png" else "RGB")
    out = tmp_path / "out"
    code = main(["translate", "--checkpoint", str(trained_run), "--input", str(inputs), "--output", str(out),
                 "--batch-size", "2", "--device", "cpu"])
    assert code == 0
    for name, size in sizes.items():
        result = Image.open(out / name)
        assert result.size == size and result.mode == "RGB"


def test_translate_btoa_is_refused_in_one_line(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path / "a.png", (32, 32))
    code = main(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "a.png"),
                 "--output", str(tmp_path / "out"), "--direction", "BtoA", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: pix2pix translates AtoB only: this model was trained A->B")
    assert "--data.direction BtoA" in err[0]
    assert not (tmp_path / "out").exists()


def test_translate_api(trained_run: Path, tmp_path: Path) -> None:
    from gan_translate import load_translator

    translator = load_translator(trained_run, direction="AtoB", device="cpu")
    assert translator.model_name == "pix2pix" and translator.size_multiple == 32
    image = np.random.default_rng(0).integers(0, 255, (37, 41, 3), dtype=np.uint8)
    out = translator(image)
    assert out.shape == (37, 41, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(translator(image), out)  # eval mode: deterministic
    batched = dict(translator.translate_many([("x", image), ("y", image)], batch_size=2))
    np.testing.assert_array_equal(batched["x"], out)

    # A checkpoint asking for the classic behaviour gets the wrapper, padded and cropped the same way.
    ckpt = load_raw(checkpoints(trained_run)[0])
    ckpt["hyper_parameters"]["inference_mode"] = "classic"
    torch.save(ckpt, tmp_path / "classic.ckpt")
    classic = load_translator(tmp_path / "classic.ckpt", device="cpu")
    assert isinstance(classic.network, Pix2PixInference) and classic.size_multiple == 32
    assert classic(image).shape == (37, 41, 3)


# ----------------------------------------------------------------------------- paired data

def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth image with a unique layout per seed (so a wrong crop or flip shows)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a, b = rng.uniform(1, 4, 2)
    return np.stack([(yy * a) % 256, (xx * b) % 256, (yy + 2 * xx) % 256], axis=2).astype(np.uint8)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _paired_root(root: Path, layout: str, sizes: list[tuple[int, int]]) -> Path:
    """train/ and val/ with pairs B = 255 - A, in the aligned or the two-folder layout."""
    for split in ("train", "val"):
        for i, (h, w) in enumerate(sizes):
            a = _pattern(h, w, i + (100 if split == "val" else 0))
            if layout == "aligned":
                _save(root / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
            else:
                _save(root / split / "A" / f"{i}.png", a)
                _save(root / split / "B" / f"{i}.png", 255 - a)
    return root


@pytest.mark.parametrize(("layout", "workers"), [("aligned", 2), ("folders", 0)])
def test_datamodule_keeps_pairs_aligned_under_random_augmentation(tmp_path: Path, layout: str, workers: int) -> None:
    sizes = [(40, 40), (44, 60), (64, 36), (50, 50), (38, 70), (48, 48)]
    root = _paired_root(tmp_path / "pairs", layout, sizes)
    dm = PairedDataModule(str(root), layout=layout, transform=ImageTransform(load_size=48, crop_size=32, flip=True), batch_size=3,
                          num_workers=workers, seed=5)
    dm.setup("fit")
    loader = dm.train_dataloader()
    seen = []
    for epoch in range(8):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            assert batch["A"].shape == batch["B"].shape == (3, 3, 32, 32)
            assert (batch["A"] + batch["B"]).abs().max() <= PIXEL_TOL
            seen.append(batch["A"])
    assert len(seen) == 16  # 8 epochs x 2 full batches: every pair many times over
    # The augmentation really is random: the same file does not come out the same every time.
    assert len({round(float(a.sum()), 3) for a in seen}) > 8
    val = next(iter(dm.val_dataloader()))
    assert (val["A"] + val["B"]).abs().max() <= PIXEL_TOL


def test_datamodule_direction_swaps_input_and_target(tmp_path: Path) -> None:
    root = _paired_root(tmp_path / "pairs", "aligned", [(32, 32)])
    as_is = ImageTransform(preprocess="none", flip=False)
    a_to_b = PairedDataModule(str(root), transform=as_is, num_workers=0)
    b_to_a = PairedDataModule(str(root), transform=as_is, num_workers=0, direction="BtoA")
    for dm in (a_to_b, b_to_a):
        dm.setup("fit")
    x, y = next(iter(a_to_b.train_dataloader())), next(iter(b_to_a.train_dataloader()))
    assert torch.equal(x["A"], y["B"]) and torch.equal(x["B"], y["A"])


def test_broken_pairs_are_clear_errors_through_the_datamodule(tmp_path: Path) -> None:
    # Missing partner (two-folder layout): refused at setup, naming the file.
    root = _paired_root(tmp_path / "missing", "folders", [(40, 40), (40, 40)])
    (root / "train" / "B" / "1.png").unlink()
    dm = PairedDataModule(str(root), layout="folders", num_workers=0)
    with pytest.raises(DataError, match=r"missing partner in B for .*train/A/1\.png"):
        dm.setup("fit")

    # Partners of different sizes: refused at setup (from the headers), naming both files.
    root = _paired_root(tmp_path / "sizes", "folders", [(40, 40)])
    _save(root / "train" / "B" / "0.png", _pattern(40, 30, 0))
    dm = PairedDataModule(str(root), layout="folders", num_workers=0, transform=ImageTransform(load_size=36, crop_size=32))
    with pytest.raises(DataError, match=r"A/0\.png is 40x40.*B/0\.png is 30x40"):
        dm.setup("fit")

    # Aligned image with an odd width: cannot be split, named at setup.
    root = tmp_path / "odd"
    _save(root / "train" / "odd.png", _pattern(20, 41, 0))
    dm = PairedDataModule(str(root), num_workers=0, transform=ImageTransform(load_size=36, crop_size=32))
    with pytest.raises(DataError, match=r"odd\.png into A\|B halves: its width 41 is odd"):
        dm.setup("fit")


def test_fit_on_broken_pairs_is_one_line(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _paired_root(tmp_path / "pairs", "folders", [(40, 40), (40, 40)])
    (root / "train" / "A" / "1.png").unlink()
    args = tiny_pix2pix_args(root, tmp_path / "run")
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: missing partner in A for") and "train/B/1.png" in err[-1]

    # Raised inside a DataLoader worker (which wraps it with its traceback): still one line.
    root = _paired_root(tmp_path / "sizes", "folders", [(40, 40), (40, 40)])
    _save(root / "train" / "B" / "1.png", _pattern(40, 30, 0))
    args = [*tiny_pix2pix_args(root, tmp_path / "run2"), "--data.num_workers", "2", "--data.batch_size", "1",
            "--trainer.logger", "false", "--trainer.num_sanity_val_steps", "0"]
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: paired images differ in size") and "B/1.png is 30x40" in err[-1]
