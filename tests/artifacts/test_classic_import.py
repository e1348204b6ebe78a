"""Importing classic CycleGAN / pix2pix generator files (gan_translate.artifacts.classic, nn.classic_keys, classic_zoo).

The classic files are made here from the transcription of the classic module tree in benchmarks/classic_reference.py
(its key names are what the published files hold), with every weight and batch-norm statistic randomised so a
mapping that swapped two tensors of the same shape would show in the outputs.
"""

from __future__ import annotations

import io
import os
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.classic_reference import ClassicResnetGenerator, ClassicUnetGenerator
from gan_translate.artifacts import classic_zoo, load_checkpoint, load_model
from gan_translate.artifacts.classic import ClassicImport, import_classic, read_classic_state_dict
from gan_translate.artifacts.classic_zoo import ZOO, download_classic_model, zoo_model, zoo_table
from gan_translate.core.errors import CheckpointError, UserError
from gan_translate.inference.translator import load_translator
from gan_translate.models.pix2pix import Pix2PixInference
from gan_translate.nn.classic_keys import detect_classic_layout, strip_legacy_keys


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with every parameter and norm statistic drawn at random (variances kept positive), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point():
                values = torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return net.eval()


def classic_resnet(norm: str = "instance", dropout: bool = False, n_blocks: int = 9, ngf: int = 4) -> nn.Module:
    return randomised(ClassicResnetGenerator(ngf=ngf, norm=norm, n_blocks=n_blocks, use_dropout=dropout))


def classic_unet(norm: str = "batch", num_downs: int = 8, ngf: int = 4) -> nn.Module:
    return randomised(ClassicUnetGenerator(ngf=ngf, norm=norm, num_downs=num_downs, use_dropout=True))


def with_legacy_instance_norm_keys(net: nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s state_dict as PyTorch 0.3 saved it: InstanceNorm layers with running statistics."""
    state = dict(net.state_dict())
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(module.num_features)
            state[f"{name}.running_var"] = torch.ones(module.num_features)
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)
    return state


def save_classic(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def test_resnet9_with_legacy_keys_and_dropout_gives_the_classic_outputs(tmp_path: Path) -> None:
    classic = classic_resnet(dropout=True)
    state = with_legacy_instance_norm_keys(classic)
    assert sum(key.endswith("running_mean") for key in state) == 1 + 2 + 2 * 9 + 2  # stem, down, blocks, up norms
    file = save_classic(state, tmp_path / "latest_net_G_A.pth")
    imported = import_classic(file, tmp_path / "g.safetensors", ClassicImport("resnet_9blocks", dropout=True))
    assert imported.stripped_keys == 3 * 23 and imported.model == "cyclegan"
    generator = load_model(imported.output, capability="translate").translator("AtoB")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(generator(x), classic(x), atol=1e-5, rtol=0)


def test_resnet_with_batch_norm_keeps_its_running_statistics(tmp_path: Path) -> None:
    classic = classic_resnet(norm="batch", n_blocks=6)
    file = save_classic({f"module.{k}": v for k, v in classic.state_dict().items()}, tmp_path / "g.pth")  # DataParallel
    imported = import_classic(file, tmp_path / "g.safetensors", ClassicImport("resnet_6blocks", norm="batch"))
    generator = load_model(imported.output).translator("AtoB")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(generator(x), classic(x), atol=1e-5, rtol=0)


def test_unet256_gives_the_classic_outputs_in_eval_and_in_classic_test_mode(tmp_path: Path) -> None:
    classic = classic_unet()
    file = save_classic(classic.state_dict(), tmp_path / "latest_net_G.pth")
    imported = import_classic(file, tmp_path / "eval.safetensors", ClassicImport("unet_256", inference_mode="eval"))
    assert imported.model == "pix2pix" and imported.settings.norm == "batch" and imported.settings.dropout
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_translator(imported.output, device="cpu").network(x), classic(x), atol=1e-5, rtol=0)
        # The default for pix2pix: as the classic test script runs (no --eval): dropout on, batch statistics.
        default = import_classic(file, tmp_path / "classic.safetensors", ClassicImport("unet_256"))
        network = load_model(default.output).inference_network("AtoB")
        assert isinstance(network, Pix2PixInference) and network.mode == "classic"
        torch.manual_seed(3)
        ours = network(x)
        torch.manual_seed(3)
        theirs = classic.train()(x)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_the_export_records_what_rebuilds_the_generator(tmp_path: Path) -> None:
    file = save_classic(ClassicResnetGenerator(in_nc=1, out_nc=3, ngf=4, n_blocks=6).state_dict(), tmp_path / "colour.pth")
    imported = import_classic(file, tmp_path / "c.safetensors", ClassicImport("resnet_6blocks", direction="BtoA"))
    state = load_checkpoint(imported.output)
    hp = state["hyper_parameters"]
    # A BtoA generator maps the model's B side (out_channels) to its A side (in_channels).
    assert (hp["in_channels"], hp["out_channels"], hp["ngf"], hp["generator"]) == (3, 1, 4, "resnet_6blocks")
    assert hp["lambda_identity"] == 0.0 and state["_exported"] == {"BtoA": "generator_ba"}
    assert state["gan_translate"]["model"] == "cyclegan" and state["gan_translate"]["imported_from"] == "colour.pth"
    assert set(state["state_dict"]) == {f"generator_ba.{k}" for k in load_model(imported.output).generator_ba.state_dict()}
    assert load_translator(imported.output, direction="BtoA", device="cpu").network(torch.zeros(1, 1, 32, 32)).shape[1] == 3
    with pytest.raises(CheckpointError, match="BtoA generator only"):
        load_translator(imported.output, direction="AtoB", device="cpu")


@pytest.mark.parametrize(
    ("make", "settings", "message"),
    [
        (lambda: classic_resnet(), ClassicImport("resnet_6blocks"),
         r"g\.pth is not a classic resnet_6blocks generator: no 4-d tensor 'model\.23\.weight'; its keys look like --arch resnet_9blocks --norm instance --no-dropout$"),
        (lambda: classic_resnet(dropout=True), ClassicImport("resnet_9blocks"),
         r"no tensor 'model\.10\.conv_block\.5\.weight', which --arch resnet_9blocks --norm instance needs.*--dropout$"),
        (lambda: classic_resnet(norm="batch"), ClassicImport("resnet_9blocks"),
         r"no tensor 'model\.1\.bias'.*look like --arch resnet_9blocks --norm batch --no-dropout$"),
        (lambda: classic_unet(num_downs=7), ClassicImport("unet_256"),
         r"no tensor 'model\.model\.1(\.model\.3)+\.model\.2\.weight'.*look like --arch unet_128 --norm batch$"),
        (lambda: classic_unet(), ClassicImport("resnet_9blocks"),
         r"not a classic resnet_9blocks generator: no 4-d tensor 'model\.1\.weight'.*--arch unet_256 --norm batch$"),
    ],
)
def test_a_file_of_another_layout_is_one_line_naming_the_key_and_the_flags_that_fit(
    tmp_path: Path, make, settings: ClassicImport, message: str
) -> None:
    file = save_classic(make().state_dict(), tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match=message) as caught:
        import_classic(file, tmp_path / "out.safetensors", settings)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out.safetensors").exists()


def test_a_wrong_shape_and_a_left_over_tensor_are_named(tmp_path: Path) -> None:
    state = dict(classic_resnet().state_dict())
    state["model.10.conv_block.1.weight"] = torch.zeros(16, 16, 1, 1)
    file = save_classic(state, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"'model\.10\.conv_block\.1\.weight' has shape \[16, 16, 1, 1\] but "
                                              r"--arch resnet_9blocks --norm instance expects \[16, 16, 3, 3\]"):
        import_classic(file, tmp_path / "out.safetensors", ClassicImport("resnet_9blocks"))
    state = {**classic_resnet().state_dict(), "model.27.weight": torch.zeros(3)}
    file = save_classic(state, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'model\.27\.weight' \(1 left over\)"):
        import_classic(file, tmp_path / "out.safetensors", ClassicImport("resnet_9blocks"))


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    file = tmp_path / "evil.pth"
    torch.save({"model.1.weight": _RunsCode(marker)}, file)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pth.*could run code") as caught:
        read_classic_state_dict(file)
    assert "\n" not in str(caught.value) and not marker.exists()


def test_files_that_are_no_state_dict_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"classic generator file not found: .*nothere\.pth"):
        read_classic_state_dict(tmp_path / "nothere.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth is not a readable PyTorch file"):
        read_classic_state_dict(tmp_path / "text.pth")
    torch.save({"epoch": 3}, tmp_path / "dict.pth")
    with pytest.raises(CheckpointError, match=r"dict\.pth is not a classic generator state_dict"):
        read_classic_state_dict(tmp_path / "dict.pth")


def test_norm_and_dropout_default_as_the_classic_model_trains() -> None:
    assert ClassicImport("resnet_9blocks").resolved() == ClassicImport("resnet_9blocks", "instance", False, "AtoB", "cyclegan")
    assert ClassicImport("unet_128").resolved() == ClassicImport("unet_128", "batch", True, "AtoB", "pix2pix", "classic")
    # The model decides, as the classic pix2pix / cycle_gan options do, whatever the network.
    assert ClassicImport("unet_256", model="cyclegan").resolved() == ClassicImport("unet_256", "instance", False, "AtoB", "cyclegan")
    assert ClassicImport("resnet_6blocks", model="pix2pix", dropout=False).resolved() == ClassicImport(
        "resnet_6blocks", "batch", False, "AtoB", "pix2pix", "classic")


def test_settings_are_checked_before_the_file_is_read(tmp_path: Path) -> None:
    out = tmp_path / "o.safetensors"
    with pytest.raises(UserError, match="unknown classic architecture 'resnet_4blocks'"):
        import_classic(tmp_path / "x.pth", out, ClassicImport("resnet_4blocks"))
    with pytest.raises(UserError, match="pix2pix model translates one way"):
        import_classic(tmp_path / "x.pth", out, ClassicImport("unet_256", direction="BtoA"))
    with pytest.raises(UserError, match="--inference-mode is for pix2pix imports"):
        import_classic(tmp_path / "x.pth", out, ClassicImport("resnet_9blocks", inference_mode="classic"))
    with pytest.raises(UserError, match=r"--output must end in \.safetensors"):
        import_classic(tmp_path / "x.pth", tmp_path / "o.ckpt", ClassicImport("resnet_9blocks"))


def test_legacy_keys_go_only_where_the_norm_has_no_weights() -> None:
    instance = with_legacy_instance_norm_keys(classic_resnet(n_blocks=6))
    batch = dict(classic_resnet(norm="batch", n_blocks=6).state_dict())
    cleaned, dropped = strip_legacy_keys(instance)
    assert dropped == 3 * (1 + 2 + 2 * 6 + 2) and not any("running" in key for key in cleaned)
    assert strip_legacy_keys(batch) == (batch, 0)  # batch norm statistics are weights to keep
    assert detect_classic_layout(list(cleaned)).flags() == "--arch resnet_6blocks --norm instance --no-dropout"
    assert detect_classic_layout(list(batch)).flags() == "--arch resnet_6blocks --norm batch --no-dropout"
    assert detect_classic_layout(["encoder.weight"]) is None


# --- the zoo ------------------------------------------------------------------------------------------------
def test_the_zoo_names_both_scripts_models_with_their_import_flags() -> None:
    assert zoo_model("horse2zebra").flags() == "--arch resnet_9blocks --norm instance --no-dropout"
    assert zoo_model("edges2shoes").flags() == "--arch unet_256 --norm batch --dropout"
    assert zoo_model("pix2pix/sat2map").url("http://mirror/") == "http://mirror/pix2pix/models-pytorch/sat2map.pth"
    assert ZOO["cyclegan/style_monet"].url() == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth"
    with pytest.raises(UserError, match="'sat2map' is in both classic zoos: choose cyclegan/sat2map or pix2pix/sat2map"):
        zoo_model("sat2map")
    with pytest.raises(UserError, match="unknown classic pretrained model 'horse2cat'; valid: cyclegan/apple2orange"):
        zoo_model("horse2cat")
    assert len(zoo_table().splitlines()) == len(ZOO) == 18 + 5


def test_download_without_network_is_one_line_naming_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> None:
        raise urllib.error.URLError(OSError("[Errno -3] Temporary failure\nin name resolution"))

    monkeypatch.setattr(classic_zoo.urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match=r"^download failed: http://efrosgans\.eecs\.berkeley\.edu/cyclegan/pretrained_"
                                        r"models/horse2zebra\.pth \(.*name resolution\); download it by hand to .*"
                                        r"horse2zebra\.pth$") as caught:
        download_classic_model("horse2zebra", tmp_path)
    assert "\n" not in str(caught.value) and list(tmp_path.iterdir()) == []


def test_download_writes_the_file_and_keeps_one_already_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"weights" * 1000
    urls: list[str] = []

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    def serve(url: str, timeout: float) -> Response:
        urls.append(url)
        return Response(payload)

    monkeypatch.setattr(classic_zoo.urllib.request, "urlopen", serve)
    path = download_classic_model("pix2pix/facades_label2photo", tmp_path, mirror="http://local")
    assert path == tmp_path / "pix2pix_facades_label2photo.pth" and path.read_bytes() == payload
    assert urls == ["http://local/pix2pix/models-pytorch/facades_label2photo.pth"]
    assert download_classic_model("pix2pix/facades_label2photo", tmp_path) == path and len(urls) == 1
