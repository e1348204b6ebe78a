"""History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN's image pool)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Keeps up to ``size`` past fakes; each query returns, per image, either it or (p=0.5) an older one.

    Showing the discriminator older fakes stops it and the generator from chasing each other's latest
    move. The pool has its own random generator and a ``state_dict`` so a resumed run draws the same
    history as an uninterrupted one. Under DDP every process keeps its own pool.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[index].to(image.device).clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def __getstate__(self) -> dict[str, Any]:
        # A torch.Generator pickles its state as a temporary tensor, which torch.multiprocessing (``strategy:
        # ddp_spawn`` sends the model to its processes) shares by a file descriptor that is closed before the
        # child starts ("bad value(s) in fds_to_keep"): pickle the state as bytes.
        state = self.__dict__.copy()
        state["generator"] = self.generator.get_state().numpy().tobytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator_state = torch.frombuffer(bytearray(state.pop("generator")), dtype=torch.uint8)
        self.__dict__.update(state)
        self.generator = torch.Generator()
        self.generator.set_state(generator_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "images": [image.cpu() for image in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        self.size = int(state["size"])
        self.images = [image.to(device) if device is not None else image for image in state["images"]]
        self.generator.set_state(state["generator"])
