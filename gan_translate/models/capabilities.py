"""What a model can be asked to do outside training, and which command does it (for refusal messages).

Apart from the registry and :class:`~gan_translate.models.base.GANModule` so that both can use it: the model base
class names a model's use when it refuses a job, the registry lists the models that can do one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["CAPABILITY_USES", "Capability", "capability_use"]

#: ``translate`` images (``translators``), ``sample`` new ones, or ``stylize`` a content image with style images
#: (``stylize(content, styles, weights, alpha)``).
Capability = Literal["translate", "sample", "stylize"]

#: capability -> (what a model with it does, the command that does it): the hint when a file is used for the wrong job.
CAPABILITY_USES: dict[str, tuple[str, str]] = {
    "translate": ("translates images", "gan-translate translate"),
    "sample": ("generates images", "gan-translate generate"),
    "stylize": ("stylises images", "gan-translate stylize --method adain"),
}


def capability_use(capabilities: Iterable[str]) -> str:
    """``"generates images: use `gan-translate generate`"``: what a model with ``capabilities`` is for."""
    uses = [CAPABILITY_USES[c] for c in sorted(capabilities) if c in CAPABILITY_USES]
    return "; ".join(f"{does}: use `{command}`" for does, command in uses)
