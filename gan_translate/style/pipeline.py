"""Gatys style transfer on image arrays: uint8 files in, uint8 results at the content's own size out.

:class:`Stylizer` is what the ``stylize`` and ``compare`` commands (and notebooks) use: it owns the VGG
extractor and the :class:`~gan_translate.style.gatys.GatysConfig`, picks the working size of each image
(long side ``size``, never upscaled), runs :func:`~gan_translate.style.gatys.stylize`, and resizes the
result back to the content's original height and width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.images import tensor_to_uint8, uint8_to_tensor
from gan_translate.style.gatys import (
    MIN_SIDE,
    GatysConfig,
    StylizeProgress,
    StylizeResult,
    build_extractor,
    resize_to,
    stylize,
    transfer_luminance,
)

__all__ = ["Stylizer", "build_stylizer", "working_sizes"]


def working_sizes(height: int, width: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """The long sides to optimise an image of ``height x width`` at: each of ``sizes``, capped at the image's
    own long side (small images are not upscaled), duplicates dropped, order kept."""
    long_side = max(height, width, MIN_SIDE)
    return tuple(dict.fromkeys(min(int(s), long_side) for s in sizes))


@dataclass
class Stylizer:
    """Stylise uint8 RGB images with one style image.

    Args:
        extractor: a :class:`~gan_translate.nn.vgg.VGG19Features` (its device is where the work runs).
        config: Gatys settings; its ``sizes`` are replaced per image by :func:`working_sizes` of ``sizes``.
        sizes: long sides, coarse to fine (``(512,)`` for one scale).
    """

    extractor: torch.nn.Module
    config: GatysConfig
    sizes: tuple[int, ...] = (512,)

    def __post_init__(self) -> None:
        if not self.sizes or any(int(s) < MIN_SIDE for s in self.sizes):
            raise UserError(f"sizes must be at least {MIN_SIDE} px, got {self.sizes}")
        self.sizes = tuple(int(s) for s in self.sizes)

    @property
    def description(self) -> str:
        """One line naming the features, optimiser and sizes (for captions and tables)."""
        c = self.config
        scales = "→".join(str(s) for s in self.sizes)
        return (
            f"{getattr(self.extractor, 'description', 'VGG19')}; {c.optimizer} {c.steps} steps/scale at {scales} px; "
            f"style/content/tv weights {c.style_weight:g}/{c.content_weight:g}/{c.tv_weight:g}; init {c.init}"
            + ("; colour preserved" if c.preserve_color else "")
        )

    def vgg_facts(self) -> dict[str, Any]:
        """The VGG facts every table / JSON of a run carries (which weights; untrained ones are named so)."""
        extractor = self.extractor
        return {
            "vgg_weights": "random (untrained)" if not extractor.pretrained else extractor.weights_source,
            "vgg_pretrained": bool(extractor.pretrained),
            "vgg": extractor.description,
        }

    def settings(self) -> dict[str, Any]:
        """Every Gatys setting, as plain values (for JSON and W&B configs)."""
        config = asdict(self.config)
        config["sizes"] = list(self.sizes)
        config["lr"] = self.config.learning_rate
        config["pooling"] = getattr(self.extractor, "pooling", None)
        return {"gatys": config}

    def iterations_for(self, height: int, width: int) -> int:
        """How many optimiser iterations one image of this size takes (for progress bars)."""
        return self.config.steps * len(working_sizes(height, width, self.sizes))

    def stylize_batch(
        self,
        contents: Sequence[np.ndarray],
        style: np.ndarray,
        callback: Callable[[StylizeProgress], None] | None = None,
    ) -> tuple[list[np.ndarray], StylizeResult]:
        """Stylise images of one size together; returns uint8 results at that size and the raw result."""
        if not contents:
            raise ValueError("stylize_batch needs at least one image")
        shapes = {np.asarray(c).shape[:2] for c in contents}
        if len(shapes) != 1:
            raise ValueError(f"stylize_batch needs images of one size, got {sorted(shapes)}")
        (height, width), = shapes
        content = torch.stack([uint8_to_tensor(np.asarray(c)[..., :3]) for c in contents])
        style_tensor = uint8_to_tensor(np.asarray(style)[..., :3]).unsqueeze(0)
        config = replace(self.config, sizes=working_sizes(height, width, self.sizes))
        result = stylize(content, style_tensor, self.extractor, config, callback=callback)
        images = self._restore(result.image, content, (height, width))
        return [tensor_to_uint8(image) for image in images], result

    def __call__(self, content: np.ndarray, style: np.ndarray) -> np.ndarray:
        """Stylise one uint8 HxWx3 image; returns uint8 HxWx3 of the same size."""
        return self.stylize_batch([content], style)[0][0]

    def _restore(self, image: Tensor, content: Tensor, size: tuple[int, int]) -> Tensor:
        """Back to the content's original size; colour preservation redone there with the full-size chroma."""
        image = resize_to(image.float(), size)
        if self.config.preserve_color:
            image = transfer_luminance(image, content.to(image))
        return image


def build_stylizer(
    config: GatysConfig, sizes: Sequence[int], weights: str = "imagenet", pooling: str = "avg",
    device: str | torch.device = "cpu",
) -> Stylizer:
    """A Stylizer with the VGG19 extractor ``config``'s layers need (``weights``: imagenet, random or a .pth file)."""
    extractor = build_extractor(config, weights=weights, pooling=pooling, device=device)
    return Stylizer(extractor=extractor, config=config, sizes=tuple(sizes))
