"""``--trainer.precision auto``: what it resolves to on mocked hardware, and a real tiny fit that records it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from gan_translate.core import hardware as auto  # where the CPU flags are read
from gan_translate.training.precision import AutoPrecisionTrainer, cpu_flags, resolve_auto_precision
from tests.helpers import fit, tiny_cyclegan_args

# A /proc/cpuinfo "flags" line of a Zen 4 core (AVX512-BF16, no AMX) and of an AVX-512 CPU without bf16 (Skylake-X).
ZEN4 = "fpu sse2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SKYLAKE_X = "fpu sse2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni"
SAPPHIRE_RAPIDS = SKYLAKE_X + " amx_bf16 amx_tile amx_int8"


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text("".join(f"processor\t: {i}\nmodel name\t: test\nflags\t\t: {flags}\n\n" for i in range(2)))
    return path


@pytest.mark.parametrize(("flags", "expected", "reason"), [
    (ZEN4, "bf16-mixed", "this CPU has AVX512-BF16"),
    (SAPPHIRE_RAPIDS, "bf16-mixed", "this CPU has AMX-BF16"),
    (SKYLAKE_X, "32-true", "this CPU has no AVX512-BF16/AMX"),
    ("", "32-true", "this CPU has no AVX512-BF16/AMX"),
])
def test_cpu_resolution_follows_the_bf16_flags(flags: str, expected: str, reason: str, tmp_path: Path) -> None:
    parsed = cpu_flags(_cpuinfo(tmp_path, flags))
    assert parsed == frozenset(flags.split())
    choice = resolve_auto_precision("cpu", flags=parsed)
    assert (choice.precision, choice.reason) == (expected, reason)
    assert choice.line() == f"precision auto -> {expected} ({reason})"


def test_cpu_flags_of_a_machine_without_cpuinfo(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") == frozenset()  # macOS, Windows: fp32
    assert resolve_auto_precision("cpu", flags=frozenset()).precision == "32-true"


def test_cpu_bf16_flags_without_onednn_stay_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    choice = resolve_auto_precision("cpu", flags=ZEN4.split())
    assert choice.precision == "32-true" and "oneDNN" in choice.reason


def _mock_cuda(monkeypatch: pytest.MonkeyPatch, capabilities: list[tuple[int, int]], bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: capabilities[i])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"GPU{i}")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)


@pytest.mark.parametrize("accelerator", ["auto", "gpu", "cuda"])
def test_cuda_with_bf16_resolves_to_bf16_mixed(accelerator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _mock_cuda(monkeypatch, [(9, 0), (8, 0)])
    choice = resolve_auto_precision(accelerator, flags=())
    assert choice.precision == "bf16-mixed" and "compute capability 9.0" in choice.reason


@pytest.mark.parametrize(("capabilities", "bf16", "why"), [
    ([(7, 5)], True, "compute capability 7.5"),          # Turing: bf16 emulated
    ([(8, 6), (7, 0)], True, "CUDA device 1"),          # one slow device slows every step of a DDP run
    ([(8, 0)], False, "is_bf16_supported"),
])
def test_cuda_without_fast_bf16_stays_fp32(capabilities: list[tuple[int, int]], bf16: bool, why: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _mock_cuda(monkeypatch, capabilities, bf16)
    choice = resolve_auto_precision("auto", flags=ZEN4.split())  # the CPU's flags do not matter on a GPU run
    assert choice.precision == "32-true" and why in choice.reason


def test_cpu_accelerator_ignores_a_present_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _mock_cuda(monkeypatch, [(9, 0)])
    assert resolve_auto_precision("cpu", flags=SKYLAKE_X.split()).precision == "32-true"


def test_auto_without_a_gpu_judges_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_auto_precision("auto", flags=ZEN4.split()).precision == "bf16-mixed"
    assert resolve_auto_precision("auto", flags=SKYLAKE_X.split()).precision == "32-true"


@pytest.mark.parametrize(("flags", "expected"), [(ZEN4, "bf16-mixed"), (SKYLAKE_X, "32-true")])
def test_trainer_built_from_python_resolves_auto(flags: str, expected: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(auto, "cpu_flags", lambda: frozenset(flags.split()))
    trainer = AutoPrecisionTrainer(precision="auto", accelerator="cpu", logger=False, enable_checkpointing=False,
                                   default_root_dir=tmp_path)
    assert trainer.precision == expected
    assert AutoPrecisionTrainer(precision="32", accelerator="cpu", logger=False, default_root_dir=tmp_path).precision == "32-true"


def test_fit_with_precision_auto_records_the_choice(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A real CLI fit on this machine's CPU: the chosen precision trains, and the saved config and W&B say which."""
    from gan_translate.training.loggers import WandbLogger

    logged: list[dict[str, Any]] = []
    original = WandbLogger.log_hyperparams

    def recording(self: WandbLogger, params: Any, *args: Any, **kwargs: Any) -> None:
        logged.append(dict(params) if isinstance(params, dict) else {})
        original(self, params, *args, **kwargs)

    monkeypatch.setattr(WandbLogger, "log_hyperparams", recording)
    expected = resolve_auto_precision("cpu")  # whatever this CPU is: CI machines differ
    fit([*tiny_cyclegan_args(synthetic_root, tmp_path, epochs=1, batches=2), "--trainer.limit_val_batches", "0",
         "--model.sample_every_n_steps", "0", "--trainer.precision", "auto"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("precision auto")]
    assert lines == [expected.line()]  # printed once
    saved = [p for p in tmp_path.rglob("config.yaml") if "wandb" not in p.parts]
    assert len(saved) == 1
    assert yaml.safe_load(saved[0].read_text())["trainer"]["precision"] == expected.precision
    assert {"trainer/precision": expected.precision, "trainer/precision_requested": "auto",
            "trainer/precision_reason": expected.reason}.items() <= {k: v for d in logged for k, v in d.items()}.items()
    # ...and the config update reached the offline W&B run's file.
    (run_file,) = tmp_path.rglob("offline-run-*/run-*.wandb")
    assert b"trainer/precision_requested" in run_file.read_bytes()


@pytest.mark.parametrize(("device", "capabilities", "flags", "expected", "why"), [
    ("cuda", [(9, 0)], SKYLAKE_X, "bf16", "compute capability 9.0"),   # the GPU decides, not the CPU
    ("cuda", [(7, 5)], ZEN4, "fp32", "compute capability 7.5"),
    ("cpu", [(9, 0)], ZEN4, "bf16", "this CPU has AVX512-BF16"),      # a CPU run ignores a present GPU
    ("cpu", [], SKYLAKE_X, "fp32", "no AVX512-BF16/AMX"),
    ("mps", [], ZEN4, "fp32", "not measured"),
])
def test_inference_auto_is_training_auto_in_inference_names(device: str, capabilities: list[tuple[int, int]], flags: str,
                                                            expected: str, why: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """translate / serve --precision auto: the same judgement as training's, as bf16 / fp32 autocast."""
    from gan_translate.core.errors import UserError
    from gan_translate.inference.translator import resolve_inference_precision

    _mock_cuda(monkeypatch, capabilities)
    monkeypatch.setattr(auto, "cpu_flags", lambda: frozenset(flags.split()))
    precision, reason = resolve_inference_precision("auto", torch.device(device))
    assert precision == expected and why in reason
    assert resolve_inference_precision("fp16", torch.device(device)) == ("fp16", "")  # named: as given, no reason
    with pytest.raises(UserError, match="precision must be auto or one of fp32, bf16, fp16, got 'half'"):
        resolve_inference_precision("half", torch.device(device))
