"""`export` of the samplers (DCGAN, StyleGAN2's EMA generator): ONNX / TorchScript files map latents z to the images
``decode(z)`` gives, to 1e-4 at batch 1 and 3 (the traces ran at batch 2), StyleGAN2's with a run-time truncation
``psi``; their metadata; the safetensors export reloads for ``generate``; ``--direction`` is refused in one line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gan_translate.artifacts import export_generators, export_model, load_model
from gan_translate.artifacts.portable import TORCHSCRIPT_METADATA_FILE
from gan_translate.cli import main
from tests.tiny import TINY

_ONNX_MISSING = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(bool(_ONNX_MISSING), reason=f"the onnx extra is not installed ({', '.join(_ONNX_MISSING)} missing)")
# torch.jit.load warns that torch.jit is deprecated; TorchScript files are still what this export writes.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:FutureWarning")

#: The samplers exported, as tests/tiny.py builds them (16-d latents, 32 px).
MODELS = ("dcgan", "stylegan2")
BATCHES = (1, 3)
TOLERANCE = 1e-4


def write_checkpoint(path: Path, model: str) -> Path:
    """A tiny untrained model's checkpoint as `fit` writes it. DCGAN's weights are spread out (at the 0.02 init its
    images are all ~0, which any file would match) and StyleGAN2's ``w_avg`` moved off 0 (so truncation shows)."""
    torch.manual_seed(0)
    instance = TINY[model].build(model)
    with torch.no_grad():
        if model == "dcgan":
            for name, parameter in instance.named_parameters():
                if name.startswith("generator") and parameter.dim() == 4:
                    parameter.normal_(0.0, 1.5 / parameter[0].numel() ** 0.5)
            for name, buffer in instance.named_buffers():  # eval mode uses batch norm's running statistics
                if name.startswith("generator") and name.endswith(("running_mean", "running_var")):
                    buffer.uniform_(0.5, 1.5) if name.endswith("var") else buffer.normal_(0, 0.2)
        else:
            instance.generator_ema.mapping.w_avg.normal_()
    torch.save({"state_dict": instance.state_dict(), "hyper_parameters": dict(instance.hparams),
                "gan_translate": {"model": model, "version": "test"}, "epoch": 0, "global_step": 0}, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both models' checkpoints, their (eval-mode) models, and their TorchScript and (with the extra) ONNX files,
    written through the command line."""
    folder = tmp_path_factory.mktemp("samplers")
    found: dict[str, Any] = {"folder": folder}
    for model in MODELS:
        ckpt = write_checkpoint(folder / f"{model}.ckpt", model)
        found[model] = load_model(ckpt, capability="sample")
        found[f"{model}.ckpt"] = ckpt
        for suffix in (".pt", *(() if _ONNX_MISSING else (".onnx",))):
            assert main(["export", "--checkpoint", str(ckpt), "--output", str(folder / f"{model}{suffix}")]) == 0
    return found


def _latents(n: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(seed))


def _onnx(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check(result: np.ndarray | torch.Tensor, reference: torch.Tensor, what: str) -> float:
    result = torch.as_tensor(np.asarray(result))
    assert result.shape == reference.shape and result.dtype == torch.float32, what
    assert reference.std() > 0.05, "a flat reference would let a wrong file pass"
    assert result.min() >= -1 and result.max() <= 1
    error = float((result - reference).abs().max())
    assert error < TOLERANCE, (what, error)
    return error


@pytest.mark.parametrize("model", list(MODELS))
def test_torchscript_gives_decode_at_batch_1_and_3(files: dict[str, Any], model: str) -> None:
    program = torch.jit.load(str(files["folder"] / f"{model}.pt"))
    for n in BATCHES:
        z = _latents(n)
        _check(program(z), files[model].decode(z), f"{model}.pt batch {n}")


@needs_onnx
@pytest.mark.parametrize("model", list(MODELS))
def test_onnx_gives_decode_at_batch_1_and_3(files: dict[str, Any], model: str) -> None:
    session = _onnx(files["folder"] / f"{model}.onnx")
    truncation = model == "stylegan2"
    assert [i.name for i in session.get_inputs()] == (["z", "psi"] if truncation else ["z"])
    assert session.get_inputs()[0].shape == ["batch", 16]
    assert session.get_outputs()[0].name == "images" and session.get_outputs()[0].shape == ["batch", 3, 32, 32]
    for n in BATCHES:
        z = _latents(n)
        feeds = {"z": z.numpy(), **({"psi": np.ones(1, np.float32)} if truncation else {})}
        _check(session.run(["images"], feeds)[0], files[model].decode(z), f"{model}.onnx batch {n}")


def test_stylegan2_torchscript_truncates_at_run_time(files: dict[str, Any]) -> None:
    program, model = torch.jit.load(str(files["folder"] / "stylegan2.pt")), files["stylegan2"]
    for n in BATCHES:
        z = _latents(n)
        half = model.decode(z, psi=0.5)
        _check(program(z, 0.5), half, "psi float")
        _check(program(z, torch.tensor(0.5)), half, "psi 0-d tensor")
        _check(program(z, torch.tensor([0.5])), half, "psi (1,) tensor")
        _check(program(z, 1.0), model.decode(z), "psi 1 is off")
        assert float((half - model.decode(z)).abs().max()) > 0.05, "psi 0.5 must change the images"


@needs_onnx
def test_stylegan2_onnx_truncates_and_psi_0_is_the_average_image(files: dict[str, Any]) -> None:
    session, model = _onnx(files["folder"] / "stylegan2.onnx"), files["stylegan2"]
    program = torch.jit.load(str(files["folder"] / "stylegan2.pt"))
    generator = model.generator_ema
    # The w-average image: the synthesis of w_avg in every layer (what psi 0 truncates every latent to).
    average = model.synthesize(generator.broadcast(generator.mapping.w_avg[None]))
    for n in BATCHES:
        z = _latents(n, seed=n)
        half, zero = (session.run(["images"], {"z": z.numpy(), "psi": np.array([psi], np.float32)})[0] for psi in (0.5, 0.0))
        _check(half, model.decode(z, psi=0.5), f"onnx psi 0.5 batch {n}")
        for what, images in (("onnx", zero), ("torchscript", program(z, 0.0))):
            _check(images, average.expand(n, -1, -1, -1), f"{what} psi 0 batch {n}")


@needs_onnx
def test_the_files_record_shapes_model_and_interface(files: dict[str, Any]) -> None:
    import onnx

    props = {p.key: p.value for p in onnx.load(files["folder"] / "stylegan2.onnx").metadata_props}
    assert (props["model"], props["network"], props["format"]) == ("stylegan2", "generator_ema", "onnx")
    assert (props["z_dim"], props["resolution"], props["channels"]) == ("16", "32", "3")
    assert props["version"] and props["producer"].startswith("gan-translate ")
    assert props["inputs"].startswith("z: float32 (batch, 16)") and "psi: float32 shape (1,)" in props["inputs"]
    assert props["output"] == "images: float32 (batch, 3, 32, 32) in [-1, 1]"
    assert json.loads(props["hyper_parameters"])["z_dim"] == 16
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    torch.jit.load(str(files["folder"] / "dcgan.pt"), _extra_files=extra)
    meta = json.loads(extra[TORCHSCRIPT_METADATA_FILE])
    assert (meta["model"], meta["network"], meta["format"], meta["z_dim"]) == ("dcgan", "generator", "torchscript", "16")
    assert "psi" not in meta["inputs"] and meta["output"].startswith("images: float32 (batch, 3, 32, 32)")


def test_the_files_run_without_gan_translate(files: dict[str, Any]) -> None:
    """Both StyleGAN2 files in a fresh interpreter that cannot import gan_translate (the scripted psi wrapper included)."""
    runner = textwrap.dedent('''
        import importlib.abc, importlib.util, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "gan_translate":
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        import numpy as np, torch
        z = torch.from_numpy(np.load("z.npy"))
        outputs = {"pt": torch.jit.load("stylegan2.pt")(z, 0.5).numpy()}
        if importlib.util.find_spec("onnxruntime") and __import__("os").path.exists("stylegan2.onnx"):
            import onnxruntime
            session = onnxruntime.InferenceSession("stylegan2.onnx", providers=["CPUExecutionProvider"])
            outputs["onnx"] = session.run(["images"], {"z": z.numpy(), "psi": np.array([0.5], np.float32)})[0]
        np.savez("out.npz", **outputs)
        print(sorted(m for m in sys.modules if m.startswith("gan_translate")))
    ''')
    folder = files["folder"]
    z = _latents(3, seed=11)
    np.save(folder / "z.npy", z.numpy())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    done = subprocess.run([sys.executable, "-I", "-c", runner], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    outputs = dict(np.load(folder / "out.npz"))
    assert set(outputs) == ({"pt"} if _ONNX_MISSING else {"pt", "onnx"})
    for name, images in outputs.items():
        _check(images, files["stylegan2"].decode(z, psi=0.5), name)


@pytest.mark.parametrize("model", list(MODELS))
def test_safetensors_export_reloads_for_generate(files: dict[str, Any], model: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / f"{model}.safetensors"
    assert main(["export", "--checkpoint", str(files[f"{model}.ckpt"]), "--output", str(output)]) == 0
    network = "generator_ema" if model == "stylegan2" else "generator"
    assert f"exported the {model} sampler ({network}: latents -> images) to {output} (safetensors" in capsys.readouterr().out
    from safetensors import safe_open

    with safe_open(str(output), framework="pt") as handle:
        assert {key.split(".")[0] for key in handle.keys()} == {network}  # no discriminator, no training generator
    again = load_model(output, capability="sample")
    z = _latents(3)
    torch.testing.assert_close(again.decode(z), files[model].decode(z), rtol=0, atol=0)
    assert export_generators(files[f"{model}.ckpt"], tmp_path / "api.safetensors") == [network]


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("model", list(MODELS))
def test_direction_is_refused_for_a_sampler_in_one_line(files: dict[str, Any], model: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["export", "--checkpoint", str(files[f"{model}.ckpt"]), "--output"]
    for name, direction in (("g.pt", "AtoB"), ("g.safetensors", "BtoA"), ("g.safetensors", "both")):
        line = _error(capsys, [*base, str(tmp_path / name), "--direction", direction])
        assert line == f"error: a {model} model samples images from latents and has no directions: drop --direction {direction}"
    assert not list(tmp_path.iterdir())
    with pytest.raises(Exception, match="has no directions"):
        export_model(files[f"{model}.ckpt"], tmp_path / "g.pt", direction="AtoB")
