"""VGG19 feature extractor for Gatys-style losses (style Gram matrices, content features).

* Architecture: torchvision's VGG19 convolutional part (``make_layers(cfgs["E"])``, the same layers as
  ``torchvision.models.vgg19().features``), so torchvision's ImageNet state dict loads as is.
* Layer names follow the paper and Caffe: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``; they
  are derived from the architecture (:func:`vgg19_layer_names`), never from a hand-written index table.
* Input: framework images, float NCHW RGB in **[-1, 1]**. The module maps them to [0, 1] and applies the
  ImageNet mean / std that torchvision's weights were trained with, so callers never normalise.
* ReLUs are not in place (the pre-activation of a requested layer must survive), the network is cut
  after the deepest requested layer, frozen (``requires_grad=False``) and kept in eval mode.
* ``pooling="avg"`` replaces max pooling with average pooling, as Gatys et al. (2016) suggest for synthesis.

Weights: ``"imagenet"`` (torchvision's ``VGG19_Weights.IMAGENET1K_V1``, read from the torch hub cache and
downloaded there when online), a path to a ``.pth`` state dict, or ``"random"`` (untrained, for tests and
smoke runs only; every output of a command that uses it says so).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RANDOM_WEIGHTS_NOTE",
    "VGG19Features",
    "VGGWeightsError",
    "expected_weights_path",
    "load_vgg19_state_dict",
    "vgg19_layer_names",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: What every output of a run with untrained features says.
RANDOM_WEIGHTS_NOTE = "VGG: random weights (untrained)"

# The random weights are seeded so that "random" runs are reproducible and comparable.
_RANDOM_SEED = 0


class VGGWeightsError(UserError):
    """The VGG19 weights are missing, unreadable or not a VGG19 state dict."""


def _vgg19_layers() -> nn.Sequential:
    """torchvision's VGG19 convolutional stack (without batch norm), on the meta device (no memory, no init).

    Callers materialise the part they keep with ``to_empty`` and then load or initialise it, so building an
    extractor never pays for initialising 20M parameters it would overwrite anyway.
    """
    from torchvision.models.vgg import cfgs, make_layers

    with torch.device("meta"):
        return make_layers(cfgs["E"], batch_norm=False)


def _layer_names(features: Iterable[nn.Module]) -> list[str]:
    """Paper names for each module of a VGG ``features`` stack: a block ends at each pooling layer."""
    names: list[str] = []
    block, conv = 1, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:  # pragma: no cover - torchvision's VGG has nothing else
            raise TypeError(f"unexpected layer in VGG features: {module}")
    return names


def vgg19_layer_names() -> list[str]:
    """All layer names of VGG19's convolutional part, in order (conv1_1, relu1_1, ..., relu5_4, pool5)."""
    return _layer_names(_vgg19_layers())


def expected_weights_path() -> Path:
    """Where torchvision keeps the ImageNet VGG19 weights: ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``."""
    from torchvision.models import VGG19_Weights

    filename = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _features_only(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Accept a full torchvision VGG19 state dict (``features.N.*``) or a features-only one (``N.*``)."""
    if isinstance(state.get("state_dict"), dict):  # a training checkpoint wrapping the weights
        state = state["state_dict"]
    if any(key.startswith("features.") for key in state):
        return {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    return dict(state)


def load_vgg19_state_dict(weights: str | os.PathLike[str] = "imagenet", progress: bool = True) -> dict[str, Tensor]:
    """The VGG19 ``features`` state dict (keys ``"0.weight"``, ...) for ``"imagenet"`` or a file path.

    ``"imagenet"`` goes through torchvision's weights API, which reads the torch hub cache and downloads
    into it when the file is missing. Failures raise :class:`VGGWeightsError` with one line naming the
    expected file and how to provide it.
    """
    if str(weights) == "imagenet":
        from torchvision.models import VGG19_Weights

        enum = VGG19_Weights.IMAGENET1K_V1
        path = expected_weights_path()
        cached = path.exists()
        try:
            state = enum.get_state_dict(progress=progress, check_hash=True, weights_only=True)
        except Exception as error:  # noqa: BLE001 - network, hash and unpickling errors all end here
            if cached:
                raise VGGWeightsError(
                    f"cannot read the cached VGG19 weights {path} (truncated or not a torch state dict: "
                    f"{_first_line(error)[:120]}); delete the file to download it again, or pass --vgg-weights PATH"
                ) from None
            raise VGGWeightsError(
                f"VGG19 ImageNet weights not found at {path} and the download failed ({_first_line(error)}); "
                f"put {enum.url} there (e.g. copied from a machine with internet) or pass --vgg-weights PATH "
                "to a torchvision VGG19 state dict"
            ) from None
        return _features_only(state)

    path = Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsError(
            f"VGG19 weights file not found: {path} (expected a torchvision VGG19 state dict, e.g. {expected_weights_path().name}; "
            "or use --vgg-weights imagenet / random)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user mistake
        raise VGGWeightsError(
            f"cannot read VGG19 weights {path} (truncated or not a torch state dict: {_first_line(error)[:120]})"
        ) from None
    if not isinstance(state, dict):
        raise VGGWeightsError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return _features_only(state)


def _layer_index(key: str) -> int:
    """``"12.weight"`` -> 12; keys of anything else sort after every layer (and are ignored)."""
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


def _init_random(features: nn.Sequential) -> None:
    """torchvision's VGG initialisation (Kaiming normal, fan-out), seeded so random runs repeat."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_SEED)
        for module in features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)


class VGG19Features(nn.Module):
    """Frozen VGG19 returning the activations of named layers: ``extractor(x) -> {"relu1_1": ..., ...}``.

    Args:
        layers: layer names to return (any of :func:`vgg19_layer_names`); the network stops after the
            deepest one.
        weights: ``"imagenet"``, ``"random"`` (untrained) or a path to a VGG19 state dict (full
            torchvision state dict or its ``features`` part).
        pooling: ``"max"`` (torchvision) or ``"avg"`` (the paper's suggestion for image synthesis).
        progress: show torchvision's download progress bar.

    Inputs are float NCHW RGB images in [-1, 1]; ImageNet normalisation happens inside.
    """

    def __init__(
        self,
        layers: Sequence[str],
        weights: str | os.PathLike[str] = "imagenet",
        pooling: str = "avg",
        progress: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UserError(f"VGG pooling must be 'max' or 'avg', got {pooling!r}")
        full = _vgg19_layers()
        names = _layer_names(full)
        layers = list(dict.fromkeys(layers))  # de-duplicated, order kept
        if not layers:
            raise UserError("VGG19Features needs at least one layer name")
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise UserError(f"unknown VGG19 layer(s) {', '.join(unknown)}; valid: {', '.join(names)}")
        depth = max(names.index(name) for name in layers) + 1

        name = str(weights)
        self.weights_source = name if name in ("random", "imagenet") else str(Path(weights).expanduser())
        self.pretrained = self.weights_source != "random"
        if self.pretrained:
            state = load_vgg19_state_dict(weights, progress=progress)
            kept = {key: value for key, value in state.items() if _layer_index(key) < depth}
            expected = {key for key in full.state_dict() if _layer_index(key) < depth}
            missing = sorted(expected - set(kept), key=lambda k: (_layer_index(k), k))
            if missing:
                raise VGGWeightsError(f"{self.weights_source} is not a VGG19 state dict (missing {', '.join(missing[:3])})")
        kept_layers = full[:depth].to_empty(device="cpu")
        if self.pretrained:
            try:
                kept_layers.load_state_dict(kept)
            except RuntimeError as error:
                raise VGGWeightsError(f"{self.weights_source} does not fit VGG19: {_first_line(error)}") from None
        else:
            _init_random(kept_layers)

        modules: list[nn.Module] = []
        for module in kept_layers:
            if isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)  # in-place would overwrite the conv output of a returned layer
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules.append(module)
        self.features = nn.Sequential(*modules)
        self.layer_names: list[str] = names[:depth]
        self.layers: list[str] = layers
        self.pooling = pooling
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def description(self) -> str:
        """One line for logs, tables and captions: which weights the features come from."""
        if not self.pretrained:
            return RANDOM_WEIGHTS_NOTE
        source = "ImageNet weights" if self.weights_source == "imagenet" else f"weights from {self.weights_source}"
        return f"VGG19: {source}, {self.pooling} pooling"

    def channels(self, layer: str) -> int:
        """How many channels ``layer``'s activation has (64 in block 1 up to 512 in blocks 4 and 5)."""
        if layer not in self.layer_names:
            raise UserError(f"{layer} is not computed by this extractor (its layers end at {self.layer_names[-1]})")
        convs = [m for m, name in zip(self.features, self.layer_names[: self.layer_names.index(layer) + 1]) if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels if convs else 3

    def train(self, mode: bool = True) -> VGG19Features:
        # Always eval: nothing here behaves differently in training, and the contract is "frozen".
        return super().train(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """NCHW RGB in [-1, 1] -> ``{layer name: activation}`` for the requested layers."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG19Features expects NCHW RGB images, got shape {tuple(images.shape)}")
        x = ((images + 1.0) / 2.0 - self.mean) / self.std
        wanted = set(self.layers)
        out: dict[str, Tensor] = {}
        for name, module in zip(self.layer_names, self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out
