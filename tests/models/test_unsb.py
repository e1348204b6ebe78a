"""UNSB (models/unsb.py, nn/schrodinger.py): the bridge's time grid and step against the paper's formulas, the
simulation without a graph, the energy and SB losses, one step of each optimiser, exact resume, the bridge translator's
seeds and steps, and one-line refusals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gan_translate.core.errors import CapabilityError, UserError
from gan_translate.losses import energy_loss, schrodinger_bridge_loss
from gan_translate.models import UNSB
from gan_translate.nn.schrodinger import BridgeTranslator, bridge_step, bridge_time_grid
from tests.helpers import fit, load_raw
from tests.tiny import TINY


def _model(**overrides: object) -> UNSB:
    torch.manual_seed(0)
    return TINY["unsb"].build("unsb", **overrides)  # type: ignore[return-value]


def _images(n: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- the bridge's arithmetic ---------------------------------------------------------------------------------------
def test_time_grid_is_the_papers() -> None:
    """t_0 = 0; then harmonic increments 1, 1/2, ..., 1/(T-1), normalised and squeezed into [1/2, 1]."""
    harmonic = [0.0, 1.0, 1.5, 1.5 + 1 / 3, 1.5 + 1 / 3 + 0.25]  # cumulative sums for T = 5
    expected = [0.0] + [0.5 + 0.5 * h / harmonic[-1] for h in harmonic]
    torch.testing.assert_close(bridge_time_grid(5), torch.tensor(expected, dtype=torch.float64))
    assert bridge_time_grid(5)[1].item() == 0.5 and bridge_time_grid(5)[-1].item() == 1.0
    torch.testing.assert_close(bridge_time_grid(2), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(bridge_time_grid(1), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(UserError, match="at least one step"):
        bridge_time_grid(0)


def test_bridge_step_is_the_brownian_bridge_between_the_state_and_the_prediction() -> None:
    times = bridge_time_grid(5)
    state = torch.full((1, 1, 2, 2), 0.8)
    endpoint = torch.full((1, 1, 2, 2), -0.4)
    noise = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    tau = 0.01
    for step in (1, 2, 4):
        t_prev, t_next = float(times[step - 1]), float(times[step])
        ratio = (t_next - t_prev) / (1.0 - t_prev)
        std = math.sqrt(tau * (t_next - t_prev) * (1.0 - ratio))
        expected = (1 - ratio) * 0.8 + ratio * -0.4 + std * noise
        torch.testing.assert_close(bridge_step(state, endpoint, times, step, tau, noise), expected)
    # the first step goes half way, t = 0 -> 0.5: r = 0.5, variance tau * 0.5 * 0.5
    torch.testing.assert_close(bridge_step(state, endpoint, times, 1, tau, noise), 0.2 + 0.05 * noise)
    with pytest.raises(ValueError, match="1 <= step < 5"):
        bridge_step(state, endpoint, times, 5, tau, noise)


def test_the_simulation_builds_no_graph_and_reaches_the_drawn_step() -> None:
    model = _model()
    images = _images(2)
    model.train()
    state = model.simulate(images, 0)
    assert torch.equal(state, images)  # t_0 is the image itself
    torch.manual_seed(3)
    state = model.simulate(images, 2)
    assert state.grad_fn is None and not state.requires_grad
    assert model.generator.training, "the generator's mode is restored after simulating"
    assert all(p.grad is None for p in model.generator.parameters())
    # by hand: two generator passes and two bridge steps with the same random stream
    torch.manual_seed(3)
    with torch.no_grad():
        model.generator.eval()
        x, steps = images, lambda j: torch.full((2,), j, dtype=torch.long)
        endpoint = model.generator(x, steps(0), torch.randn(2, model.generator.latent_dim))
        x = bridge_step(x, endpoint, model.bridge_times, 1, model.hparams.tau, torch.randn_like(x))
        endpoint = model.generator(x, steps(1), torch.randn(2, model.generator.latent_dim))
        x = bridge_step(x, endpoint, model.bridge_times, 2, model.hparams.tau, torch.randn_like(x))
    torch.testing.assert_close(state, x)


# --- losses ------------------------------------------------------------------------------------------------------------
def test_the_energy_loss_is_lowest_when_matched_pairs_score_highest() -> None:
    high, low = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)
    matched_best = energy_loss(matched=high, contrast=low)
    swapped = energy_loss(matched=low, contrast=high)
    indifferent = energy_loss(matched=low, contrast=low)
    assert matched_best < indifferent < swapped
    # by hand: -mean(matched) + L + L^2 with L = log(sum(exp(contrast))) over all 18 patch scores
    log_normaliser = math.log(18 * math.exp(-2.0))
    assert energy_loss(high, low).item() == pytest.approx(-2.0 + log_normaliser + log_normaliser**2, rel=1e-6)


def test_the_energy_network_learns_to_tell_matched_pairs() -> None:
    """A few Adam steps on E's loss: matched (x_t, x_1) pairs end up scored above pairs with the other batch's."""
    model = _model()
    state, other = _images(2, seed=1), _images(2, seed=2)
    endpoint, other_endpoint = -state.flip(3), -other.flip(3)
    steps = torch.zeros(2, dtype=torch.long)
    pair, contrast = torch.cat([state, endpoint], 1), torch.cat([other, other_endpoint], 1)
    optimizer = torch.optim.Adam(model.energy.parameters(), lr=1e-3)

    def scores() -> tuple[torch.Tensor, torch.Tensor]:
        return model.energy(pair, steps, pair), model.energy(pair, steps, contrast)

    first = energy_loss(*scores()).item()
    for _ in range(30):
        optimizer.zero_grad()
        energy_loss(*scores()).backward()
        optimizer.step()
    matched, mixed = scores()
    assert energy_loss(matched, mixed).item() < first
    assert matched.mean() > mixed.mean()


def test_the_sb_loss_is_the_weighted_transport_cost_minus_the_entropy() -> None:
    matched, contrast = torch.full((1, 1, 2, 2), 1.0), torch.zeros(1, 1, 2, 2)
    state, endpoint = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    entropy = 1.0 - math.log(4.0)
    for step in (0, 3):
        expected = -(5 - step) / 5 * 0.01 * entropy + 0.01 * 0.25
        assert schrodinger_bridge_loss(matched, contrast, state, endpoint, step, 5, 0.01).item() == pytest.approx(expected, rel=1e-6)


# --- training ----------------------------------------------------------------------------------------------------------
def _run(synthetic_root: Path, run: Path, *extra: str, epochs: int = 1, batches: int = 1) -> Path:
    fit([*TINY["unsb"].synthetic_args(synthetic_root, run, epochs=epochs, batches=batches), "--trainer.logger", "false",
         "--reliability.save_every_n_batches", "1", "--trainer.num_sanity_val_steps", "0", *extra])
    return run / "checkpoints" / "last.ckpt"


def test_one_step_of_each_optimiser_changes_its_network(synthetic_root: Path, tmp_path: Path) -> None:
    """After one batch: G (with the PatchNCE heads), D and the energy network E each took one Adam step."""
    import lightning.pytorch as pl

    model = _model()
    datamodule = TINY["unsb"].data.datamodule(synthetic_root)
    datamodule.setup("fit")
    model.configure_optimizers()  # the heads' shapes exist from construction: nothing lazy to create
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = pl.Trainer(accelerator="cpu", max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 3  # G, D and E: one step each, one batch
    after = model.state_dict()
    for network in ("generator", "discriminator", "energy", "feature_heads"):
        keys = [k for k in after if k.startswith(f"{network}.") and after[k].is_floating_point()]
        assert keys, network
        assert any(not torch.equal(after[k], initial[k]) for k in keys), f"{network} did not change"
    for optimizer in trainer.optimizers:
        assert all(int(state["step"]) == 1 for state in optimizer.state.values())


def test_resume_mid_epoch_is_exact(synthetic_root: Path, tmp_path: Path) -> None:
    """Stopped after 2 of 4 batches and resumed: bit-identical to an uninterrupted run (the drawn steps, the bridge
    noise and the latents come from the restored random states)."""
    _run(synthetic_root, tmp_path / "reference", epochs=2, batches=2)
    stopped = _run(synthetic_root, tmp_path / "run", "--trainer.max_steps", "6", epochs=2, batches=2)  # 2 batches x 3 steps
    assert load_raw(stopped)["global_step"] == 6
    fit([*TINY["unsb"].synthetic_args(synthetic_root, tmp_path / "run", epochs=2, batches=2), "--trainer.logger", "false",
         "--reliability.save_every_n_batches", "1", "--trainer.num_sanity_val_steps", "0", "--ckpt_path", str(stopped)])
    reference, resumed = load_raw(tmp_path / "reference" / "checkpoints" / "last.ckpt"), load_raw(stopped)
    assert resumed["global_step"] == reference["global_step"] == 12
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_an_odd_batch_is_one_line() -> None:
    model = _model()
    with pytest.raises(UserError, match="data.batch_size must be even"):
        model.split_batch({"A": _images(3), "B": _images(3)})
    real_a, contrast, real_b = model.split_batch({"A": _images(4), "B": _images(4, seed=2)})
    assert real_a.shape[0] == contrast.shape[0] == real_b.shape[0] == 2


# --- the bridge at inference -------------------------------------------------------------------------------------------
def test_the_translator_runs_steps_with_reproducible_noise() -> None:
    model = _model()
    images = _images(3, size=36)
    with torch.no_grad():
        five = model.inference_network("AtoB", steps=3, seed=7)(images)
        again = model.inference_network("AtoB", steps=3, seed=7)(images)
        other_seed = model.inference_network("AtoB", steps=3, seed=8)(images)
        one = model.inference_network("AtoB", steps=1, seed=7)(images)
        alone = model.inference_network("AtoB", steps=3, seed=7)(images[1:2])
    assert five.shape == images.shape and five.abs().max() <= 1
    assert torch.equal(five, again)
    assert not torch.equal(five, other_seed) and not torch.equal(five, one)
    torch.testing.assert_close(alone, five[1:2], atol=1e-6, rtol=0)  # an image's result does not depend on its batch
    path = model.inference_network("AtoB", steps=3, seed=7).trajectory(images)
    assert len(path) == 3 + 1 and torch.equal(path[0], images) and torch.equal(path[-1], five)


def test_fresh_noise_without_a_seed() -> None:
    model = _model()
    images = _images(1)
    with torch.no_grad():
        translator = model.inference_network("AtoB", seed=None)
        assert not torch.equal(translator(images), translator(images))


def test_bad_settings_and_options_are_one_line() -> None:
    model = _model()
    with pytest.raises(UserError, match="steps must be between 1 and the 3 steps"):
        model.inference_network("AtoB", steps=4)
    with pytest.raises(UserError, match="steps must be between 1"):
        BridgeTranslator(model.generator, 3, 0.01, steps=0)
    with pytest.raises(CapabilityError, match="no inference setting temperature; it takes seed, steps"):
        model.inference_network("AtoB", temperature=2)
    with pytest.raises(CapabilityError, match="translates AtoB only"):
        model.inference_network("BtoA")
    with pytest.raises(UserError, match="time-conditioned ResNet generator"):
        _model(generator="unet")
    with pytest.raises(UserError, match="in_channels must equal out_channels"):
        _model(in_channels=1, nce_idt=False)
    with pytest.raises(UserError, match="flip_equivariance"):
        _model(flip_equivariance=True)
