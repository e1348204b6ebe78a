"""One contract, run on every registered model (and on a renamed copy of ``models/template.py``).

Build it tiny, declare what it can do consistently, train a step that changes its generator(s), save, rebuild it
by name from the file alone, then translate (odd image sizes, every declared direction, an export of it) or
sample (reproducibly), and refuse what it cannot do with one error type. A new model passes this by adding its
tiny settings to ``TINY`` (the test fails until it does).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from gan_translate.artifacts import export_generators, load_checkpoint, load_model, model_name
from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.errors import CapabilityError
from gan_translate.data import ImageFolderDataModule, ImageTransform, PairedDataModule, StyleDataModule, UnpairedDataModule
from gan_translate.inference.translator import load_translator
from gan_translate.models import MODELS, GANModule, models_that

REPO_ROOT = Path(__file__).resolve().parents[2]
_TRANSFORM = ImageTransform(load_size=32, crop_size=32)


def _unpaired(root: Path) -> pl.LightningDataModule:
    return UnpairedDataModule(str(root), transform=_TRANSFORM, batch_size=2, num_workers=0)


def _paired(root: Path) -> pl.LightningDataModule:
    return PairedDataModule(str(root / "paired"), layout="auto", transform=_TRANSFORM, batch_size=2, num_workers=0)


def _content_and_styles(root: Path) -> pl.LightningDataModule:
    return StyleDataModule(str(root / "trainA"), style_root=str(root / "trainB"), transform=_TRANSFORM, batch_size=2,
                           num_workers=0)


def _images(root: Path) -> pl.LightningDataModule:
    return ImageFolderDataModule(str(root / "trainB"), image_size=32, batch_size=2, num_workers=0)


_UNET_TINY = {"generator": "unet", "generator_args": {"num_downs": 5}, "ngf": 4}
#: name -> (tiny hyperparameters, the data it trains on). Every registered model needs an entry.
TINY: dict[str, tuple[dict[str, Any], Callable[[Path], pl.LightningDataModule]]] = {
    "cyclegan": ({"generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 4, "ndf": 4,
                  "discriminator_args": {"n_layers": 1}, "pool_size": 2}, _unpaired),
    "pix2pix": ({**_UNET_TINY, "ndf": 4, "discriminator_args": {"n_layers": 1}}, _paired),
    "dcgan": ({"resolution": 32, "latent_dim": 8, "ngf": 4, "ndf": 4, "num_fixed_samples": 4, "make_gif": False}, _images),
    "copied_template": (_UNET_TINY, _paired),
    "cut": ({"generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 4, "ndf": 4, "num_patches": 8,
             "nce_mlp_channels": 8, "discriminator_args": {"n_layers": 1}}, _unpaired),
    "fastcut": ({"generator": "resnet", "generator_args": {"n_blocks": 1, "antialias": True}, "ngf": 4, "ndf": 4,
                 "num_patches": 8, "nce_mlp_channels": 8, "discriminator_args": {"n_layers": 1}}, _unpaired),
    "adain": ({"encoder_weights": "random", "sample_every_n_steps": 0}, _content_and_styles),
    "stylegan2": ({"resolution": 32, "z_dim": 16, "w_dim": 16, "channel_base": 256, "channel_max": 16,
                   "mapping_layers": 2, "num_fixed_samples": 4, "make_gif": False, "augment": "ada",
                   "ada_kimg": 0.1}, _images),
}
#: The network a training step must change, for models without translators.
TRAINED = {"sample": "generator", "stylize": "decoder"}


@pytest.fixture()
def copied_template(tmp_path: Path) -> Iterator[type[GANModule]]:
    """``models/template.py`` copied and renamed, as a contributor starts a model: it registers and works as is."""
    source = (REPO_ROOT / "gan_translate" / "models" / "template.py").read_text()
    source = source.replace('@register_model("template")', '@register_model("copied_template")')
    source = source.replace("class TemplateModel(", "class CopiedTemplate(")
    path = tmp_path / "copied_template.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("copied_template", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["copied_template"] = module
    try:
        spec.loader.exec_module(module)
        yield module.CopiedTemplate
    finally:
        MODELS.unregister("copied_template")
        sys.modules.pop("copied_template", None)


def _odd_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (29, 37, 3), dtype=np.uint8)


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module, prefix: str) -> bool:
    after = model.state_dict()
    return any(not torch.equal(value, after[key]) for key, value in before.items() if key.startswith(f"{prefix}."))


def _check_declarations(cls: type[GANModule], model: GANModule) -> None:
    assert cls.model_name in MODELS and MODELS.get(cls.model_name) is cls
    assert cls.capabilities and cls.capabilities <= {"translate", "sample", "stylize"}
    assert ("translate" in cls.capabilities) == bool(cls.translators)
    assert set(cls.translators) <= set(DIRECTIONS)
    for attribute in cls.translators.values():
        assert isinstance(getattr(model, attribute), torch.nn.Module)
    json.dumps(dict(model.hparams))  # plain values only: checkpoints are read with weights_only=True
    for direction in set(DIRECTIONS) - set(cls.translators):
        with pytest.raises(CapabilityError):
            model.translator(direction)
    if "sample" not in cls.capabilities:
        with pytest.raises(CapabilityError):
            model.sample(1)


def _train_one_step(model: GANModule, data: pl.LightningDataModule, folder: Path) -> Path:
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(folder))
    trainer.fit(model, data)
    path = folder / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def _check_translation(cls: type[GANModule], path: Path, folder: Path) -> None:
    image = _odd_image()
    exported = folder / "generators.safetensors"
    assert export_generators(path, exported) == list(cls.translators)
    for direction in cls.translators:
        result = load_translator(path, direction=direction, device="cpu")(image)
        assert result.shape == image.shape and result.dtype == np.uint8
        again = load_translator(exported, direction=direction, device="cpu")(image)
        np.testing.assert_array_equal(again, result)


def _check_sampling(model: GANModule) -> None:
    first = model.sample(2, generator=torch.Generator().manual_seed(5))
    second = model.sample(2, generator=torch.Generator().manual_seed(5))
    assert first.ndim == 4 and first.shape[0] == 2 and torch.isfinite(first).all()
    assert float(first.min()) >= -1 and float(first.max()) <= 1
    torch.testing.assert_close(first, second)


def _check_stylizing(cls: type[GANModule], path: Path) -> None:
    from gan_translate.inference.style import load_adain_stylizer

    stylizer = load_adain_stylizer(path, device="cpu")
    content, style = _odd_image(0), _odd_image(1)[:20]
    result = stylizer(content, style)
    assert result.shape == content.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(stylizer(content, style), result)  # deterministic
    with pytest.raises(CapabilityError, match=r"translates images: .*\(adain stylises images: use `gan-translate stylize --method adain`\)"):
        load_model(path, capability="translate")


def run_contract(cls: type[GANModule], synthetic_root: Path, folder: Path) -> None:
    assert cls.model_name in TINY, f"add tiny settings for the {cls.model_name!r} model to TINY in {__file__}"
    hparams, data = TINY[cls.model_name]
    model = cls(**hparams)
    _check_declarations(cls, model)
    generators = list(cls.translators.values()) or [TRAINED[next(iter(cls.capabilities))]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = _train_one_step(model, data(synthetic_root), folder)
    assert all(_changed(before, model, prefix) for prefix in generators), "a training step left a generator unchanged"

    assert model_name(load_checkpoint(path)) == cls.model_name
    rebuilt = load_model(path)  # by the name in the file, from its hyperparameters alone
    assert type(rebuilt) is cls
    expected = model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in rebuilt.state_dict().items())
    if "translate" in cls.capabilities:
        _check_translation(cls, path, folder)
    if "sample" in cls.capabilities:
        _check_sampling(rebuilt)
    if "stylize" in cls.capabilities:
        _check_stylizing(cls, path)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_keeps_the_contract(name: str, synthetic_root: Path, tmp_path: Path) -> None:
    run_contract(MODELS.get(name), synthetic_root, tmp_path)


def test_a_copy_of_the_template_is_a_working_model(copied_template: type[GANModule], synthetic_root: Path, tmp_path: Path) -> None:
    assert "copied_template" in models_that("translate")
    run_contract(copied_template, synthetic_root, tmp_path)


def test_capability_lists_come_from_the_registry() -> None:
    assert models_that("translate") == ["cut", "cyclegan", "fastcut", "pix2pix"]
    assert models_that("sample") == ["dcgan", "stylegan2"]
    assert models_that("stylize") == ["adain"]
