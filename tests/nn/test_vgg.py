"""VGG19 feature extractor: layer names, truncation, normalisation, frozen weights, and where weights come from.

No test touches the network: ImageNet weights are simulated with small files in a temporary hub cache,
and the download is replaced by one that fails like an offline machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.cli import main
from gan_translate.core.errors import UserError
from gan_translate.nn.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RANDOM_WEIGHTS_NOTE,
    VGG19Features,
    VGGWeightsError,
    expected_weights_path,
    vgg19_layer_names,
)


def test_layer_names_follow_the_architecture() -> None:
    names = vgg19_layer_names()
    assert len(names) == 37  # 16 conv + 16 relu + 5 pool
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert [n for n in names if n.startswith("relu")][-1] == "relu5_4" and names[-1] == "pool5"
    assert sum(n.startswith("relu4_") for n in names) == 4
    # the names agree with torchvision's own VGG19 (convolutions and pools at the same indices)
    from torchvision.models.vgg import cfgs, make_layers

    with torch.device("meta"):  # architecture only, no 20M-parameter initialisation
        reference = make_layers(cfgs["E"])
    for name, module in zip(names, reference):
        kind = {nn.Conv2d: "conv", nn.ReLU: "relu", nn.MaxPool2d: "pool"}[type(module)]
        assert name.startswith(kind)
    assert names.index("relu4_2") == 22 and names.index("relu5_1") == 29


def test_extractor_is_truncated_frozen_and_not_in_place() -> None:
    extractor = VGG19Features(["relu2_1", "relu1_1", "conv1_1"], weights="random")
    assert len(extractor.features) == vgg19_layer_names().index("relu2_1") + 1
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not extractor.training
    extractor.train()
    assert not extractor.training, "the extractor must stay in eval mode"
    assert all(not m.inplace for m in extractor.features if isinstance(m, nn.ReLU))
    assert any(isinstance(m, nn.AvgPool2d) for m in extractor.features)  # paper default
    assert not any(isinstance(m, nn.MaxPool2d) for m in extractor.features)

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = extractor(x)
    assert set(out) == {"conv1_1", "relu1_1", "relu2_1"}
    assert out["relu1_1"].shape == (2, 64, 32, 32) and out["relu2_1"].shape == (2, 128, 16, 16)
    # ReLU not in place: the conv output keeps its negative values, the ReLU output is its positive part
    assert (out["conv1_1"] < 0).any()
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp(min=0))

    max_pool = VGG19Features(["relu2_1"], weights="random", pooling="max")
    assert any(isinstance(m, nn.MaxPool2d) for m in max_pool.features)


def test_imagenet_normalisation_happens_inside_on_minus_one_to_one_inputs() -> None:
    extractor = VGG19Features(["conv1_1"], weights="random")
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    conv = extractor.features[0]
    expected = F.conv2d(((x + 1) / 2 - mean) / std, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(extractor(x)["conv1_1"], expected)


def test_random_weights_are_seeded_and_labelled() -> None:
    a = VGG19Features(["relu1_2"], weights="random")
    b = VGG19Features(["relu1_2"], weights="random")
    torch.testing.assert_close(a.features[2].weight, b.features[2].weight)
    assert not a.pretrained and a.description == RANDOM_WEIGHTS_NOTE == "VGG: random weights (untrained)"


def test_unknown_layer_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown VGG19 layer.*relu9_9"):
        VGG19Features(["relu1_1", "relu9_9"], weights="random")


def _reference_state(depth_layers: int = 2) -> dict[str, torch.Tensor]:
    """Random VGG19 weights for the first ``depth_layers`` modules, keyed as torchvision's full model."""
    source = VGG19Features(["relu1_2"], weights="random")
    torch.manual_seed(1)
    state = {}
    for index, module in enumerate(source.features[:depth_layers]):
        if isinstance(module, nn.Conv2d):
            state[f"features.{index}.weight"] = torch.randn_like(module.weight)
            state[f"features.{index}.bias"] = torch.randn_like(module.bias)
    state["classifier.0.bias"] = torch.zeros(3)  # the rest of a full state dict is ignored
    return state


def test_loads_a_local_state_dict_file(tmp_path: Path) -> None:
    state = _reference_state(4)
    full = tmp_path / "vgg19_full.pth"
    torch.save(state, full)
    features_only = tmp_path / "vgg19_features.pth"
    torch.save({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}, features_only)
    for path in (full, features_only):
        extractor = VGG19Features(["relu1_2"], weights=str(path))
        assert extractor.pretrained and str(path) in extractor.description
        torch.testing.assert_close(extractor.features[2].weight, state["features.2.weight"])
    # a deeper layer than the file holds is refused, naming the file and a missing key
    with pytest.raises(VGGWeightsError, match=r"vgg19_full.pth is not a VGG19 state dict \(missing 5.bias, 5.weight\)"):
        VGG19Features(["relu2_1"], weights=str(full))


def test_bad_weight_files_are_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    for weights, pattern in [(garbage, "cannot read VGG19 weights .*garbage.pth"), (tmp_path / "nope.pth", "not found: .*nope.pth")]:
        with pytest.raises(VGGWeightsError, match=pattern) as info:
            VGG19Features(["relu1_1"], weights=str(weights))
        assert "\n" not in str(info.value)


def test_missing_weights_message_is_one_line_naming_the_file(offline_hub: Path) -> None:
    expected = offline_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert expected_weights_path() == expected
    with pytest.raises(VGGWeightsError) as info:
        VGG19Features(["relu1_1"], weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert str(expected) in message
    assert "--vgg-weights PATH" in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert not expected.exists()


def test_missing_weights_through_the_cli(offline_hub: Path, synthetic_root: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    code = main(["stylize", "--content", str(synthetic_root / "testA" / "000001.png"),
                 "--style", str(synthetic_root / "trainB" / "000001.png"), "--output", str(tmp_path / "out"),
                 "--size", "32", "--steps", "1", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: VGG19 ImageNet weights not found at ")
    assert str(offline_hub / "checkpoints" / "vgg19-dcbb9e9d.pth") in err[0]


def test_imagenet_weights_come_from_the_hub_cache(offline_hub: Path) -> None:
    # a file already in the cache is used without any download (a truncated stand-in: only relu1_1 is asked for)
    state = _reference_state(2)
    cached = offline_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    extractor = VGG19Features(["relu1_1"], weights="imagenet")
    assert extractor.pretrained and "ImageNet" in extractor.description
    torch.testing.assert_close(extractor.features[0].weight, state["features.0.weight"])
    # a corrupt cached file says which file to delete
    cached.write_bytes(b"truncated")
    with pytest.raises(VGGWeightsError, match="cannot read the cached VGG19 weights .*vgg19-dcbb9e9d.pth.*delete"):
        VGG19Features(["relu1_1"], weights="imagenet")
