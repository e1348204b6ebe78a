"""Lightning warns about every module in eval mode when training starts ("Found N module(s) in eval mode"); a model
that freezes a network on purpose (StyleGAN2's EMA generator, AdaIN's VGG encoder) gets that warning on every run.
This check says the same only about modules that look accidental: in eval mode, yet holding trainable parameters
(or no parameters at all: a Dropout left in eval mode), and names them."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

__all__ = ["EvalModeCheck", "LIGHTNING_EVAL_MODE_WARNING", "unexpected_eval_modules"]

#: The start of Lightning's own warning, which ``gan-translate fit`` replaces with this check.
LIGHTNING_EVAL_MODE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"


def _frozen(module: nn.Module) -> bool:
    """A deliberately frozen network: it has parameters, and none of them is trained."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def unexpected_eval_modules(model: nn.Module) -> list[str]:
    """The outermost modules in eval mode that are not frozen networks (nor inside one)."""
    found: list[str] = []
    skipped: list[str] = []
    for name, module in model.named_modules():
        if module.training or any(name.startswith(f"{outer}.") for outer in (*skipped, *found)):
            continue
        (skipped if _frozen(module) else found).append(name)
    return found


class EvalModeCheck(Callback):
    """At the start of training, one warning naming the modules in eval mode that are not frozen networks."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        names = unexpected_eval_modules(pl_module)
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            rank_zero_warn(
                f"{len(names)} module(s) in eval mode at the start of training hold trainable parameters or none: "
                f"{shown}; call .train() on them, or freeze them (requires_grad_(False)) if that is intended"
            )
