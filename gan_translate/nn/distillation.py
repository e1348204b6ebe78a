"""Feature distillation between two generators (GAN Compression, Li et al. 2020): which of their activations are
compared, how a student's are mapped onto a teacher's, and the loss between them.

A generator of the families here declares its stages (``distillation_stages()``: a ResNet's trunk input and residual
blocks; a U-Net's decoder levels). The student and the teacher are compared at ``points`` stages chosen at the same
relative places in both (:func:`stage_points`: the ResNet-9's trunk input and blocks 3, 6 and 9, GAN Compression's
choice, for 4 points), and a learned 1x1 convolution per point maps the student's channels onto the teacher's
(:class:`FeatureAdapters`). Activations are read by forward hooks (:func:`captured_outputs`), so neither network needs
another forward method, and the teacher runs exactly as it does in ``translate``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = ["FeatureAdapters", "captured_outputs", "distillation_stages", "stage_points", "stage_shapes"]


def distillation_stages(network: nn.Module) -> list[nn.Module]:
    """The network's declared stages (``network.distillation_stages()``), or ``[]`` for a network that declares none
    (then no feature distillation: the output alone is distilled)."""
    declared = getattr(network, "distillation_stages", None)
    return list(declared()) if callable(declared) else []


def stage_points(n_stages: int, points: int) -> list[int]:
    """``points`` indices spread evenly over ``n_stages`` stages, first and last included, without repeats
    (10 stages, 4 points -> 0, 3, 6, 9; 4 stages, 4 points -> 0, 1, 2, 3)."""
    if n_stages <= 0 or points <= 0:
        return []
    points = min(points, n_stages)
    if points == 1:
        return [n_stages - 1]
    return [round(i * (n_stages - 1) / (points - 1)) for i in range(points)]


@contextmanager
def captured_outputs(modules: Sequence[nn.Module]) -> Iterator[list[Tensor]]:
    """Inside the block, the output of each of ``modules`` is appended to the yielded list as it is computed (the
    hooks are removed on exit: nothing stays attached to the network, so it pickles, exports and compiles as before)."""
    outputs: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        outputs.append(output)

    handles = [module.register_forward_hook(keep) for module in modules]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def stage_shapes(network: nn.Module, stages: Sequence[nn.Module], input_size: Sequence[int]) -> list[torch.Size]:
    """The shapes of ``stages``' outputs (modules of ``network``) for an input of ``input_size``, from a pass of a copy
    of the network on the ``meta`` device: shapes only, no arithmetic, no memory (a ResNet-9 at 256 px: milliseconds)."""
    positions = {id(module): index for index, module in enumerate(network.modules())}
    wanted = [positions[id(stage)] for stage in stages]
    meta = copy.deepcopy(network).to("meta")
    meta_modules = list(meta.modules())
    with torch.no_grad(), captured_outputs([meta_modules[i] for i in wanted]) as outputs:
        meta(torch.zeros(tuple(input_size), device="meta"))
    if len(outputs) != len(wanted):
        raise UserError(f"{type(network).__name__}'s distillation stages ran {len(outputs)} times for {len(wanted)} "
                        "stages: a stage module is used more than once per pass")
    return [output.shape for output in outputs]


class FeatureAdapters(nn.Module):
    """One 1x1 convolution per distillation point, from the student's channels to the teacher's; the loss is the
    mean over points of the mean squared error between the mapped student activation and the teacher's.

    The adapters are trained with the student and used only in training: ``translate`` and exports run the student
    alone."""

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int]) -> None:
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise UserError(f"feature distillation maps {len(student_channels)} student stages onto "
                            f"{len(teacher_channels)} teacher stages: they must be as many")
        self.maps = nn.ModuleList(nn.Conv2d(int(s), int(t), 1) for s, t in zip(student_channels, teacher_channels))

    def __len__(self) -> int:
        return len(self.maps)

    def forward(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
        terms = [F.mse_loss(adapter(s), t.to(s.dtype)) for adapter, s, t in zip(self.maps, student, teacher)]
        return torch.stack(terms).mean()
