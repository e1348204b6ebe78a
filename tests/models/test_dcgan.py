"""DCGAN end to end at toy size: the module, fixed-noise grids and GIF, resume, torchvision data, generate."""

from __future__ import annotations

import shutil
import struct
import urllib.error
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.callbacks.progress_animation import GIF_NAME, fixed_noise_frames
from gan_translate.cli import main
from gan_translate.core.errors import DataError, UserError
from gan_translate.core.images import match_channels
from gan_translate.data.datamodules import ImageFolderDataModule
from gan_translate.inference.generation import slerp
from gan_translate.models import DCGAN, MODELS, CycleGAN, models_that
from gan_translate.models.base import CHECKPOINT_KEY
from tests.helpers import CONFIGS, checkpoints, fit, load_raw, tiny_dcgan_args

TINY = dict(latent_dim=16, ngf=8, ndf=8, num_fixed_samples=16)


# --- the module --------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_generator_shapes_range_and_discriminator_logits(resolution: int, channels: int) -> None:
    model = DCGAN(resolution=resolution, channels=channels, **TINY)
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    # training mode (batch statistics) gives full-range images of the same shape
    trained_mode = model(torch.randn(4, 16))
    assert trained_mode.shape == (4, channels, resolution, resolution)
    assert trained_mode.abs().max() <= 1 and trained_mode.std() > 0.01
    logits = model.discriminator(trained_mode)
    assert logits.shape == (4,)
    # logits, not probabilities: no sigmoid at the end, so scaled-up weights leave [0, 1]
    last = model.discriminator.model[-1]
    assert isinstance(last, torch.nn.Conv2d)
    with torch.no_grad():
        last.weight.mul_(1e4)
    assert (model.discriminator(trained_mode).abs() > 1).any()


def test_registered_and_not_a_translator() -> None:
    assert MODELS.get("dcgan") is DCGAN
    with pytest.raises(UserError, match="not an image-to-image translator; it generates images: use `gan-translate generate`"):
        DCGAN(resolution=32, **TINY).translator()


def test_bad_hyperparameters_are_user_errors() -> None:
    with pytest.raises(UserError, match="image_size=48"):
        DCGAN(resolution=48, **TINY)
    with pytest.raises(UserError, match="channels must be 1 or 3"):
        DCGAN(resolution=32, channels=2, **TINY)


def test_sample_is_reproducible_and_independent_of_batching() -> None:
    model = DCGAN(resolution=32, **TINY)
    a = model.sample(6, generator=torch.Generator().manual_seed(7))
    b = model.sample(6, generator=torch.Generator().manual_seed(7))
    c = model.sample(6, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    z = model.latents(6, torch.Generator().manual_seed(7))
    torch.testing.assert_close(model.decode(z, batch_size=1), a)
    assert model.generator.training, "sample() must restore the generator's training mode"


def test_fixed_noise_is_a_seeded_buffer() -> None:
    torch.manual_seed(1)
    first = DCGAN(resolution=32, **TINY)
    torch.manual_seed(2)
    second = DCGAN(resolution=32, **TINY)
    torch.testing.assert_close(first.fixed_noise, second.fixed_noise, rtol=0, atol=0)
    assert first.fixed_noise.shape == (16, 16)
    assert "fixed_noise" in first.state_dict()
    other = DCGAN(resolution=32, fixed_noise_seed=99, **TINY)
    assert not torch.equal(other.fixed_noise, first.fixed_noise)


def test_match_channels() -> None:
    grey = torch.rand(2, 1, 4, 4) * 2 - 1
    rgb = grey.expand(-1, 3, -1, -1)
    torch.testing.assert_close(match_channels(rgb, 1), grey)
    assert match_channels(grey, 3).shape == (2, 3, 4, 4)
    assert match_channels(rgb, 3) is rgb


def test_training_logs_the_discriminator_statistics(synthetic_root: Path, tmp_path: Path) -> None:
    # No logger and no checkpoint callback: the grids then go to default_root_dir/samples.
    model = DCGAN(resolution=32, channels=1, **TINY)  # 1 channel: the RGB images are turned into luma
    data = ImageFolderDataModule(root=str(synthetic_root / "trainB"), image_size=32, batch_size=4, num_workers=0)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
    )
    trainer.fit(model, datamodule=data)
    metrics = trainer.logged_metrics
    for key in ("d_loss", "g_loss", "d_real_mean", "d_fake_mean", "d_acc_real", "d_acc_fake"):
        assert f"train/{key}_step" in metrics or f"train/{key}" in metrics, key
    assert 0 <= float(metrics["train/d_real_mean_epoch"]) <= 1
    assert trainer.global_step == 4  # a D and a G step per batch
    frames = fixed_noise_frames(tmp_path / "samples")
    assert [step for step, _ in frames] == [0, 4]
    assert (tmp_path / GIF_NAME).is_file()


@pytest.mark.filterwarnings("ignore:The dirpath has changed")
def test_resume_into_another_folder_copies_the_earlier_grids(synthetic_root: Path, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    def trainer(epochs: int) -> pl.Trainer:
        # CSVLogger: every fit gets a new version_N folder, so the resumed run writes elsewhere
        return pl.Trainer(
            max_epochs=epochs, limit_train_batches=2, logger=CSVLogger(tmp_path), log_every_n_steps=1, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
        )

    def data() -> ImageFolderDataModule:
        return ImageFolderDataModule(root=str(synthetic_root / "trainB"), image_size=32, batch_size=4, num_workers=0)

    trainer(1).fit(DCGAN(resolution=32, **TINY), datamodule=data())
    first = tmp_path / "lightning_logs" / "version_0"
    resumed = trainer(2)
    resumed.fit(DCGAN(resolution=32, **TINY), datamodule=data(), ckpt_path=str(next(first.rglob("*.ckpt"))))
    second = tmp_path / "lightning_logs" / "version_1"
    assert [s for s, _ in fixed_noise_frames(second / "samples")] == [0, 4, 8]
    assert Image.open(second / GIF_NAME).n_frames == 3
    assert [s for s, _ in fixed_noise_frames(first / "samples")] == [0, 4], "the earlier run must stay untouched"


def test_resolution_must_match_the_data(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = tiny_dcgan_args(synthetic_root / "trainB", tmp_path, epochs=1, batches=1)
    code = main(["fit", *args, "--data.image_size", "64", "--trainer.logger", "false"])  # no W&B: faster
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: data.image_size=64 but model.resolution=32; set both to the same size"


# --- fit through the CLI, resume, GIF ------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two epochs, then a resume to a third; the checkpoint of the first run is kept aside."""
    run_dir = tmp_path_factory.mktemp("dcgan_run")
    images = synthetic_root / "trainB"
    fit(tiny_dcgan_args(images, run_dir, epochs=2, batches=2))
    first = checkpoints(run_dir)[-1]
    run_folder = first.parent.parent
    kept = tmp_path_factory.mktemp("dcgan_first") / "first.ckpt"
    shutil.copy2(first, kept)
    first_gif_frames = Image.open(run_folder / GIF_NAME).n_frames
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    fit([*tiny_dcgan_args(images, run_dir, epochs=3, batches=2), "--ckpt_path", str(first)])
    return {
        "run_dir": run_dir, "run_folder": run_folder, "first": kept, "last": checkpoints(run_dir)[-1],
        "first_wandb": wandb_runs[0], "first_gif_frames": first_gif_frames,  # type: ignore[dict-item]
    }


def test_fit_writes_checkpoint_grids_and_gif(trained_run: dict) -> None:
    first = load_raw(trained_run["first"])
    assert first[CHECKPOINT_KEY]["model"] == "dcgan"
    assert first["hyper_parameters"]["resolution"] == 32 and first["hyper_parameters"]["ngf"] == 8
    assert first["global_step"] == 2 * 2 * 2  # 2 epochs x 2 batches x (D step + G step)
    # start frame + one per epoch, and the GIF of the first run had them all
    assert trained_run["first_gif_frames"] == 3
    images = list(trained_run["first_wandb"].rglob("media/images/**/*.png"))
    assert any("fixed_noise" in p.name for p in images), images
    assert any(Image.open(p).getextrema()[0][1] > 0 for p in images), "W&B images came out black"
    videos = list(trained_run["first_wandb"].rglob("media/videos/**/*.gif"))
    assert len(videos) == 1 and Image.open(videos[0]).n_frames == 3


def test_resume_keeps_fixed_noise_and_the_gif_history(trained_run: dict) -> None:
    first, last = load_raw(trained_run["first"]), load_raw(trained_run["last"])
    assert trained_run["last"].parent.parent == trained_run["run_folder"], "the resume continued in another folder"
    assert last["global_step"] == 3 * 2 * 2  # continued: 3 epochs in all, not 2 + a fresh 3
    fresh = DCGAN(**{k: v for k, v in first["hyper_parameters"].items() if not k.startswith("_")})
    for ckpt in (first, last):  # identical across epochs, resumes, and to a model built from the seed
        torch.testing.assert_close(ckpt["state_dict"]["fixed_noise"], fresh.fixed_noise, rtol=0, atol=0)
    assert not torch.equal(first["state_dict"]["generator.model.0.weight"], last["state_dict"]["generator.model.0.weight"])
    frames = fixed_noise_frames(trained_run["run_folder"] / "samples")
    assert [step for step, _ in frames] == [0, 4, 8, 12]
    gif = Image.open(trained_run["run_folder"] / GIF_NAME)
    assert gif.n_frames == 4 and gif.size == Image.open(frames[0][1]).size
    # 16 fixed samples in a 4x4 grid of 32 px tiles with 2 px padding
    assert gif.size == (4 * 34 + 2, 4 * 34 + 2)


# --- generate ------------------------------------------------------------------------------------
def _generate(checkpoint: Path, output: Path, *extra: str) -> int:
    return main(["generate", "--checkpoint", str(checkpoint), "--output", str(output), "--device", "cpu", *extra])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_generate_is_reproducible(trained_run: dict, tmp_path: Path) -> None:
    run = trained_run["run_folder"]  # a run folder works like a checkpoint file (its last.ckpt)
    assert _generate(run, tmp_path / "a", "--num", "5", "--seed", "3") == 0
    assert _generate(run, tmp_path / "b", "--num", "5", "--seed", "3", "--batch-size", "2") == 0
    assert _generate(trained_run["last"], tmp_path / "c", "--num", "5", "--seed", "4") == 0
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert sorted(a) == [f"{i:06d}.png" for i in range(5)]
    assert a == b, "same seed (and another batch size) must give identical files"
    assert all(a[name] != c[name] for name in a), "another seed must give other images"
    image = Image.open(tmp_path / "a" / "000000.png")
    assert image.size == (32, 32) and image.mode == "RGB"


def test_generate_grid_and_interpolation(trained_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _generate(trained_run["last"], out, "--num", "5", "--seed", "1", "--grid", "--interpolate", "6",
                     "--interpolations", "2") == 0
    assert Image.open(out / "grid.png").size == (3 * 34 + 2, 2 * 34 + 2)  # 5 images: 3 per row, 2 rows
    strips = sorted(out.glob("interpolation_*.png"))
    assert [p.name for p in strips] == ["interpolation_00.png", "interpolation_01.png"]
    assert all(Image.open(p).size == (6 * 34 + 2, 34 + 2) for p in strips)
    # the samples do not change when interpolations are asked for too
    assert _generate(trained_run["last"], tmp_path / "plain", "--num", "5", "--seed", "1") == 0
    assert (out / "000004.png").read_bytes() == (tmp_path / "plain" / "000004.png").read_bytes()


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_generate_refusals(trained_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = trained_run["last"]
    assert _generate(ckpt, tmp_path / "o", "--num", "0") == 2
    assert _one_line_error(capsys) == "error: --num must be a positive number of images, got 0"
    assert _generate(ckpt, tmp_path / "o", "--num", "-3") == 2
    assert "--num must be a positive" in _one_line_error(capsys)
    assert _generate(ckpt, tmp_path / "o", "--num", "2", "--interpolate", "1") == 2
    assert "--interpolate K needs K >= 2" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists(), "nothing may be written for refused arguments"
    # existing files are kept unless --overwrite
    assert _generate(ckpt, tmp_path / "o", "--num", "2", "--seed", "1") == 0
    capsys.readouterr()
    before = (tmp_path / "o" / "000000.png").read_bytes()
    assert _generate(ckpt, tmp_path / "o", "--num", "2", "--seed", "2") == 2
    assert "000000.png already exists (and 1 more); pass --overwrite" in _one_line_error(capsys)
    assert (tmp_path / "o" / "000000.png").read_bytes() == before
    assert _generate(ckpt, tmp_path / "o", "--num", "2", "--seed", "2", "--overwrite") == 0
    assert (tmp_path / "o" / "000000.png").read_bytes() != before


def test_generate_refuses_a_cyclegan_and_translate_refuses_a_dcgan(
    trained_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cyclegan = CycleGAN(generator="resnet", generator_args={"n_blocks": 1}, ngf=4, ndf=4, discriminator_args={"n_layers": 1})
    path = tmp_path / "cyclegan.ckpt"
    # the structure `fit` writes, as far as `load_checkpoint` / `build_model` look at it
    torch.save({"state_dict": cyclegan.state_dict(), "hyper_parameters": dict(cyclegan.hparams),
                CHECKPOINT_KEY: {"model": "cyclegan", "version": "0.1.0"}}, path)
    assert _generate(path, tmp_path / "o", "--num", "2") == 2
    assert _one_line_error(capsys) == (f"error: {path} is a cyclegan checkpoint; `generate` needs a model that generates "
                                       f"images: {', '.join(models_that('sample'))} (cyclegan translates images: use "
                                       "`gan-translate translate`)")
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    code = main(["translate", "--checkpoint", str(trained_run["last"]), "--input", str(image),
                 "--output", str(tmp_path / "t"), "--device", "cpu"])
    assert code == 2
    assert (f"is a dcgan checkpoint; `translate` needs a model that translates images: {', '.join(models_that('translate'))} "
            "(dcgan generates images: use `gan-translate generate`)") in _one_line_error(capsys)


def test_slerp_keeps_the_latent_norm() -> None:
    a, b = torch.randn(3, 100), torch.randn(3, 100)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # equal norms
    path = slerp(a, b, torch.linspace(0, 1, 7))
    torch.testing.assert_close(path[:, 0], a)
    torch.testing.assert_close(path[:, -1], b)
    torch.testing.assert_close(path.norm(dim=2), a.norm(dim=1, keepdim=True).expand(3, 7))
    # the linear midpoint would have shrunk to ~0.7 of the norm
    assert ((a + b) / 2).norm(dim=1).mean() < 0.8 * a.norm(dim=1).mean()
    same = slerp(a, a.clone(), torch.linspace(0, 1, 3))
    assert torch.isfinite(same).all()


# --- torchvision datasets --------------------------------------------------------------------------
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    monkeypatch.setattr("torchvision.datasets.celeba.download_file_from_google_drive", refuse)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "celeba"])
def test_offline_download_is_one_clear_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gan_translate.data.torchvision_sets import TorchvisionDataModule

    _no_network(monkeypatch)
    data = TorchvisionDataModule(name=name, root=str(tmp_path / "data"), download=True, num_workers=0)
    with pytest.raises(DataError) as info:
        data.prepare_data()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {name} into {tmp_path / 'data'}")
    assert "Temporary failure in name resolution" in message and "provide the files by hand" in message
    without_download = TorchvisionDataModule(name=name, root=str(tmp_path / "data"), download=False, num_workers=0)
    with pytest.raises(DataError, match=f"^{name} not found in .*set data.download: true"):
        without_download.setup("fit")


def _write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, raw bytes."""
    header = struct.pack(">4B", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, n: int = 6) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    digits = np.random.default_rng(0).integers(0, 256, (n, 28, 28))
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", digits)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_mnist_files_placed_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gan_translate.data.torchvision_sets import TorchvisionDataModule

    _no_network(monkeypatch)  # present files must not need the network, even with download: true
    _fake_mnist(tmp_path)
    data = TorchvisionDataModule(name="mnist", root=str(tmp_path), image_size=32, batch_size=4, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    # grey digits come as RGB with equal channels; a 1-channel DCGAN turns them back exactly
    torch.testing.assert_close(batch["image"][:, 0], batch["image"][:, 2])
    assert match_channels(batch["image"], 1).shape == (4, 1, 32, 32)


def test_mnist_config_trains_a_greyscale_dcgan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    _fake_mnist(tmp_path / "data", n=8)
    fit(["--config", str(CONFIGS / "dcgan" / "mnist.yaml"), "--data.root", str(tmp_path / "data"),
         "--data.batch_size", "4", "--data.num_workers", "0", "--model.ngf", "8", "--model.ndf", "8",
         "--trainer.logger", "false", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
         "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run")])
    ckpt = load_raw(checkpoints(tmp_path / "run")[-1])
    assert ckpt["hyper_parameters"]["channels"] == 1 and ckpt["global_step"] == 4
    grid = Image.open(fixed_noise_frames(tmp_path / "run" / "samples")[-1][1])
    assert grid.size == (8 * 34 + 2, 8 * 34 + 2)  # 64 fixed samples of 32 px


def test_a_nan_loss_stops_before_any_weight_changes(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    from gan_translate.core.errors import NonFiniteLossError

    model = DCGAN(resolution=32, latent_dim=8, ngf=4, ndf=4, num_fixed_samples=4, sample_every_n_steps=0, make_gif=False)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    # The discriminator's logits turn NaN on its second call of the first batch (the fakes).
    calls = {"n": 0}

    def poison(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 2 else output

    model.discriminator.register_forward_hook(poison)
    images = [{"image": torch.rand(3, 32, 32) * 2 - 1} for _ in range(4)]
    trainer = pl.Trainer(accelerator="cpu", max_steps=4, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"^train/d_loss is nan at step 0"):
        trainer.fit(model, train_dataloaders=DataLoader(images, batch_size=4))
    # (Batch-norm running statistics move in the forward passes, as in any framework; weights must not.)
    for key, value in model.named_parameters():
        torch.testing.assert_close(value.detach(), before[key], msg=f"{key} changed although the loss was NaN")
