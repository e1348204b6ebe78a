"""`export --format onnx|torchscript`: the files run without gan-translate (a subprocess that cannot import it) and
give translate's result to 1e-4 at odd and exact sizes, batch 2, for a CycleGAN ResNet, a Pix2Pix U-Net and CUT's
antialiased ResNet; UNSB's bridge with its noise as inputs gives translate --seed's result; the format / direction /
overwrite / missing-extra mistakes are one line."""

from __future__ import annotations

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

from gan_translate import load_translator
from gan_translate.artifacts import export_model
from gan_translate.artifacts.portable import ONNX_EXTRA_HINT, TORCHSCRIPT_METADATA_FILE
from gan_translate.cli import main
from tests.tiny import TINY

pytest.importorskip("onnxruntime", reason="the onnx extra (in dev) runs the exported graphs")

#: The models exported, as tests/tiny.py builds them; CUT with its own antialiased ResNet (blur layers in the file).
MODELS: dict[str, dict[str, Any]] = {
    "cyclegan": {},
    "pix2pix": {},
    "cut": {"generator_args": {"n_blocks": 1, "antialias": True}},
}
# (file, model, direction given on the command line or None, the direction the file holds)
EXPORTS = [
    ("cyclegan_ab.onnx", "cyclegan", "AtoB", "AtoB"),
    ("pix2pix.onnx", "pix2pix", None, "AtoB"),
    ("cut.onnx", "cut", None, "AtoB"),
    ("cyclegan_ba.pt", "cyclegan", "BtoA", "BtoA"),
    ("pix2pix.torchscript", "pix2pix", None, "AtoB"),
    ("cut.pt", "cut", "AtoB", "AtoB"),
]
# Batch 2 at an odd size (padded inside the file: 37 -> 40 for the ResNets, 64 for the U-Net) and at exact multiples.
SIZES = [(37, 45), (64, 96)]

# Loads every file with onnxruntime / torch.jit.load in a fresh interpreter where gan_translate cannot be imported.
RUNNER = textwrap.dedent('''
    import importlib.abc, json, sys
    class NoGanTranslate(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "gan_translate":
                raise ImportError("gan_translate is blocked in this process")
    sys.meta_path.insert(0, NoGanTranslate())
    try:
        import gan_translate
        raise SystemExit("the blocker let gan_translate in")
    except ImportError:
        pass
    import numpy as np, onnxruntime, torch
    job = json.load(open(sys.argv[1]))
    inputs = np.load(job["inputs"])
    outputs = {}
    for name in job["files"]:
        if name.endswith(".onnx"):
            session = onnxruntime.InferenceSession(name, providers=["CPUExecutionProvider"])
            run = lambda x: session.run(["translated"], {"image": x})[0]
        else:
            program = torch.jit.load(name)
            run = lambda x: program(torch.from_numpy(x)).numpy()
        for key in inputs.files:
            outputs[f"{name}|{key}"] = run(inputs[key])
    np.savez(job["outputs"], **outputs)
    print(json.dumps(sorted(m for m in sys.modules if m.startswith("gan_translate"))))
''')


def write_checkpoint(path: Path, model: str) -> Path:
    """A tiny untrained model's checkpoint as `fit` writes it, its generator weights spread out so that the outputs
    use the range (at the default 0.02 init a U-Net's outputs all sit near 0 and any file would look right)."""
    torch.manual_seed(0)
    instance = TINY[model].build(model, **MODELS[model])
    with torch.no_grad():
        for name, parameter in instance.named_parameters():
            if name.startswith("generator") and parameter.dim() == 4:
                parameter.normal_(0.0, 0.5 / parameter[0].numel() ** 0.5)
        for name, buffer in instance.named_buffers():  # batch norm's running statistics matter in eval mode
            if name.startswith("generator") and name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5) if name.endswith("var") else buffer.normal_(0, 0.2)
    torch.save({"state_dict": instance.state_dict(), "hyper_parameters": dict(instance.hparams),
                "gan_translate": {"model": model, "version": "test"}, "epoch": 0, "global_step": 0}, path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every file of EXPORTS, written through the command line, and what the standalone runner made of them."""
    folder = tmp_path_factory.mktemp("portable")
    checkpoints = {model: write_checkpoint(folder / f"{model}.ckpt", model) for model in MODELS}
    for name, model, direction, _ in EXPORTS:
        flags = [] if direction is None else ["--direction", direction]
        assert main(["export", "--checkpoint", str(checkpoints[model]), "--output", str(folder / name), *flags]) == 0
    rng = np.random.default_rng(0)
    inputs = {f"{h}x{w}": rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32) for h, w in SIZES}
    np.savez(folder / "inputs.npz", **inputs)
    job = {"files": [name for name, *_ in EXPORTS], "inputs": str(folder / "inputs.npz"), "outputs": str(folder / "outputs.npz")}
    (folder / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    done = subprocess.run([sys.executable, "-I", "-c", RUNNER, str(folder / "job.json")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"folder": folder, "checkpoints": checkpoints, "inputs": inputs, "outputs": dict(np.load(folder / "outputs.npz")),
            "imported": json.loads(done.stdout.strip().splitlines()[-1])}


def test_the_files_ran_in_a_process_without_gan_translate(exported: dict[str, Any]) -> None:
    # the runner refuses any gan_translate import (and checks that its blocker works): every file ran without it
    assert exported["imported"] == []
    assert set(exported["outputs"]) == {f"{name}|{h}x{w}" for name, *_ in EXPORTS for h, w in SIZES}


@pytest.mark.parametrize(("name", "model", "direction"), [(n, m, d) for n, m, _, d in EXPORTS])
def test_the_file_gives_translates_result_at_two_sizes(exported: dict[str, Any], name: str, model: str, direction: str) -> None:
    translator = load_translator(exported["checkpoints"][model], direction, device="cpu")
    for key, batch in exported["inputs"].items():
        reference = translator.translate_batch(torch.from_numpy(batch)).numpy()
        assert reference.std() > 0.05, "a flat reference would let a wrong file pass"
        result = exported["outputs"][f"{name}|{key}"]
        assert result.shape == batch.shape and result.dtype == np.float32
        assert np.abs(result - reference).max() < 1e-4, (name, key)


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*deprecated:FutureWarning")  # still the way to load one
def test_the_files_record_size_multiple_and_provenance(exported: dict[str, Any]) -> None:
    import onnx

    folder = exported["folder"]
    graph = onnx.load(folder / "pix2pix.onnx")
    props = {p.key: p.value for p in graph.metadata_props}
    assert (props["size_multiple"], props["min_side"], props["model"], props["direction"]) == ("32", "32", "pix2pix", "AtoB")
    assert [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == ["batch", 3, "height", "width"]
    assert graph.opset_import[0].version == 18
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    torch.jit.load(str(folder / "cyclegan_ba.pt"), _extra_files=extra)
    meta = json.loads(extra[TORCHSCRIPT_METADATA_FILE])
    assert (meta["size_multiple"], meta["min_side"], meta["direction"], meta["format"]) == ("4", "8", "BtoA", "torchscript")
    assert json.loads(meta["hyper_parameters"])["generator_args"] == {"n_blocks": 1}


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_format_direction_and_overwrite_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_checkpoint(tmp_path / "c.ckpt", "cyclegan")
    base = ["export", "--checkpoint", str(ckpt), "--output"]
    assert "model.bin: .bin names no export format" in _error(capsys, [*base, str(tmp_path / "model.bin")])
    assert "--format onnx does not match --output" in _error(capsys, [*base, str(tmp_path / "g.pt"), "--format", "onnx"])
    assert "--direction both is only for .safetensors" in _error(capsys, [*base, str(tmp_path / "g.onnx"), "--direction", "both"])
    assert "has 2 generators and a TorchScript file holds one: pass --direction AtoB or BtoA" in _error(
        capsys, [*base, str(tmp_path / "g.pt")])
    # never overwritten without --overwrite; replaced (atomically: no temp file left beside it) with it
    target = tmp_path / "g.pt"
    target.write_bytes(b"keep me")
    assert "already exists; pass --overwrite" in _error(capsys, [*base, str(target), "--direction", "AtoB", "--format", "torchscript"])
    assert target.read_bytes() == b"keep me"
    assert main([*base, str(target), "--direction", "AtoB", "--overwrite"]) == 0
    assert "(TorchScript, " in capsys.readouterr().out and target.read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt", "g.pt"]


def test_without_the_onnx_extra_onnx_export_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = write_checkpoint(tmp_path / "c.ckpt", "cut")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now raises ImportError
    line = _error(capsys, ["export", "--checkpoint", str(ckpt), "--output", str(tmp_path / "g.onnx")])
    assert line == f"error: {ONNX_EXTRA_HINT}"
    assert not (tmp_path / "g.onnx").exists()
    # the other formats do not need it
    assert export_model(ckpt, tmp_path / "g.pt").directions == ["AtoB"]


def test_every_export_goes_through_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gan_translate.artifacts.export as export_module

    written: list[Path] = []
    real = export_module.atomic_write

    def recording(path: Path, *args: Any, **kwargs: Any) -> Any:
        written.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(export_module, "atomic_write", recording)
    ckpt = write_checkpoint(tmp_path / "c.ckpt", "pix2pix")
    for name in ("g.pt", "g.safetensors"):
        export_model(ckpt, tmp_path / name)
    assert written == [tmp_path / "g.pt", tmp_path / "g.safetensors"]


def test_a_network_onnx_cannot_export_for_every_size_is_one_line() -> None:
    from gan_translate.artifacts.portable import PortableGenerator, onnx_bytes
    from gan_translate.core.errors import UserError

    class OneSize(torch.nn.Module):
        """Adds a fixed 2x3x8x12 tensor: only that input shape broadcasts, so no axis can stay dynamic."""

        size_multiple = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.ones(2, 3, 8, 12)

    with pytest.raises(UserError, match=r"^torch\.onnx cannot export this OneSize for any image size \(Constraints violated"):
        onnx_bytes(PortableGenerator(OneSize(), 4, 8, 3, 3))


# ----------------------------------------------------------------------------- UNSB: the bridge inside the file

@pytest.fixture(scope="module")
def unsb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny UNSB (3 bridge steps) and its ONNX, TorchScript and safetensors exports, through the command line."""
    folder = tmp_path_factory.mktemp("portable-unsb")
    torch.manual_seed(0)
    model = TINY["unsb"].build("unsb", tau=0.5)  # noise large enough to matter in every output
    with torch.no_grad():  # spread out as write_checkpoint does: an untrained bridge's outputs sit near 0
        for name, parameter in model.named_parameters():
            if name.startswith("generator") and parameter.dim() == 4:
                parameter.normal_(0.0, 0.5 / parameter[0].numel() ** 0.5)
    checkpoint = folder / "unsb.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "gan_translate": {"model": "unsb", "version": "test"}, "epoch": 0, "global_step": 0}, checkpoint)
    files = {"checkpoint": checkpoint}
    for suffix in ("onnx", "pt", "safetensors"):
        files[suffix] = folder / f"unsb.{suffix}"
        assert main(["export", "--checkpoint", str(checkpoint), "--output", str(files[suffix])]) == 0
    return files


def _bridge_reference(checkpoint: Path, batch: np.ndarray, seed: int) -> np.ndarray:
    return load_translator(checkpoint, device="cpu", settings={"seed": seed}).translate_batch(torch.from_numpy(batch)).numpy()


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*deprecated:FutureWarning")  # still the way to load one
def test_unsb_files_run_the_bridge_with_its_noise_as_inputs(unsb_files: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    import onnxruntime

    from gan_translate.nn.schrodinger import bridge_noise

    graph = onnx.load(unsb_files["onnx"])
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["inputs"] == "image, latents, noise" and "bridge_noise" in props["input_noise"]
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    latent_dim = shapes["latents"][2]
    assert shapes == {"image": ["batch", 3, "height", "width"], "latents": [3, 1, latent_dim],
                      "noise": [2, 1, 3, "padded_height", "padded_width"]}
    session = onnxruntime.InferenceSession(str(unsb_files["onnx"]), providers=["CPUExecutionProvider"])
    program = torch.jit.load(str(unsb_files["pt"]))
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, 29, 31)).astype(np.float32)  # padded to 32 x 32 inside
    for seed in (0, 7):
        reference = _bridge_reference(unsb_files["checkpoint"], batch, seed)
        assert reference.std() > 0.05, "a flat reference would let a wrong file pass"
        # what translate --seed draws, at the padded size: the files then give translate's result
        latents, noise = (t.numpy() for t in bridge_noise(3, 3, 32, 32, latent_dim, seed))
        by_onnx = session.run(["translated"], {"image": batch, "latents": latents, "noise": noise})[0]
        by_script = program(torch.from_numpy(batch), torch.from_numpy(latents), torch.from_numpy(noise)).numpy()
        alone = session.run(["translated"], {"image": batch[1:2], "latents": latents, "noise": noise})[0]
        assert by_onnx.shape == by_script.shape == batch.shape
        assert np.abs(by_onnx - reference).max() < 1e-4 and np.abs(by_script - reference).max() < 1e-4
        assert np.abs(alone[0] - reference[1]).max() < 1e-4  # each image of a batch as alone
    other_noise = [t.numpy() for t in bridge_noise(3, 3, 32, 32, latent_dim, 1)]
    assert np.abs(session.run(["translated"], {"image": batch, "latents": other_noise[0], "noise": other_noise[1]})[0]
                  - reference).max() > 1e-3  # the inputs are used
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    torch.jit.load(str(unsb_files["pt"]), _extra_files=extra)
    assert json.loads(extra[TORCHSCRIPT_METADATA_FILE])["inputs"] == "image, latents, noise"


def test_unsb_safetensors_rebuilds_the_same_bridge(unsb_files: dict[str, Path]) -> None:
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 3, 45, 37)).astype(np.float32)
    for settings in ({}, {"steps": 2, "seed": 5}):
        expected = load_translator(unsb_files["checkpoint"], device="cpu", settings=settings)
        rebuilt = load_translator(unsb_files["safetensors"], device="cpu", settings=settings)
        np.testing.assert_array_equal(rebuilt.translate_batch(torch.from_numpy(batch)).numpy(),
                                      expected.translate_batch(torch.from_numpy(batch)).numpy())
