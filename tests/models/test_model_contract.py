"""One contract, run on every registered model (and on a renamed copy of ``models/template.py``).

Build it tiny, declare what it can do consistently, train a step that changes its generator(s), save, rebuild it
by name from the file alone, then translate (odd image sizes, every declared direction, an export of it) or
sample (reproducibly), and refuse what it cannot do with one error type. A new model passes this by adding its
tiny settings to ``TINY`` in tests/tiny.py (the test fails until it does).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

import gan_translate.models as models_package
from gan_translate.artifacts import export_generators, load_checkpoint, load_model, model_name
from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.errors import CapabilityError
from gan_translate.inference.translator import load_translator
from gan_translate.models import MODELS, GANModule, import_model_modules, models_that
from tests.helpers import checkpoints, fit
from tests.tiny import TINY, TRANSLATES, Data, Tiny

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The network a training step must change, for models without translators.
TRAINED = {"sample": "generator", "stylize": "decoder"}

#: The contributor's configs/copied_template/quickstart.yaml: the model by its class path, the data it trains on.
_TEMPLATE_CONFIG = """\
seed_everything: 0
trainer:
  max_epochs: 10
  logger:
    class_path: gan_translate.training.loggers.WandbLogger
    init_args: {project: gan-translate, name: copied-template-quickstart, save_dir: runs/copied_template}
model:
  class_path: gan_translate.models.CopiedTemplate
  init_args: {generator: unet, generator_args: {num_downs: 6}, ngf: 16, sample_every_n_steps: 100}
data:
  class_path: gan_translate.data.PairedDataModule
  init_args: {root: data/synthetic, synthetic: true, transform: {load_size: 72, crop_size: 64}, batch_size: 4}
"""


@pytest.fixture()
def copied_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[GANModule]]:
    """A new model as a contributor adds one (CONTRIBUTING.md, "Adding a model"): three files and nothing else.

    1. ``models/copied_template.py``: ``models/template.py`` copied, its class and registry name changed. It sits in
       a folder added to the package's path (as if beside template.py), and ``models/__init__.py`` finds it unedited;
    2. ``configs/copied_template/quickstart.yaml``, naming it ``gan_translate.models.CopiedTemplate``;
    3. its entry in ``TINY`` (tests/tiny.py).
    """
    source = (REPO_ROOT / "gan_translate" / "models" / "template.py").read_text()
    source = source.replace('@register_model("template")', '@register_model("copied_template")')
    source = source.replace("class TemplateModel(", "class CopiedTemplate(")
    package = tmp_path / "models"
    package.mkdir()
    (package / "copied_template.py").write_text(source)
    config = tmp_path / "configs" / "copied_template"
    config.mkdir(parents=True)
    (config / "quickstart.yaml").write_text(_TEMPLATE_CONFIG)
    monkeypatch.setitem(TINY, "copied_template", Tiny(
        config, Data.PAIRED, TRANSLATES, {"generator": "unet", "generator_args": {"num_downs": 5}, "ngf": 4},
        flags=("--model.generator_args", "{num_downs: 5}", "--model.ngf", "4", "--model.sample_every_n_steps", "2"),
        gan_filters=False))  # no discriminator: no ndf
    monkeypatch.setattr(models_package, "__path__", [*models_package.__path__, str(package)])
    try:
        assert "copied_template" in import_model_modules()
        yield models_package.CopiedTemplate
    finally:
        MODELS.unregister("copied_template")
        sys.modules.pop("gan_translate.models.copied_template", None)
        vars(models_package).pop("CopiedTemplate", None)
        models_package.__all__.remove("CopiedTemplate")


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
    with pytest.raises(CapabilityError, match=rf"translates images: .*\({cls.model_name} stylises images: use `gan-translate stylize --method adain`\)"):
        load_model(path, capability="translate")


def run_contract(cls: type[GANModule], synthetic_root: Path, folder: Path) -> None:
    assert cls.model_name in TINY, f"add tiny settings for the {cls.model_name!r} model to TINY in tests/tiny.py"
    tiny = TINY[cls.model_name]
    model = cls(**tiny.kwargs)
    _check_declarations(cls, model)
    generators = list(cls.translators.values()) or [TRAINED[next(iter(cls.capabilities))]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = _train_one_step(model, tiny.data.datamodule(synthetic_root), folder)
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
    # ... and its config trains it through the CLI, by the class path models/__init__.py gave it
    fit(TINY["copied_template"].synthetic_args(synthetic_root, tmp_path / "cli", epochs=1, batches=1))
    assert checkpoints(tmp_path / "cli")


def test_capability_lists_come_from_the_registry() -> None:
    # What each model's class declares (models_that) agrees with what its tiny entry expects of it.
    for capability in ("translate", "sample", "stylize"):
        expected = sorted(name for name, tiny in TINY.items() if capability in tiny.capabilities)
        assert models_that(capability) == expected, capability


def test_the_tiny_table_has_exactly_the_registered_models() -> None:
    assert sorted(TINY) == MODELS.names(), "tests/tiny.py's TINY needs one entry per registered model, and no other"
    for name, tiny in TINY.items():
        assert tiny.config_file.is_file(), f"{name}: no {tiny.config_file}"
