import math

import pytest
import torch

from gan_translate.core.errors import UserError
from gan_translate.losses import ADVERSARIAL_LOSSES, adversarial_loss, discriminator_loss, l1, patch_nce


def test_lsgan_values_by_hand() -> None:
    loss = adversarial_loss("lsgan")
    logits = torch.tensor([0.5, 1.5])
    assert loss.real_fake(logits, True).item() == pytest.approx((0.25 + 0.25) / 2)
    assert loss.real_fake(logits, False).item() == pytest.approx((0.25 + 2.25) / 2)
    assert loss.generator(logits).item() == pytest.approx(0.25)


def test_vanilla_values_by_hand() -> None:
    loss = adversarial_loss("vanilla")
    zeros = torch.zeros(3)
    assert loss.real_fake(zeros, True).item() == pytest.approx(math.log(2))
    big = torch.tensor([20.0])
    assert loss.real_fake(big, True).item() == pytest.approx(0.0, abs=1e-6)
    assert loss.real_fake(big, False).item() == pytest.approx(20.0, rel=1e-4)
    # non-saturating: the generator loss is -log(sigmoid(x))
    x = torch.tensor([-1.0])
    assert loss.generator(x).item() == pytest.approx(-math.log(1 / (1 + math.exp(1.0))), rel=1e-5)


def test_hinge_values_by_hand() -> None:
    loss = adversarial_loss("hinge")
    assert loss.real_fake(torch.tensor([0.5, 2.0]), True).item() == pytest.approx(0.25)
    assert loss.real_fake(torch.tensor([-2.0, 0.0]), False).item() == pytest.approx(0.5)
    assert loss.generator(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_discriminator_loss_is_half_the_sum() -> None:
    loss = adversarial_loss("lsgan")
    real, fake = torch.tensor([1.0]), torch.tensor([1.0])
    assert discriminator_loss(loss, real, fake).item() == pytest.approx(0.5 * (0.0 + 1.0))


def test_l1() -> None:
    assert l1(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(1.0)


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(UserError, match="hinge, lsgan, vanilla"):
        adversarial_loss("wgan")
    assert ADVERSARIAL_LOSSES.names() == ["hinge", "lsgan", "vanilla"]


# ----------------------------------------------------------------------------- PatchNCE
def _direct_patch_nce(query: torch.Tensor, key: torch.Tensor, batch_size: int, temperature: float) -> torch.Tensor:
    """PatchNCE written out patch by patch: -log(exp(q.k+ / T) / (exp(q.k+ / T) + sum over the image's other keys))."""
    per_image = query.shape[0] // batch_size
    losses = []
    for i in range(query.shape[0]):
        image = i // per_image
        others = [j for j in range(image * per_image, (image + 1) * per_image) if j != i]
        positive = torch.exp(query[i] @ key[i] / temperature)
        negatives = sum(torch.exp(query[i] @ key[j] / temperature) for j in others)
        losses.append(-torch.log(positive / (positive + negatives)))
    return torch.stack(losses).mean()


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_patch_nce_matches_a_direct_computation() -> None:
    query, key = _unit(12, 8, 0), _unit(12, 8, 1)
    value = patch_nce(query, key, batch_size=3, temperature=0.5)
    assert value.item() == pytest.approx(_direct_patch_nce(query, key, 3, 0.5).item(), rel=1e-5)


def test_patch_nce_is_lowest_for_identical_features_and_higher_when_shuffled() -> None:
    features = _unit(64, 16, 2)
    identical = patch_nce(features, features.clone(), batch_size=2)
    shuffled = patch_nce(features, features[torch.randperm(64, generator=torch.Generator().manual_seed(0))], batch_size=2)
    unrelated = patch_nce(features, _unit(64, 16, 3), batch_size=2)
    assert identical.item() < 0.05 < unrelated.item()
    assert shuffled.item() > identical.item() + 1.0


def test_patch_nce_negatives_and_gradients() -> None:
    query, key = _unit(8, 4, 4).requires_grad_(), _unit(8, 4, 5).requires_grad_()
    own = patch_nce(query, key, batch_size=2)
    whole_batch = patch_nce(query, key, batch_size=2, negatives_from_batch=True)
    assert whole_batch.item() > own.item()  # more negatives: a harder task
    own.backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert key.grad is None  # the keys are constants of the loss
