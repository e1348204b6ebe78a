"""Image-quality metrics shared by training and ``gan-translate evaluate`` (torchmetrics: they sync across DDP).

Paired metrics (L1, PSNR, SSIM) compare a translation with its ground truth. Inputs are framework images
in [-1, 1] mapped to [0, 1] first (:func:`to_unit_range`), so L1 is the mean absolute pixel error on a 0..1
scale and PSNR uses a data range of 1.

Distribution metrics (FID, KID) compare a set of generated images with a set of real ones through the
features of a *feature network*. Scores computed with different networks are not comparable, so the
network's name travels with every score (:attr:`FidKid.feature_name`). Built in:

* ``inception``: torchmetrics' / torch-fidelity's InceptionV3 with the standard FID weights (``inception-v3-2048``),
  the network published FIDs use. Needs torch-fidelity and a one-time download of the weights.
* ``random-conv``: a small convolutional net with fixed random weights (``random-conv-v1-352``). Offline and
  deterministic; good for tests, CI and training curves, **not** comparable with any published FID.
* ``package.module:Name``: any ``nn.Module`` (or a zero-argument factory returning one) by import path.

Feature-network contract: ``forward(images)`` takes a ``uint8`` tensor ``(N, 3, S, S)`` with values 0..255
(S = ``image_size``) and returns a float tensor ``(N, d)``. Optional attributes: ``num_features: int`` (else
found with one dummy forward) and ``feature_name: str`` (else the import path is the recorded name).

Reproducibility (the image policy): every image fed to FID/KID is quantised to uint8 (as it would be saved),
given 3 channels (gray repeated, alpha dropped), its shorter side resized to ``image_size`` (bicubic with
antialiasing, on the uint8 values, rounded back to uint8) and centre-cropped to ``image_size`` square. KID's
random subsets come from a seeded generator over the features in a canonical order, so the same images give
the same numbers however they were batched or split across processes.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd
from torchmetrics.utilities.data import dim_zero_cat

from gan_translate.core.errors import UserError
from gan_translate.core.images import images_to_uint8, match_channels

__all__ = [
    "ALL_METRICS",
    "CountingFID",
    "DISTRIBUTION_METRICS",
    "FEATURE_NETWORKS",
    "PAIRED_METRICS",
    "FeatureNetwork",
    "FidKid",
    "RandomConvFeatures",
    "SeededKID",
    "build_feature_network",
    "paired_metrics",
    "parse_metrics",
    "resize_for_features",
    "resize_to",
]

PAIRED_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim")
DISTRIBUTION_METRICS: tuple[str, ...] = ("fid", "kid")
ALL_METRICS: tuple[str, ...] = (*DISTRIBUTION_METRICS, *PAIRED_METRICS)
FEATURE_NETWORKS: tuple[str, ...] = ("inception", "random-conv")

#: Recorded as the policy of distribution-metric inputs (docs/evaluation.md repeats it).
IMAGE_POLICY = (
    "uint8 RGB; shorter side resized to {size} px (bicubic, antialias), centre crop {size}x{size}"
)
PAIRED_POLICY = "at the ground truth's size; a prediction of another size is resized to it (bicubic, antialias)"


# --- paired metrics ----------------------------------------------------------------------------------
def paired_metrics(prefix: str = "", postfix: str = "") -> MetricCollection:
    """L1, PSNR and SSIM as one collection: ``update(prediction01, target01)`` then ``compute()``."""
    return MetricCollection(
        {
            "l1": MeanAbsoluteError(),
            # Per-image PSNR averaged over images, as papers report it (not PSNR of the pooled error).
            "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean"),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
        postfix=postfix,
    )


def parse_metrics(spec: str | Sequence[str]) -> list[str]:
    """``"fid,kid,psnr"`` -> ``["fid", "kid", "psnr"]`` (in canonical order); unknown names list the valid ones."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise UserError(f"unknown metric {', '.join(map(repr, unknown))}; valid metrics: {', '.join(ALL_METRICS)}")
    if not names:
        raise UserError(f"no metric named; valid metrics: {', '.join(ALL_METRICS)}")
    return [n for n in ALL_METRICS if n in names]


# --- the image policy ----------------------------------------------------------------------------------
def _three_channels(images: Tensor) -> Tensor:
    try:
        return match_channels(images, 3)
    except UserError:
        raise UserError(f"FID/KID need 1-, 3- or 4-channel images, got {images.shape[1]} channels") from None


def _resize_uint8(images: Tensor, size: tuple[int, int]) -> Tensor:
    resized = F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return resized.round().clamp(0, 255).to(torch.uint8)


def resize_for_features(images: Tensor, size: int) -> Tensor:
    """uint8 NCHW (any size) -> uint8 ``(N, 3, size, size)``: shorter side to ``size``, centre crop (the policy)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"resize_for_features expects uint8 images, got {images.dtype}")
    images = _three_channels(images)
    height, width = images.shape[-2:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
        if (new_h, new_w) != (height, width):
            images = _resize_uint8(images, (new_h, new_w))
        top, left = (new_h - size) // 2, (new_w - size) // 2
        images = images[..., top : top + size, left : left + size]
    return images.contiguous()


def resize_to(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a uint8 or float NCHW batch to ``(height, width)`` (bicubic, antialias); no-op when equal."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if images.dtype == torch.uint8:
        return _resize_uint8(images, size)
    return F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False, antialias=True)


# --- feature networks --------------------------------------------------------------------------------------
class RandomConvFeatures(nn.Module):
    """A fixed-seed *random* conv net with global mean/std pooling: an offline stand-in, NOT Inception.

    Four stride-2 3x3 convolutions (3 -> 16 -> 32 -> 64 -> 64) with ReLU, He-normal weights drawn from a
    private generator seeded with ``seed`` (identical weights everywhere; the global RNG is never touched),
    zero biases. The features are the per-channel mean and standard deviation of every layer (352 numbers),
    so they respond to colour, fine texture / sharpness / noise and coarse structure. Scores computed with
    it are only comparable with scores computed with it (its name says so: ``random-conv-v1-352``).
    """

    version = 1
    widths = (3, 16, 32, 64, 64)

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        for c_in, c_out in zip(self.widths[:-1], self.widths[1:]):
            conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / (c_in * 9)))
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False)
        self.num_features = 2 * sum(self.widths[1:])
        self.feature_name = f"random-conv-v{self.version}-{self.num_features}" + (f"-seed{seed}" if seed else "")

    def train(self, mode: bool = True) -> RandomConvFeatures:
        return super().train(False)  # nothing behaves differently in training: eval forever, like torchmetrics' Inception

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 127.5 - 1.0
        pooled = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            flat = x.flatten(2)
            pooled += [flat.mean(dim=2), flat.std(dim=2, unbiased=False)]
        return torch.cat(pooled, dim=1)


@dataclass
class FeatureNetwork:
    """A feature network for FID/KID and the name every score computed with it must carry."""

    module: nn.Module
    name: str
    num_features: int


_INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


def _torch_fidelity_available() -> bool:
    return importlib.util.find_spec("torch_fidelity") is not None


def _load_inception() -> nn.Module:
    """torchmetrics' InceptionV3 (torch-fidelity's FID weights), or one UserError saying what is missing."""
    alternative = (
        "or use --feature random-conv (offline; its scores are not comparable with published FIDs) "
        "or --feature package.module:Class (your own nn.Module)"
    )
    if not _torch_fidelity_available():
        raise UserError(
            f"--feature inception needs the torch-fidelity package (pip install torch-fidelity, or "
            f"pip install 'torchmetrics[image]'), {alternative}"
        )
    import torchmetrics.image.fid as tm_fid

    cache = f"{torch.hub.get_dir()}/checkpoints/{_INCEPTION_WEIGHTS}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network = tm_fid.NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    except (OSError, RuntimeError, ValueError) as error:  # URLError/HTTPError are OSErrors; RuntimeError: corrupt file
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise UserError(
            f"--feature inception: the InceptionV3 FID weights are missing and could not be downloaded "
            f"({type(error).__name__}: {reason}); torch-fidelity caches them as {cache} (TORCH_HOME moves "
            f"the cache): copy the file there from a machine with internet, {alternative}"
        ) from None
    return network


def _import_feature_module(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--feature {spec!r}: expected inception, random-conv or package.module:ClassOrFactory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"--feature {spec!r}: cannot import {module_name} ({error})") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"--feature {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, nn.Module):
        if not callable(obj):
            raise UserError(f"--feature {spec!r}: {attr} is neither an nn.Module nor a class/factory")
        obj = obj()
    if not isinstance(obj, nn.Module):
        raise UserError(f"--feature {spec!r}: {attr}() returned a {type(obj).__name__}, not an nn.Module")
    return obj


def build_feature_network(feature: str | nn.Module, image_size: int = 299) -> FeatureNetwork:
    """Resolve ``inception`` / ``random-conv`` / ``package.module:Name`` (or a module) into a checked network."""
    if isinstance(feature, nn.Module):
        module, name = feature, str(getattr(feature, "feature_name", "") or type(feature).__qualname__)
    elif feature == "inception":
        module, name = _load_inception(), "inception-v3-2048"
    elif feature == "random-conv":
        module = RandomConvFeatures()
        name = module.feature_name
    elif ":" in str(feature):
        module = _import_feature_module(str(feature))
        name = str(getattr(module, "feature_name", "") or feature)
    else:
        raise UserError(
            f"unknown feature network {feature!r}; valid: {', '.join(FEATURE_NETWORKS)} or package.module:ClassOrFactory"
        )
    module.eval().requires_grad_(False)
    declared = getattr(module, "num_features", None)
    if isinstance(declared, Tensor):
        declared = int(declared.item())
    if isinstance(declared, int) and declared > 0:
        num_features = declared
    else:
        # No declared width: one dummy forward at the policy's size tells (as torchmetrics itself does).
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        with torch.no_grad():
            out = module(torch.zeros(2, 3, image_size, image_size, dtype=torch.uint8, device=device))
        if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != 2:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise UserError(f"feature network {name!r} must return (N, d) features for (N, 3, H, W) uint8 images, got {shape}")
        num_features = int(out.shape[1])
    return FeatureNetwork(module=module, name=name, num_features=num_features)


# --- FID and KID ----------------------------------------------------------------------------------------------
class _Precomputed(nn.Module):
    """Identity "feature extractor": FID and KID receive features computed once by :class:`FidKid`."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _canonical_order(features: Tensor) -> Tensor:
    """Rows sorted by a fixed projection: KID's subsets then do not depend on batching or process order."""
    if features.shape[0] < 2:
        return features
    direction = torch.randn(features.shape[1], generator=torch.Generator().manual_seed(1234), dtype=torch.float64)
    keys = features.double() @ direction.to(features.device)
    return features[torch.argsort(keys, stable=True)]


class CountingFID(FrechetInceptionDistance):
    """torchmetrics' FID on precomputed features that remembers how many images the synced sets held."""

    def __init__(self, num_features: int) -> None:
        super().__init__(feature=_Precomputed(num_features))
        self.orig_dtype = torch.float64  # set by update; a DDP process that saw no images needs it too
        self.used_counts = (0, 0)

    def compute(self) -> Tensor:
        # Runs on the synced states (torchmetrics restores each process's own states afterwards).
        self.used_counts = (int(self.real_features_num_samples), int(self.fake_features_num_samples))
        if min(self.used_counts) < 2:
            raise UserError(
                f"FID needs at least 2 real and 2 generated images (got {self.used_counts[0]} and {self.used_counts[1]})"
            )
        return super().compute()


class SeededKID(KernelInceptionDistance):
    """torchmetrics' KID with a subset size clamped to the images available and seeded subsets.

    ``subset_size`` is the *largest* subset used: with fewer real or fake images it is clamped to
    ``min(n_real, n_fake)`` (then recorded in :attr:`used_subset_size`). With a subset as large as the
    whole set, every subset holds all images and the standard deviation is 0. Features are gathered with
    ``cat`` (not torchmetrics' per-update lists), so processes may call ``update`` different numbers of times.
    """

    def __init__(self, num_features: int, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "will save all extracted features in buffer": that is the point
            super().__init__(feature=_Precomputed(num_features), subsets=subsets, subset_size=subset_size)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self.seed = seed
        self.used_subset_size = 0
        self.used_counts = (0, 0)

    def compute(self) -> tuple[Tensor, Tensor]:
        real = _canonical_order(dim_zero_cat(self.real_features).double())
        fake = _canonical_order(dim_zero_cat(self.fake_features).double())
        self.used_counts = (int(real.shape[0]), int(fake.shape[0]))
        size = min(self.subset_size, real.shape[0], fake.shape[0])
        if size < 2:
            raise UserError(f"KID needs at least 2 real and 2 generated images (got {real.shape[0]} and {fake.shape[0]})")
        self.used_subset_size = size
        if size == real.shape[0] == fake.shape[0]:
            # Every subset would hold every image: one exact value, and a standard deviation of exactly 0.
            value = poly_mmd(real, fake, self.degree, self.gamma, self.coef)
            return value, torch.zeros_like(value)
        generator = torch.Generator().manual_seed(self.seed)
        scores = []
        for _ in range(self.subsets):
            pick_real = torch.randperm(real.shape[0], generator=generator)[:size].to(real.device)
            pick_fake = torch.randperm(fake.shape[0], generator=generator)[:size].to(fake.device)
            scores.append(poly_mmd(real[pick_real], fake[pick_fake], self.degree, self.gamma, self.coef))
        stacked = torch.stack(scores)
        return stacked.mean(), stacked.std(unbiased=False)


class FidKid(nn.Module):
    """FID and KID of generated vs real images through one feature network (features computed once).

    ``update(images, real=...)`` takes uint8 NCHW images of any size (the image policy resizes them) or,
    with :meth:`update_from_model`, framework images in [-1, 1]. ``compute()`` syncs across DDP processes
    (every process must call it) and returns ``{"fid", "kid", "kid_std"}`` (only those asked for).

    Args:
        feature: ``inception``, ``random-conv``, ``package.module:Name`` or an ``nn.Module``.
        image_size: side of the square images fed to the feature network (the image policy).
        metrics: which of ``fid`` and ``kid`` to compute.
        kid_subsets: KID subsets (torchmetrics' default 100).
        kid_subset_size: largest KID subset; clamped to the images available.
        seed: seed of KID's subsets.
    """

    def __init__(
        self,
        feature: str | nn.Module = "random-conv",
        image_size: int = 299,
        metrics: Sequence[str] = DISTRIBUTION_METRICS,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 16:
            raise UserError(f"image size for FID/KID must be at least 16 px, got {image_size}")
        unknown = [m for m in metrics if m not in DISTRIBUTION_METRICS]
        if unknown or not metrics:
            raise UserError(f"FidKid computes {', '.join(DISTRIBUTION_METRICS)}; got {', '.join(metrics) or 'none'}")
        self.image_size = image_size
        self.metrics = tuple(m for m in DISTRIBUTION_METRICS if m in metrics)
        network = build_feature_network(feature, image_size)
        self.feature_network = network.module
        self.feature_name = network.name
        self.num_features = network.num_features
        self.fid: CountingFID | None = None
        self.kid: SeededKID | None = None
        if "fid" in self.metrics:
            self.fid = CountingFID(self.num_features)
        if "kid" in self.metrics:
            self.kid = SeededKID(self.num_features, kid_subsets, kid_subset_size, seed)
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size

    @property
    def device(self) -> torch.device:
        metric = self.fid if self.fid is not None else self.kid
        return metric.device  # type: ignore[union-attr]

    def policy(self) -> str:
        return IMAGE_POLICY.format(size=self.image_size)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """uint8 NCHW -> float64 ``(N, d)`` features after the image policy."""
        prepared = resize_for_features(images, self.image_size).to(self.device)
        features = self.feature_network(prepared)
        if features.ndim != 2 or features.shape != (images.shape[0], self.num_features):
            raise UserError(
                f"feature network {self.feature_name!r} returned shape {tuple(features.shape)} for "
                f"{images.shape[0]} images; expected ({images.shape[0]}, {self.num_features})"
            )
        return features.double()

    def update(self, images: Tensor, real: bool) -> None:
        """Add uint8 NCHW images to the real or generated set."""
        if images.shape[0] == 0:
            return
        features = self.features(images)
        if self.fid is not None:
            self.fid.update(features, real=real)
        if self.kid is not None:
            self.kid.update(features, real=real)

    def update_from_model(self, images: Tensor, real: bool) -> None:
        """Add framework images (NCHW in [-1, 1]); quantised to uint8 first, as a saved image would be."""
        self.update(images_to_uint8(images), real)

    def counts(self) -> dict[str, int]:
        """Real and generated images scored by the last ``compute()`` (over all processes)."""
        metric = self.fid if self.fid is not None else self.kid
        real, fake = metric.used_counts  # type: ignore[union-attr]
        return {"real": real, "fake": fake}

    def compute(self) -> dict[str, float]:
        """``{"fid": ..., "kid": ..., "kid_std": ...}`` as Python floats (synced across processes).

        Raises UserError when a set holds fewer than 2 images.
        """
        result: dict[str, float] = {}
        if self.fid is not None:
            result["fid"] = float(self.fid.compute())
        if self.kid is not None:
            mean, std = self.kid.compute()
            result["kid"], result["kid_std"] = float(mean), float(std)
        return result

    def kid_info(self) -> dict[str, Any]:
        """KID's subset settings as used by the last compute (the clamping is reported, never hidden)."""
        used = self.kid.used_subset_size if self.kid is not None else 0
        return {
            "subsets": self.kid_subsets,
            "subset_size": used,
            "subset_size_requested": self.kid_subset_size,
            "clamped": bool(used and used < self.kid_subset_size),
        }

    def kid_clamp_note(self) -> str | None:
        """One sentence saying that (and how) KID's subset size was clamped, or None."""
        info = self.kid_info()
        if not info["clamped"]:
            return None
        note = f"KID subset size clamped from {info['subset_size_requested']} to {info['subset_size']} (the images available)"
        if self.kid is not None and len(set(self.kid.used_counts)) == 1:
            note += "; every subset holds every image, so KID is computed once and kid_std is 0"
        return note

    def reset(self) -> None:
        for metric in (self.fid, self.kid):
            if metric is not None:
                metric.reset()
