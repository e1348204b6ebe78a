"""DDP set-up that every GAN module needs, whatever Trainer it runs in."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_info

from gan_translate.core.lightning_compat import ddp_kwargs

__all__ = ["enable_find_unused_parameters"]


def enable_find_unused_parameters(trainer: pl.Trainer | None) -> bool:
    """Make a DDP strategy find unused parameters unless the user chose otherwise; returns whether it did.

    Every GAN step here leaves one network without gradients (the discriminator's step never reaches the
    generator; the generator's step freezes the discriminator), which plain DDP refuses ("Expected to have
    finished reduction in the prior iteration..."). So ``strategy: ddp`` and ``strategy: auto`` with several
    devices behave as ``ddp_find_unused_parameters_true``. An explicit ``find_unused_parameters=False``
    (``ddp_find_unused_parameters_false``) is left alone. Must run before the strategy wraps the model
    (``LightningModule.configure_model``).
    """
    if trainer is None or not isinstance(trainer.strategy, DDPStrategy):
        return False
    kwargs = ddp_kwargs(trainer.strategy)
    if kwargs is None or "find_unused_parameters" in kwargs:
        return False
    kwargs["find_unused_parameters"] = True
    rank_zero_info("GAN manual optimisation under DDP: find_unused_parameters=True")
    return True
