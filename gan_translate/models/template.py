"""A whole model in one file, to copy when adding one (the classic CycleGAN repository's ``template_model.py``).

``TemplateModel`` learns a paired translation with a generator and an L1 loss only: the smallest model that has
everything the framework expects of one. To add a model:

1. copy this file to ``models/<name>.py``, rename the class and the ``@register_model`` name, and write its
   networks (from ``gan_translate.nn``), losses, ``training_step`` and ``configure_optimizers``
   (``models/__init__.py`` imports every module of the package, so configs name it ``gan_translate.models.<Class>``);
2. add ``configs/<name>/quickstart.yaml``;
3. add its tiny test settings to ``TINY`` in ``tests/tiny.py``: the contract test
   (``tests/models/test_model_contract.py``), DDP, precision, export and serving tests read that table, and the
   contract (build tiny, train a step, save, reload by name, translate or sample, export) runs on every registered
   model, and on a renamed copy of this file. Nothing else needs an edit (CONTRIBUTING.md, "Adding a model").

The template itself is the one module ``models/__init__.py`` does not import, so it is not offered to users.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8, to_unit_range
from gan_translate.losses import l1
from gan_translate.metrics import paired_metrics
from gan_translate.models.registry import register_model
from gan_translate.models.translation import TranslationGAN

__all__ = ["TemplateModel"]


@register_model("template")
class TemplateModel(TranslationGAN):
    """A generator trained with L1 to the paired target (no adversary): a template, and a regression baseline.

    Its options: those of every translator (``in_channels``, ``generator_args``, ``ngf``, ``lr``, ``n_epochs``, ...:
    :class:`~gan_translate.models.translation.TranslationGAN`), with defaults changed here for a U-Net.

    Args:
        generator: generator name in the registry (``unet``, ``resnet``, ...).
        norm: ``batch``, ``instance`` or ``none``.
    """

    # What the model can do, and the attribute of the generator of each direction (export keeps those).
    capabilities = frozenset({"translate"})
    translators = {"AtoB": "generator"}
    trains_on_pairs = True  # L1 to the aligned target

    def __init__(self, generator: str = "unet", norm: str = "batch", **kwargs: Any) -> None:
        # The base classes take (and save, for the checkpoint) every option; re-declare one only to change its default.
        super().__init__(generator=generator, norm=norm, **kwargs)
        self.generator = self.make_generator(self.hparams.in_channels, self.hparams.out_channels)
        self.val_metrics = paired_metrics(prefix="val/")

    def configure_optimizers(self) -> Any:
        optimizer = self.adam(self.generator.parameters())
        return [optimizer], self.linear_decay([optimizer])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        optimizer = self.optimizers()
        real_a, real_b = batch["A"], batch["B"]
        fake_b = self.generator(real_a)
        losses = {"l1": l1(fake_b, real_b)}
        # The NaN check, zero_grad, backward and step (GANModule.backward_step): a NaN never reaches the weights.
        self.backward_step(optimizer, losses["l1"], losses)
        self.log_training_values({f"train/{k}": v for k, v in losses.items()}, real_a.shape[0], prog_bar=("train/l1",),
                                 optimizers={"g": optimizer.optimizer})
        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", {"real_a": real_a, "fake_b": fake_b, "real_b": real_b})

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        n = self.hparams.num_samples
        grid = make_grid([tensor_to_uint8(images[k][:n]) for k in ("real_a", "fake_b", "real_b")], by_column=True)
        self.log_image_grid(f"{stage}/samples", grid, "input | output | target")

    # --- validation / test: TranslationGAN runs these two on every batch and logs the metrics ---------------
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        fake_b = self.generator(batch["A"])
        self.val_metrics.update(to_unit_range(fake_b), to_unit_range(batch["B"]))
        if batch_idx == 0:
            self._val_grid_batch = {"real_a": batch["A"], "fake_b": fake_b, "real_b": batch["B"]}

    def evaluation_metrics(self) -> tuple[Any, ...]:
        return (self.val_metrics,)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.generator(batch["A"] if "A" in batch else batch["image"])
