"""The discretised Schrödinger bridge of UNSB (Kim et al., ICLR 2024): its time grid, one stochastic step, and the
multi-step translator that runs a trained time-conditioned generator from a source image to the target domain.

The bridge from domain A to B is cut into ``T`` steps on a fixed grid ``t_0 = 0 < t_1 < ... < t_T = 1``. At step
``j`` the generator predicts the endpoint ``x_1`` from the state ``x_{t_j}``; the next state is a Brownian bridge
sample between the state and that prediction:

    x_{t_{j+1}} = (1 - r) x_{t_j} + r x̂_1 + sqrt(tau * d * (1 - r)) * eps,   d = t_{j+1} - t_j,  r = d / (1 - t_j)

with ``tau`` the entropy weight and ``eps`` standard normal noise. The prediction made at the last step used is the
output. Pure tensors and ``nn.Module``: the LightningModule (``models/unsb.py``), inference and export share them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = ["BridgeProgram", "BridgeTranslator", "bridge_noise", "bridge_step", "bridge_time_grid"]


def bridge_time_grid(num_timesteps: int) -> Tensor:
    """The ``num_timesteps + 1`` times ``t_0 .. t_T`` of UNSB's grid: 0, then 1/2, then harmonic increments
    (1, 1/2, 1/3, ... normalised) squeezed into [1/2, 1], so the early steps are long and the late ones short.

    For T = 5: 0, 0.5, 0.74, 0.86, 0.94, 1 (float64, exact; callers cast)."""
    if num_timesteps < 1:
        raise UserError(f"the bridge needs at least one step, got num_timesteps={num_timesteps}")
    increments = torch.tensor([0.0] + [1.0 / (i + 1) for i in range(num_timesteps - 1)], dtype=torch.float64)
    times = torch.cumsum(increments, 0)
    times = times / times[-1] if num_timesteps > 1 else torch.ones(1, dtype=torch.float64)
    times = 0.5 * times[-1] + 0.5 * times
    return torch.cat([torch.zeros(1, dtype=torch.float64), times])


def bridge_step(state: Tensor, endpoint: Tensor, times: Tensor, step: int, tau: float, noise: Tensor) -> Tensor:
    """The state at ``times[step]`` from the state at ``times[step - 1]`` and the endpoint predicted there
    (``step >= 1``): the Brownian-bridge interpolation of the module docstring, ``noise`` ~ N(0, 1) of ``state``'s
    shape."""
    ratio, scale = _step_coefficients(times, step, tau)
    return (1.0 - ratio) * state + ratio * endpoint + scale * noise


def _step_coefficients(times: Tensor, step: int, tau: float) -> tuple[float, float]:
    """``r`` and the noise's standard deviation of :func:`bridge_step` at ``step``, as Python floats (so that a
    traced program holds them as constants, not as reads of the time grid)."""
    if not 1 <= step < len(times) - 1:
        raise ValueError(f"bridge_step needs 1 <= step < {len(times) - 1}, got {step}")
    delta = float(times[step] - times[step - 1])
    remaining = float(times[-1] - times[step - 1])
    ratio = delta / remaining
    variance = delta * (1.0 - ratio) * tau
    return ratio, variance**0.5


class BridgeTranslator(nn.Module):
    """A trained UNSB generator run along the bridge: ``steps`` generator passes (the NFE) from ``x_0`` = the input.

    ``generator(x, step, z)`` is a time-conditioned generator with ``latent_dim``; ``steps`` <= the number it was
    trained with (fewer trade quality for speed: the prediction after ``steps`` passes is the output). ``seed``
    fixes the bridge noise and latents: each image of a batch gets the same noise field as it would alone, so a
    result does not depend on what it was batched with, and the same seed reproduces it. ``seed=None`` draws fresh
    randomness from torch's global generator at every call.
    """

    def __init__(self, generator: nn.Module, num_timesteps: int, tau: float, steps: int | None = None,
                 seed: int | None = 0) -> None:
        super().__init__()
        steps = num_timesteps if steps is None else int(steps)
        if not 1 <= steps <= num_timesteps:
            raise UserError(f"steps must be between 1 and the {num_timesteps} steps the model was trained with (translate --steps), got {steps}")
        self.generator = generator
        self.tau = float(tau)
        self.steps = steps
        self.seed = seed
        self.register_buffer("times", bridge_time_grid(num_timesteps).float(), persistent=False)
        self.size_multiple: int = int(getattr(generator, "size_multiple", 1))
        self.min_size: int = int(getattr(generator, "min_size", 1))

    def _randn(self, shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
        if generator is None:
            return torch.randn(shape, device=like.device, dtype=like.dtype)
        one = torch.randn((1, *shape[1:]), generator=generator, dtype=torch.float32)  # on the CPU: device-independent
        return one.to(device=like.device, dtype=like.dtype).expand(shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.trajectory(x)[-1]

    def trajectory(self, x: Tensor) -> list[Tensor]:
        """``x`` (the state at t_0), the states at ``t_1 .. t_{steps-1}``, and the output (the last prediction)."""
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        latent_dim = int(self.generator.latent_dim)
        batch = x.shape[0]
        state, endpoint = x, x
        path = [x]
        for step in range(self.steps):
            if step > 0:
                state = bridge_step(state, endpoint, self.times, step, self.tau, self._randn(tuple(x.shape), x, generator))
                path.append(state)
            index = torch.full((batch,), step, dtype=torch.long, device=x.device)
            endpoint = self.generator(state, index, self._randn((batch, latent_dim), x, generator))
        return [*path, endpoint]


def bridge_noise(steps: int, channels: int, height: int, width: int, latent_dim: int,
                 seed: int = 0) -> tuple[Tensor, Tensor]:
    """The latents ``(steps, 1, latent_dim)`` and bridge noise ``(steps - 1, 1, channels, height, width)`` that
    :class:`BridgeTranslator` with ``seed`` draws for one image of ``height x width`` (the size the network runs at:
    ``translate`` pads to the size multiple first), in its order (latent of step 0, then noise and latent of each
    later step), float32 on the CPU: :class:`BridgeProgram` (the exports) given these gives the translator's result."""
    generator = torch.Generator().manual_seed(seed)
    latents, noise = [], []
    for step in range(steps):
        if step > 0:
            noise.append(torch.randn((1, channels, height, width), generator=generator, dtype=torch.float32))
        latents.append(torch.randn((1, latent_dim), generator=generator, dtype=torch.float32))
    empty = torch.zeros(0, 1, channels, height, width)
    return torch.stack(latents), torch.stack(noise) if noise else empty


class BridgeProgram(nn.Module):
    """:class:`BridgeTranslator` with its randomness as inputs: what the ONNX / TorchScript exports run.

    ``forward(image, latents, noise)``: ``image`` (N, C, H, W) with sides multiples of ``size_multiple``; ``latents``
    (``num_timesteps``, 1, latent_dim), step ``j``'s latent; ``noise`` (``num_timesteps - 1``, 1, C, H, W), the noise of
    the step into state ``j + 1`` (None, and no input of the exports, when ``num_timesteps`` is 1). Both are shared by
    every image of the batch, as the seeded translator gives each image the noise it would draw alone. All
    ``num_timesteps`` steps run (the loop unrolls in a trace: the NFE is fixed in the file). Its generator is the
    model's own (no copy): the exports copy or trace it without gradients.
    """

    def __init__(self, generator: nn.Module, num_timesteps: int, tau: float) -> None:
        super().__init__()
        self.generator = generator
        self.steps = int(num_timesteps)
        self.tau = float(tau)
        times = bridge_time_grid(num_timesteps).float()  # float32, as BridgeTranslator's: the same coefficients
        # Floats, not a buffer: torch.export cannot trace a read of a tensor into a Python number.
        self.coefficients = [_step_coefficients(times, step, self.tau) for step in range(1, self.steps)]
        self.latent_dim: int = int(generator.latent_dim)
        self.size_multiple: int = int(getattr(generator, "size_multiple", 1))
        self.min_size: int = int(getattr(generator, "min_size", 1))

    def forward(self, image: Tensor, latents: Tensor, noise: Tensor | None = None) -> Tensor:
        if self.steps > 1 and noise is None:
            raise ValueError(f"a {self.steps}-step bridge needs its noise input ({self.steps - 1}, 1, C, H, W)")
        batch = image.shape[0]
        state, endpoint = image, image
        for step in range(self.steps):
            if step > 0:
                assert noise is not None
                ratio, scale = self.coefficients[step - 1]  # bridge_step's, noise broadcast over the batch
                state = (1.0 - ratio) * state + ratio * endpoint + scale * noise[step - 1]
            index = torch.full((1,), step, dtype=torch.long, device=image.device)  # one step for the batch
            endpoint = self.generator(state, index, latents[step].expand(batch, self.latent_dim))
        return endpoint
