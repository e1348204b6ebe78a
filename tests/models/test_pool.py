import torch

from gan_translate.models.pool import ImagePool


def test_zero_pool_returns_input() -> None:
    images = torch.randn(3, 3, 4, 4)
    assert torch.equal(ImagePool(0).query(images), images)


def test_pool_fills_then_mixes_history() -> None:
    pool = ImagePool(4, seed=0)
    first = torch.zeros(4, 1, 2, 2)
    assert torch.equal(pool.query(first), first)
    assert len(pool) == 4
    mixed = torch.cat([pool.query(torch.ones(4, 1, 2, 2)) for _ in range(20)])
    # Some queries return stored history (zeros), others the new images (ones).
    assert (mixed == 0).any() and (mixed == 1).any()
    assert len(pool) == 4


def test_pool_state_round_trip_reproduces_draws() -> None:
    pool = ImagePool(3, seed=5)
    for i in range(5):
        pool.query(torch.full((2, 1, 2, 2), float(i)))
    state = pool.state_dict()
    restored = ImagePool(3, seed=99)
    restored.load_state_dict(state)
    for i in range(10):
        batch = torch.full((2, 1, 2, 2), float(10 + i))
        assert torch.equal(pool.query(batch), restored.query(batch))
