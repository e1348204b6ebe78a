"""Mixed precision and the speed switches (channels-last, torch.compile) against the default fp32 path.

* ``--trainer.precision bf16-mixed`` trains every model on CPU with finite losses, and its first step's
  losses (same weights, same batch) match fp32 to bf16 accuracy.
* ``16-mixed``: Lightning refuses fp16 AMP on CPU (it falls back to bf16), so the GradScaler logic with two
  optimisers is checked here with Lightning's own ``MixedPrecision("16-mixed", "cpu")`` plugin: each
  ``opt.step()`` goes through the plugin (unscale, inf check, step or skip, update), an overflowing generator
  step is skipped while the discriminator's still happens. On a GPU a real ``16-mixed`` run is also trained.
* ``PerformanceOptions(channels_last=True)`` and ``(compile=True)``: same outputs as the default path for
  the same weights and inputs, and a few training steps stay close.

Tolerances: channels-last and compile only reorder float sums: 1e-5 on outputs of a fresh network. After
training steps, Adam divides by sqrt(v): a gradient that is 0 up to rounding (the biases before a non-affine
instance norm) moves by +-lr whatever its sign noise, so parameters are compared without those, with the
bounds measured in tests/test_distributed.py (max 1e-4, mean 1e-6 after two batches).
"""

from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.precision import MixedPrecision

from gan_translate.callbacks.performance import (
    PerformanceOptions,
    batch_to_channels_last,
    compile_networks,
    networks,
)
from gan_translate.data.datamodules import UnpairedDataModule
from gan_translate.data.options import ImageTransform
from gan_translate.models import MODELS as MODEL_CLASSES
from gan_translate.models import CycleGAN
from gan_translate.nn.distillation import FeatureAdapters
from tests.helpers import CONFIGS, fit
from tests.tiny import TINY
from tests.training.test_distributed import (
    PARAM_MAX_ATOL,
    PARAM_MEAN_ATOL,
    _bias_before_instance_norm,
)

#: The models of these tests (those with precision settings in tests/tiny.py).
MODELS = tuple(name for name, tiny in TINY.items() if tiny.precision is not None)
FORWARD_TOL = {"atol": 1e-5, "rtol": 1e-4}
# After training steps: the bounds of tests/test_distributed.py (measured there: float-reordering noise stays
# 10x below them, a 5% learning-rate change or other data lands 10-100x above).
TRAINED_TOL = {"atol": PARAM_MAX_ATOL, "rtol": 0.0}
# bf16 keeps 8 bits of mantissa (~0.4% per rounding); a loss is a mean of many rounded terms.
BF16_LOSS_RTOL = 0.05


class TrainingRecord(Callback):
    """Test-only: saves the first batch's logged losses, every batch's, and the weights before and after."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.losses: list[dict[str, float]] = []
        self.initial: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.initial = {k: v.detach().float().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append({k: float(v) for k, v in trainer.callback_metrics.items()
                            if k.startswith("train/") and not k.endswith("_epoch") and "/lr_" not in k})

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        final = {k: v.detach().float().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save({"losses": self.losses, "initial": self.initial, "final": final}, self.path)


def _args(model: str, data: Path, run_dir: Path) -> list[str]:
    args = TINY[model].synthetic_args(data, run_dir, epochs=1, batches=2)
    return [*args, "--trainer.limit_val_batches", "0", "--model.sample_every_n_steps", "0"]


def _train(model: str, data: Path, run_dir: Path, *extra: str) -> dict[str, Any]:
    """Fit ``model`` for 2 batches through the CLI with ``extra`` options; the TrainingRecord's contents."""
    record = run_dir / "record.pt"
    fit([*_args(model, data, run_dir), *extra,
         "--trainer.callbacks+=tests.callbacks.test_precision.TrainingRecord", f"--trainer.callbacks.path={record}"])
    return torch.load(record, weights_only=False)


@pytest.fixture(scope="module")
def fp32_runs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The default-path reference run of each model (fp32, contiguous, eager)."""
    return {model: _train(model, synthetic_root, tmp_path_factory.mktemp(f"fp32_{model}")) for model in MODELS}


def _live(state: dict[str, torch.Tensor], model: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    dead = _bias_before_instance_norm(model) if model is not None else set()
    return {k: v for k, v in state.items() if k not in dead and v.is_floating_point()}


# ----------------------------------------------------------------------------- bf16-mixed

@pytest.mark.parametrize("model", MODELS)
def test_bf16_mixed_trains_every_model(model: str, fp32_runs: dict, synthetic_root: Path, tmp_path: Path) -> None:
    run = _train(model, synthetic_root, tmp_path, "--trainer.precision", "bf16-mixed")
    assert len(run["losses"]) == 2
    for step in run["losses"]:
        assert step and all(torch.isfinite(torch.tensor(v)) for v in step.values()), step
    assert all(torch.isfinite(v).all() for v in run["final"].values())
    changed = [k for k, v in run["final"].items() if v.is_floating_point() and not torch.equal(v, run["initial"][k])]
    generators = ("generator", *MODEL_CLASSES.get(model).translators.values())  # by attribute (Distill's: student)
    assert any(name in k for k in changed for name in generators) and any("discriminator" in k for k in changed)
    # Same initial weights and first batch as the fp32 run (same seed): the losses agree to bf16 accuracy.
    reference = fp32_runs[model]
    assert all(torch.equal(v, reference["initial"][k]) for k, v in run["initial"].items())
    for key, value in reference["losses"][0].items():
        if key.endswith(("d_acc_real", "d_acc_fake")):  # thresholded: may flip for a logit near 0
            continue
        assert run["losses"][0][key] == pytest.approx(value, rel=BF16_LOSS_RTOL, abs=1e-3), key


# ----------------------------------------------------------------------------- 16-mixed (GradScaler)

def _tiny_cyclegan() -> CycleGAN:
    return CycleGAN(**{**TINY["cyclegan"].kwargs, **TINY["cyclegan"].precision.overrides})


def _data(root: Path) -> UnpairedDataModule:
    return UnpairedDataModule(root=str(root), transform=ImageTransform(load_size=32, crop_size=32), batch_size=2, num_workers=0)


def _trainer(tmp_path: Path, batches: int, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(accelerator=kwargs.pop("accelerator", "cpu"), devices=1, max_epochs=1, limit_train_batches=batches,
                      limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


class ScalerProbe(Callback):
    """Records, for every optimiser step, the loss scale, the scaler's inf verdict and whether the weights moved.

    ``on_before_optimizer_step`` runs inside the precision plugin after ``scaler.unscale_`` and before
    ``scaler.step``, so its presence for every step proves ``opt.step()`` went through the plugin. The first
    generator backward is forced to overflow (inf gradients), so a skipped step is always exercised.
    """

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._pending: tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]] | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        calls: list[int] = []

        def overflow_once(grad: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return torch.full_like(grad, float("inf")) if len(calls) == 1 else grad

        pl_module.generator_ab.model[1].weight.register_hook(overflow_once)

    def _resolve(self) -> None:
        if self._pending is not None:
            record, params, before = self._pending
            record["moved"] = any(not torch.equal(p, b) for p, b in zip(params, before))
            self.steps.append(record)
            self._pending = None

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._resolve()
        scaler = trainer.precision_plugin.scaler
        state = scaler._per_optimizer_states[id(optimizer)]
        found_inf = sum(v.item() for v in state["found_inf_per_device"].values()) > 0
        index = [o is optimizer for o in trainer.optimizers].index(True)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        record = {"optimizer": index, "scale": scaler.get_scale(), "found_inf": found_inf}
        self._pending = (record, params, [p.detach().clone() for p in params])

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._resolve()
        self.final_scale = trainer.precision_plugin.scaler.get_scale()


def test_fp16_grad_scaler_steps_each_optimiser_and_skips_an_overflow(synthetic_root: Path, tmp_path: Path) -> None:
    model = _tiny_cyclegan()
    probe = ScalerProbe()
    plugin = MixedPrecision("16-mixed", device="cpu")  # Lightning's own fp16 AMP plugin, with a GradScaler
    _trainer(tmp_path, batches=4, plugins=[plugin], callbacks=[probe]).fit(model, datamodule=_data(synthetic_root))
    steps = probe.steps
    # Every opt.step() of the manual loop went through the plugin: G then D, for each of the 4 batches.
    assert [s["optimizer"] for s in steps] == [0, 1] * 4
    assert steps[0]["found_inf"]  # the forced overflow
    scales = [s["scale"] for s in steps] + [probe.final_scale]
    for step, next_scale in zip(steps, scales[1:]):
        # An optimiser with inf gradients is skipped and the update right after its step halves the scale
        # (before the other optimiser's backward); a finite one steps and keeps the scale.
        assert step["moved"] == (not step["found_inf"]), step
        assert next_scale == (step["scale"] / 2 if step["found_inf"] else step["scale"]), step
    assert any(s["moved"] for s in steps if s["optimizer"] == 0)  # the generator did learn later
    assert any(s["moved"] for s in steps if s["optimizer"] == 1)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 AMP (16-mixed) needs a CUDA GPU; CPU falls back to bf16")
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_on_gpu(precision: str, synthetic_root: Path, tmp_path: Path) -> None:
    model = _tiny_cyclegan()
    trainer = _trainer(tmp_path, batches=4, accelerator="cuda", precision=precision)
    trainer.fit(model, datamodule=_data(synthetic_root))
    losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses


# ----------------------------------------------------------------------------- optimisers

@pytest.mark.parametrize("model", MODELS)
def test_adam_takes_the_hyperparameters_and_torch_default_kernel_on_cpu(model: str) -> None:
    module = _fresh(model)
    module.hparams.lr, module.hparams.beta1 = 3e-4, 0.7
    optimizers = module.configure_optimizers()
    optimizers = optimizers[0] if isinstance(optimizers, tuple) else optimizers
    assert len(optimizers) == TINY[model].precision.optimizers
    owned = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
    assert owned == {id(p) for p in module.parameters()}  # every network weight is optimised, once
    for opt in optimizers:
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"][0], group["betas"][1]) == (3e-4, 0.7, module.hparams.beta2)
        assert not group["fused"]  # CPU: torch's default implementation


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fused Adam is chosen on CUDA only")
@pytest.mark.parametrize("model", MODELS)
def test_adam_is_fused_on_gpu_and_matches_the_default_kernel(model: str) -> None:
    module = _fresh(model).cuda()
    optimizers = module.configure_optimizers()
    optimizers = optimizers[0] if isinstance(optimizers, tuple) else optimizers
    assert all(opt.param_groups[0]["fused"] for opt in optimizers)
    # Same updates as torch's foreach Adam (the classic code's), to float rounding.
    params = list(module.parameters())
    twins = [p.detach().clone().requires_grad_() for p in params]
    fused = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), fused=True)
    default = torch.optim.Adam(twins, lr=2e-4, betas=(0.5, 0.999))
    generator = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(3):
        for a, b in zip(params, twins):
            grad = torch.randn(a.shape, device="cuda", generator=generator)
            a.grad, b.grad = grad.clone(), grad.clone()
        fused.step()
        default.step()
    for a, b in zip(params, twins):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------- channels-last / compile

def _fresh(model: str) -> torch.nn.Module:
    """``model`` as tests/tiny.py's precision settings build it, from seed 0."""
    torch.manual_seed(0)
    return TINY[model].build(model, **TINY[model].precision.overrides)


def _forward_all(module: torch.nn.Module, channels_last: bool = False) -> list[torch.Tensor]:
    """Every network of ``module`` on fixed inputs (train mode: batch statistics, as in a training step)."""
    inputs = torch.rand(2, 12, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    outputs = []
    for name, net in networks(module):
        extra: list[torch.Tensor] = []
        if name == "generator" and hasattr(module, "fixed_noise"):
            x = torch.randn(2, module.hparams.latent_dim, generator=torch.Generator().manual_seed(2))
        else:
            convolutions = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
            if not convolutions:
                continue  # PatchNCE's MLP heads (CUT, UNSB) take sampled feature vectors, not images
            if isinstance(net, FeatureAdapters):  # Distill's 1x1 maps take (student, teacher) activations: their loss
                draw = torch.Generator().manual_seed(4)
                pairs = [(torch.randn(2, m.in_channels, 8, 8, generator=draw),
                          torch.randn(2, m.out_channels, 8, 8, generator=draw)) for m in net.maps]
                if channels_last:
                    pairs = [(batch_to_channels_last(s), batch_to_channels_last(t)) for s, t in pairs]
                outputs.append(net([s for s, _ in pairs], [t for _, t in pairs]).float())
                continue
            x = inputs[:, :convolutions[0].in_channels]
            x = batch_to_channels_last(x) if channels_last else x
            # time-conditioned networks (UNSB's) also take the bridge step, and its generator a latent
            conditions = inspect.signature(net.forward).parameters
            if "step" in conditions:
                extra.append(torch.full((2,), 1, dtype=torch.long))
            if "z" in conditions:
                extra.append(torch.randn(2, net.latent_dim, generator=torch.Generator().manual_seed(3)))
        outputs.append(net(x, *extra).float())
    return outputs


@pytest.mark.parametrize("model", MODELS)
def test_channels_last_forward_matches_default(model: str) -> None:
    default = _fresh(model)
    converted = copy.deepcopy(default).to(memory_format=torch.channels_last)
    assert converted.state_dict().keys() == default.state_dict().keys()
    for a, b in zip(_forward_all(default), _forward_all(converted, channels_last=True)):
        torch.testing.assert_close(b, a, **FORWARD_TOL)


@pytest.mark.parametrize("model", [name for name in MODELS if TINY[name].precision.channels_last_training])
def test_channels_last_training_stays_close(model: str, fp32_runs: dict, synthetic_root: Path, tmp_path: Path) -> None:
    run = _train(model, synthetic_root, tmp_path, "--trainer.callbacks+=gan_translate.callbacks.PerformanceOptions",
                 "--trainer.callbacks.channels_last=true")
    reference = fp32_runs[model]
    net = _fresh(model)
    a, b = _live(run["final"], net), _live(reference["final"], net)
    _assert_close_after_training(a, b)


def _assert_close_after_training(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=lambda m, key=key: f"{key}: {m}", **TRAINED_TOL)
    assert float(torch.cat([(a[k] - b[k]).abs().flatten() for k in a]).mean()) < PARAM_MEAN_ATOL


def test_compile_switch_keeps_names_and_matches_default(synthetic_root: Path, tmp_path: Path) -> None:
    """The compile plumbing (in place, names kept, trains) with the cheap aot_eager backend."""
    default = _fresh("cyclegan")
    compiled = copy.deepcopy(default)
    names = compile_networks(compiled, backend="aot_eager")
    assert set(names) == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    assert compiled.state_dict().keys() == default.state_dict().keys()
    for a, b in zip(_forward_all(default), _forward_all(compiled)):
        torch.testing.assert_close(b, a, **FORWARD_TOL)
    # Two training steps through the callback, against two plain ones from the same weights and data.
    runs = []
    for options in ([], [PerformanceOptions(compile=True, compile_backend="aot_eager")]):
        torch.manual_seed(0)
        module = copy.deepcopy(default)
        _trainer(tmp_path, batches=2, callbacks=options).fit(module, datamodule=_data(synthetic_root))
        runs.append(_live(module.state_dict(), module))
    _assert_close_after_training(runs[1], runs[0])


@pytest.mark.slow
def test_inductor_compiled_generator_matches_default() -> None:
    """The real backend (C++ code generation: ~20-60 s on a 2-core CPU, hence slow)."""
    default = _fresh("cyclegan")
    compiled = copy.deepcopy(default)
    compile_networks(compiled)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(compiled.generator_ab(images), default.generator_ab(images), **FORWARD_TOL)


# Compiled (inductor) against eager training: the same first-step losses up to float reordering, and later steps
# within 1e-3 relative (Adam's division by sqrt(v) amplifies the reordering noise of near-zero gradients, above).
COMPILED_LOSS_TOL = {"rel": 1e-3, "abs": 1e-4}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("GAN_TRANSLATE_COMPILE_TESTS"),
                    reason="inductor compiles 4 networks forward and backward: ~8 min on a 2-core CPU, past the suite's "
                           "budget; set GAN_TRANSLATE_COMPILE_TESTS=1 (benchmarks/gpu_suite.sh check does)")
def test_inductor_compiled_training_gives_the_eager_losses(synthetic_root: Path, tmp_path: Path) -> None:
    """A tiny CycleGAN trained 3 steps with PerformanceOptions(compile=True) and the real inductor backend (C++
    code generation: minutes of compilation on a 2-core CPU, 500 s measured under load: hence slow) logs the losses of the eager run."""
    default = _fresh("cyclegan")
    runs = []
    for name, options in (("eager", []), ("compiled", [PerformanceOptions(compile=True)])):
        torch.manual_seed(0)
        module = copy.deepcopy(default)
        record = TrainingRecord(str(tmp_path / f"{name}.pt"))
        _trainer(tmp_path / name, batches=3, callbacks=[*options, record], log_every_n_steps=1).fit(
            module, datamodule=_data(synthetic_root))
        runs.append(torch.load(tmp_path / f"{name}.pt", weights_only=False))
    eager, compiled = runs
    assert len(eager["losses"]) == len(compiled["losses"]) == 3
    for step, (a, b) in enumerate(zip(eager["losses"], compiled["losses"])):
        assert a.keys() == b.keys() and a, step
        for key in a:
            assert b[key] == pytest.approx(a[key], **COMPILED_LOSS_TOL), (step, key)
    changed = [k for k, v in compiled["final"].items() if v.is_floating_point() and not torch.equal(v, compiled["initial"][k])]
    assert any("generator" in k for k in changed) and any("discriminator" in k for k in changed)


# ----------------------------------------------------------------------------- inference options

def test_translator_precision_and_channels_last_options() -> None:
    from gan_translate.core.errors import UserError
    from gan_translate.inference.translator import Translator, prepare_for_inference

    cpu = torch.device("cpu")
    network = _fresh("cyclegan").inference_network("AtoB")
    images = torch.rand(2, 3, 36, 40, generator=torch.Generator().manual_seed(4)) * 2 - 1  # padded to 4s inside

    def translator(net: torch.nn.Module, **options: Any) -> Translator:
        return Translator(network=net, device=cpu, size_multiple=4, in_channels=3, model_name="cyclegan",
                          direction="AtoB", **options)

    reference = translator(network).translate_batch(images)
    assert reference.shape == images.shape and reference.dtype == torch.float32
    converted, channels_last = prepare_for_inference(copy.deepcopy(network), cpu, channels_last=True)
    assert channels_last
    torch.testing.assert_close(translator(converted, channels_last=True).translate_batch(images), reference, **FORWARD_TOL)
    # bf16 autocast: same image to bf16 accuracy (8 mantissa bits), returned as fp32.
    bf16 = translator(network, precision="bf16").translate_batch(images)
    assert bf16.dtype == torch.float32
    assert (bf16 - reference).abs().mean() < 0.02 and (bf16 - reference).abs().max() < 0.2
    with pytest.raises(UserError, match="precision"):
        translator(network, precision="int8").translate_batch(images)


def test_the_0_1_class_path_of_performance_options_still_works(capsys: pytest.CaptureFixture) -> None:
    from gan_translate.cli import main
    from gan_translate.perf import PerformanceOptions as OldPath

    assert OldPath is PerformanceOptions
    with pytest.raises(SystemExit) as printed:  # --print_config prints, then exits 0 (LightningCLI)
        main(["fit", "--config", str(CONFIGS / "cyclegan" / "quickstart.yaml"), "--print_config",
              "--trainer.callbacks+=gan_translate.perf.PerformanceOptions", "--trainer.callbacks.channels_last=true"])
    assert printed.value.code == 0
    assert "class_path: gan_translate.perf.PerformanceOptions" in capsys.readouterr().out
