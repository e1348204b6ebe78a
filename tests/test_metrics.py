"""Metrics: paired values on constructed images, FID/KID behaviour, the image policy, feature networks, DDP sync."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.core.images import images_to_uint8, to_unit_range
from gan_translate.metrics import (
    FidKid,
    RandomConvFeatures,
    build_feature_network,
    paired_metrics,
    parse_metrics,
    resize_for_features,
)


def scenes(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """n synthetic domain-A scenes as uint8 NCHW."""
    from gan_translate.data.synthetic import random_scene, render_a

    rng = np.random.default_rng(seed)
    arrays = [render_a(random_scene(rng, size)) for _ in range(n)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def corrupt(images: torch.Tensor, kind: str, level: float) -> torch.Tensor:
    import torchvision.transforms.functional as TF  # lazy: the spawned DDP workers import this module

    x = images.float()
    if level > 0 and kind == "noise":
        x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * level * 255
    elif level > 0 and kind == "blur":
        x = TF.gaussian_blur(x, kernel_size=2 * math.ceil(3 * level) + 1, sigma=level)
    return x.round().clamp(0, 255).to(torch.uint8)


# --- paired metrics -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("difference", [0.5, 0.1, 0.02])
def test_paired_metrics_on_constant_images(difference: float) -> None:
    prediction = torch.full((3, 3, 24, 24), 0.25)
    target = prediction + difference
    values = paired_metrics().to("cpu")
    values.update(prediction, target)
    result = values.compute()
    assert float(result["l1"]) == pytest.approx(difference, rel=1e-5)
    assert float(result["psnr"]) == pytest.approx(10 * math.log10(1 / difference**2), rel=1e-5)
    assert float(result["ssim"]) < 1.0


def test_paired_metrics_on_identical_images() -> None:
    images = to_unit_range(torch.rand(2, 3, 32, 32) * 2 - 1)
    values = paired_metrics()
    values.update(images, images)
    result = values.compute()
    assert float(result["l1"]) == 0.0
    assert float(result["ssim"]) == pytest.approx(1.0, abs=1e-6)
    assert math.isinf(float(result["psnr"]))


def test_prefix_and_postfix_name_the_keys() -> None:
    assert set(paired_metrics(prefix="val/", postfix="_ab").keys()) == {"val/l1_ab", "val/psnr_ab", "val/ssim_ab"}


def test_metric_names_are_checked() -> None:
    assert parse_metrics("ssim, FID") == ["fid", "ssim"]
    with pytest.raises(UserError, match=r"unknown metric 'lpips'; valid metrics: fid, kid, l1, psnr, ssim"):
        parse_metrics("fid,lpips")


# --- the image policy ---------------------------------------------------------------------------------------
def test_image_policy_resizes_shorter_side_and_centre_crops() -> None:
    wide = torch.zeros(1, 3, 40, 80, dtype=torch.uint8)
    wide[..., 10:70] = 255  # a white centre band, wider than the crop after resizing 40x80 -> 32x64
    out = resize_for_features(wide, 32)
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.uint8
    assert int(out.min()) == 255  # only the centre 32 columns (16..48 of 64) are kept
    assert int(resize_for_features(torch.flip(wide, dims=[3]) * 0, 32).max()) == 0
    gray = torch.full((2, 1, 32, 32), 7, dtype=torch.uint8)
    assert resize_for_features(gray, 32).shape == (2, 3, 32, 32)  # channels repeated
    same = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(resize_for_features(same, 32), same)  # the right size is left untouched


def test_images_to_uint8_rounds_like_saved_images() -> None:
    from gan_translate.core.images import tensor_to_uint8

    images = torch.rand(2, 3, 8, 8) * 2.2 - 1.1
    np.testing.assert_array_equal(images_to_uint8(images).permute(0, 2, 3, 1).numpy(), tensor_to_uint8(images))


# --- feature networks -------------------------------------------------------------------------------------
def test_random_conv_is_deterministic_and_named_as_such() -> None:
    images = scenes(3)
    torch.manual_seed(123)  # the global RNG must not matter
    a = RandomConvFeatures()
    torch.manual_seed(456)
    b = RandomConvFeatures()
    np.testing.assert_array_equal(a(images).numpy(), b(images).numpy())
    assert a(images).shape == (3, 352)
    network = build_feature_network("random-conv", 32)
    assert network.name == "random-conv-v1-352" and "inception" not in network.name
    assert network.num_features == 352


class MeanColour(nn.Module):
    """A custom feature network for the import-path form (no num_features: it is inferred)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


class BadShape(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float()


def test_custom_feature_network_by_import_path() -> None:
    network = build_feature_network("tests.test_metrics:MeanColour", 32)
    assert network.name == "tests.test_metrics:MeanColour" and network.num_features == 6
    metric = FidKid("tests.test_metrics:MeanColour", image_size=32)
    images = scenes(4)
    metric.update(images, real=True)
    metric.update(corrupt(images, "noise", 0.2), real=False)
    assert metric.compute()["fid"] > 0 and metric.feature_name == "tests.test_metrics:MeanColour"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_package.mod:Net", "cannot import no_such_package.mod"),
        ("tests.test_metrics:Nope", "has no attribute 'Nope'"),
        ("tests.test_metrics:BadShape", "must return (N, d) features"),
        ("vgg", "unknown feature network 'vgg'; valid: inception, random-conv or package.module:ClassOrFactory"),
    ],
)
def test_bad_feature_networks_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        build_feature_network(spec, 32)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_inception_without_torch_fidelity_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import gan_translate.metrics as metrics

    monkeypatch.setattr(metrics, "_torch_fidelity_available", lambda: False)
    with pytest.raises(UserError) as info:
        FidKid("inception")
    text = str(info.value)
    assert "pip install torch-fidelity" in text and "--feature random-conv" in text and "\n" not in text


def test_inception_weights_that_cannot_be_downloaded_give_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torchmetrics.image.fid as tm_fid

    import gan_translate.metrics as metrics

    def offline(*args: object, **kwargs: object) -> nn.Module:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(metrics, "_torch_fidelity_available", lambda: True)
    monkeypatch.setattr(tm_fid, "NoTrainInceptionV3", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(UserError) as info:
        FidKid("inception")
    text = str(info.value)
    assert "\n" not in text
    assert "weights-inception-2015-12-05-6726825d.pth" in text  # what is missing
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in text  # where it is cached
    assert "--feature package.module:Class" in text and "--feature random-conv" in text  # what to do instead
    assert "URLError" in text


# --- FID and KID ------------------------------------------------------------------------------------------
def _scores(real: torch.Tensor, fake: torch.Tensor, **kwargs: object) -> dict[str, float]:
    metric = FidKid("random-conv", image_size=32, **kwargs)  # type: ignore[arg-type]
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric.compute()


@pytest.mark.parametrize(("kind", "levels"), [("noise", (0.03, 0.1, 0.3)), ("blur", (0.6, 1.2, 2.5))])
def test_fid_and_kid_grow_monotonically_with_corruption(kind: str, levels: tuple[float, ...]) -> None:
    images = scenes(16)
    same = _scores(images, images.clone())
    corrupted = [_scores(images, corrupt(images, kind, level)) for level in levels]
    fids = [same["fid"], *(s["fid"] for s in corrupted)]
    kids = [same["kid"], *(s["kid"] for s in corrupted)]
    assert abs(same["fid"]) < 1e-4 * fids[1]  # a set against itself: zero up to eigenvalue precision
    assert fids == sorted(fids), fids
    assert kids == sorted(kids), kids


def test_kid_is_about_zero_for_two_samples_of_one_distribution() -> None:
    images, others = scenes(16), scenes(16, seed=1)
    noisy = _scores(images, corrupt(others, "noise", 0.3))["kid"]
    assert abs(_scores(images, others)["kid"]) < noisy / 10
    # Against *itself* KID's unbiased estimate is -(2/m) (mean k(x, x) - mean k(x, y)): at most 0.
    assert _scores(images, images.clone())["kid"] <= 1e-12


def test_kid_subset_size_is_clamped_and_reported() -> None:
    images = scenes(6)
    metric = FidKid("random-conv", image_size=32, kid_subset_size=1000)
    metric.update(images, real=True)
    metric.update(corrupt(images, "noise", 0.2), real=False)
    scores = metric.compute()
    assert metric.kid_info() == {"subsets": 100, "subset_size": 6, "subset_size_requested": 1000, "clamped": True}
    assert scores["kid_std"] == 0.0  # every subset is the whole set
    assert metric.counts() == {"real": 6, "fake": 6}
    assert "clamped from 1000 to 6" in metric.kid_clamp_note() and "kid_std is 0" in metric.kid_clamp_note()
    # more real than generated images: subsets of the real set are still random
    metric.reset()
    metric.update(scenes(9, seed=2), real=True)
    metric.update(images[:4], real=False)
    assert metric.compute()["kid_std"] > 0
    assert metric.kid_info()["subset_size"] == 4 and "kid_std is 0" not in metric.kid_clamp_note()


def test_scores_do_not_depend_on_batching_or_order() -> None:
    real, fake = scenes(10), corrupt(scenes(10, seed=1), "noise", 0.1)
    whole = _scores(real, fake, kid_subset_size=4)
    metric = FidKid("random-conv", image_size=32, kid_subset_size=4)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    for chunk in order.split(3):
        metric.update(real[chunk], real=True)
        metric.update(fake[chunk], real=False)
    shuffled = metric.compute()
    assert whole["kid_std"] > 0  # subsets of 4 out of 10 really are random
    for key in ("fid", "kid", "kid_std"):
        # float32 convolutions round differently for other batch sizes: equal to ~1e-7, not bit for bit
        assert shuffled[key] == pytest.approx(whole[key], rel=1e-5, abs=1e-9)
    assert _scores(real, fake, kid_subset_size=4) == whole  # and the same inputs give the same numbers


def test_too_few_images_is_a_user_error() -> None:
    metric = FidKid("random-conv", image_size=32)
    metric.update(scenes(1), real=True)
    metric.update(scenes(3), real=False)
    with pytest.raises(UserError, match="at least 2 real and 2 generated images"):
        metric.compute()


# --- DDP: two processes, each with part of the data, give the single-process numbers ----------------------------
def _ddp_worker(rank: int, world_size: int, init_file: str, data_path: str, out_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        data = torch.load(data_path)
        # Uneven shares, and a different number of update calls per process.
        share = slice(0, 7) if rank == 0 else slice(7, None)
        metric = FidKid("random-conv", image_size=32, kid_subset_size=5)
        paired = paired_metrics()
        for chunk in torch.arange(data["real"].shape[0])[share].split(3 if rank == 0 else 2):
            metric.update(data["real"][chunk], real=True)
            metric.update(data["fake"][chunk], real=False)
            paired.update(data["prediction"][chunk], data["target"][chunk])
        result = metric.compute()
        result.update({k: float(v) for k, v in paired.compute().items()})
        result["counts"] = metric.counts()
        if rank == 0:
            torch.save(result, out_path)
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_give_the_single_process_scores(tmp_path: Path) -> None:
    real, fake = scenes(12), corrupt(scenes(12, seed=1), "blur", 1.0)
    prediction = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    target = (prediction + 0.1 * torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    torch.save({"real": real, "fake": fake, "prediction": prediction, "target": target}, tmp_path / "data.pt")

    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "init"), str(tmp_path / "data.pt"), str(tmp_path / "out.pt")),
        nprocs=2,
        join=True,
    )
    distributed = torch.load(tmp_path / "out.pt")

    single = _scores(real, fake, kid_subset_size=5)
    paired = paired_metrics()
    paired.update(prediction, target)
    single.update({k: float(v) for k, v in paired.compute().items()})
    assert distributed["counts"] == {"real": 12, "fake": 12}
    assert single["kid_std"] > 0
    for key in ("fid", "kid", "kid_std", "l1", "psnr", "ssim"):
        assert distributed[key] == pytest.approx(single[key], rel=1e-5, abs=1e-9), key
