"""The test schedule of tests/conftest.py holds under ``pytest -n auto``: the tests that start processes share one
xdist group, and pytest-xdist really keeps the group on one worker (its ``--dist loadgroup`` marks a grouped test's
node id; pytest 9.2 silently broke that, pytest-xdist issue #1386, hence the pin in pyproject.toml)."""

from __future__ import annotations

import pytest


@pytest.mark.ddp
def test_a_test_that_starts_processes_is_in_the_multiprocess_group(request: pytest.FixtureRequest) -> None:
    mark = request.node.get_closest_marker("xdist_group")
    assert mark is not None and mark.args == ("multiprocess",)
    if getattr(request.config.option, "loadgroup", False):  # an xdist worker scheduling by group
        assert request.node.nodeid.endswith("@multiprocess"), request.node.nodeid


def test_a_plain_test_is_in_no_group(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("xdist_group") is None
    assert "@" not in request.node.nodeid
