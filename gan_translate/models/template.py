"""A whole model in one file, to copy when adding one (the classic CycleGAN repository's ``template_model.py``).

``TemplateModel`` learns a paired translation with a generator and an L1 loss only: the smallest model that has
everything the framework expects of one. To add a model:

1. copy this file to ``models/<name>.py``, rename the class and the ``@register_model`` name, and write its
   networks (from ``gan_translate.nn``), losses, ``training_step`` and ``configure_optimizers``;
2. import the class in ``models/__init__.py`` (configs name it ``gan_translate.models.<Class>``);
3. add ``configs/<name>/quickstart.yaml`` and a test; ``tests/test_model_contract.py`` already runs the shared
   contract (build tiny, train a step, save, reload by name, translate or sample, export) on every registered
   model, and on a renamed copy of this file.

The template itself is not imported by ``models/__init__.py``, so it is not offered to users.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_translate.core.images import to_unit_range
from gan_translate.losses import l1
from gan_translate.metrics import paired_metrics
from gan_translate.models.base import image_grid
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
        self.check_finite(losses)  # before the step: a NaN never reaches the weights
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(losses["l1"])
        optimizer.step()
        self.log_training_values({f"train/{k}": v for k, v in losses.items()}, real_a.shape[0], prog_bar=("train/l1",),
                                 optimizers={"g": optimizer.optimizer})
        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", {"real_a": real_a, "fake_b": fake_b, "real_b": real_b})

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        grid = image_grid([images["real_a"], images["fake_b"], images["real_b"]], self.hparams.num_samples)
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
