import math

import pytest
import torch

from gan_translate.errors import UserError
from gan_translate.losses import ADVERSARIAL_LOSSES, adversarial_loss, discriminator_loss, l1


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
