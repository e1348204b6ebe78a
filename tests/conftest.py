"""Test-wide settings: offline, quiet, deterministic, small."""

import os

# Set before anything imports albumentations or wandb.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("PYTHONHASHSEED", "0")
# One intra-op thread, here and in every subprocess a test starts (bit-exact comparisons between a run in
# this process and one in a subprocess need the same reduction order). The test networks are tiny, so a
# second thread gains little even on an idle 2-core machine, while on a busy one OpenMP's spin-waiting
# made two threads 4-10x slower per training step (measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

#: Markers of tests that start several busy processes (torchrun ranks, Chromium, a `gan-translate serve` process):
#: under pytest-xdist they share one worker, one after another, so two of them never fight over the two cores.
MULTIPROCESS_MARKERS = ("ddp", "browser", "server")
#: Heaviest first (the longest-processing-time rule): a worker that draws an "it learns" test or the multi-process
#: group at the start finishes it while the other clears the fast tests, instead of both idling at the end on one.
_COST_RANK = {"slow": 0, "ddp": 1, "browser": 1, "server": 1}


def _module_scoped_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture built once per module (a trained tiny model, a loaded server, ...)."""
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return False
    return any(definition.scope == "module" for definitions in fixture_info.name2fixturedefs.values()
               for definition in definitions)


def _group(item: pytest.Item) -> str | None:
    """The xdist group the test must share a worker with: its own mark's, the multi-process tests', or its module's
    when it uses a module-scoped fixture; None: it can run anywhere."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    if any(item.get_closest_marker(marker) for marker in MULTIPROCESS_MARKERS):
        return "multiprocess"
    if _module_scoped_fixture(item):
        return item.nodeid.split("::")[0]
    return None


def _cost_rank(item: pytest.Item) -> int:
    ranks = [rank for marker, rank in _COST_RANK.items() if item.get_closest_marker(marker)]
    return min(ranks) if ranks else 3


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Schedule the suite for ``pytest -n auto`` (``--dist loadgroup`` in pyproject.toml).

    - Tests that start several processes (markers ``ddp``, ``browser``, ``server``) share one xdist group, so they
      run one after another on one worker.
    - The tests of a module with a module-scoped fixture share a group named after the module, so the fixture is
      built once, not once per worker.
    - Everything else (the fast tests and the "it learns" ``slow`` tests) is handed out one test at a time.
    - Heavy work first (the longest-processing-time rule): ``slow`` tests, then the multi-process group, then the
      module groups, then single tests. A group moves as one block, at the rank of its heaviest test, so its
      module fixtures are not torn down and built again between its tests; within a tier the collection order stays.
    Without xdist the marks are inert and only the order changes.
    """
    groups = {id(item): _group(item) for item in items}
    first_index: dict[str, int] = {}
    group_rank: dict[str, int] = {}
    for index, item in enumerate(items):
        name = groups[id(item)]
        if name is None:
            continue
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(name))
        first_index.setdefault(name, index)
        # a group's rank is its heaviest test's; a plain module group (no marker) ranks after the multi-process one
        rank = _cost_rank(item) if _cost_rank(item) < 3 else 2
        group_rank[name] = min(group_rank.get(name, rank), rank)
    order = {id(item): index for index, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[int, int, int]:
        name = groups[id(item)]
        if name is None:
            return _cost_rank(item), order[id(item)], 0
        return group_rank[name], first_index[name], order[id(item)]

    items.sort(key=key)


@pytest.fixture(autouse=True)
def _small_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)


from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic two-domain dataset (32 px) with ground truth, shared by the whole session."""
    from gan_translate.data.synthetic import make_synthetic

    return Path(make_synthetic(tmp_path_factory.mktemp("synthetic") / "synthetic", size=32, n_train=8, n_test=4, seed=0))


@pytest.fixture(autouse=True)
def _finish_wandb():
    """Never let one test's W&B run leak into the next (wandb keeps a global current run)."""
    yield
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except ImportError:
        pass


@pytest.fixture()
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache in tmp_path and a download that fails like a machine without network."""
    import urllib.error

    def no_network(url: str, *args, **kwargs) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub"
