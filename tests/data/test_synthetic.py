"""The procedural synthetic data: determinism, layout, ground truth, and the on-disk contract."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gan_translate.core.errors import DataError, UserError
from gan_translate.data.synthetic import (
    LABEL_COLOURS,
    PHOTO_COLOURS,
    ensure_synthetic,
    make_synthetic,
    photo_from_labels,
    random_scene,
    render_a,
    render_b,
    render_labels,
    render_photo,
    scene_for,
)

SIZE, N_TRAIN, N_TEST = 32, 6, 4
FOLDERS = {
    "trainA": N_TRAIN,
    "trainB": N_TRAIN,
    "testA": N_TEST,
    "testB": N_TEST,
    "testA_gt": N_TEST,
    "testB_gt": N_TEST,
    "paired/train": N_TRAIN,
    "paired/val": N_TEST,
    "paired/test": N_TEST,
}


def _make(root: Path, **kwargs: object) -> Path:
    params = {"size": SIZE, "n_train": N_TRAIN, "n_test": N_TEST, "seed": 0} | kwargs
    return make_synthetic(root, **params)  # type: ignore[arg-type]


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _check_a_to_b(a: np.ndarray, b: np.ndarray, background: tuple[int, int, int]) -> None:
    """B is A with R/B swapped, except stripe pixels inside shapes, which are that colour x 0.75."""
    swapped = a[..., ::-1].astype(np.int32)
    foreground = (a != np.array(background, dtype=np.uint8)).any(-1)
    plain = (b == swapped).all(-1)
    striped = (b == swapped * 3 // 4).all(-1) & ~plain
    assert (plain | striped).all()
    assert not (striped & ~foreground).any(), "stripes only inside shapes"
    if foreground.any():
        assert 0.15 < striped[foreground].mean() < 0.55, "thin stripes: about a third of each shape"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make(tmp_path_factory.mktemp("synthetic") / "set")


def test_layout_counts_and_sizes(dataset: Path) -> None:
    for folder, count in FOLDERS.items():
        names = sorted(p.name for p in (dataset / folder).iterdir())
        assert names == [f"{i:06d}.png" for i in range(1, count + 1)], folder
        width = 2 * SIZE if folder.startswith("paired/") else SIZE
        for name in names:
            assert _load(dataset / folder / name).shape == (SIZE, width, 3)
    assert (dataset / "synthetic.json").is_file()
    assert not list(dataset.glob(".*")), "no temporary or marker files left behind"


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path, dataset: Path) -> None:
    again = _files(_make(tmp_path / "again"))
    assert again == _files(dataset)
    other = _files(_make(tmp_path / "other", seed=1))
    assert other.keys() == again.keys()
    images = [name for name in again if name.endswith(".png")]
    assert all(other[name] != again[name] for name in images)


def test_files_are_the_renderings_of_their_scenes(dataset: Path) -> None:
    for i in range(N_TRAIN):
        scene_a, scene_b = scene_for(0, "trainA", i, SIZE), scene_for(0, "trainB", i, SIZE)
        assert scene_a != scene_b, "unpaired: trainA and trainB hold different scenes"
        name = f"{i + 1:06d}.png"
        np.testing.assert_array_equal(_load(dataset / "trainA" / name), render_a(scene_a))
        np.testing.assert_array_equal(_load(dataset / "trainB" / name), render_b(scene_b))


@pytest.mark.parametrize(("folder", "a_side"), [("testA", True), ("testB", False)])
def test_ground_truth_is_the_same_scene_in_the_other_domain(dataset: Path, folder: str, a_side: bool) -> None:
    for i in range(N_TEST):
        name = f"{i + 1:06d}.png"
        image, truth = _load(dataset / folder / name), _load(dataset / f"{folder}_gt" / name)
        a, b = (image, truth) if a_side else (truth, image)
        background = scene_for(0, folder, i, SIZE).background
        mask_a = (a != np.array(background, dtype=np.uint8)).any(-1)
        mask_b = (b != np.array(background[::-1], dtype=np.uint8)).any(-1)
        np.testing.assert_array_equal(mask_a, mask_b)
        assert mask_a.any() and not mask_a.all()
        _check_a_to_b(a, b, background)


def test_paired_photo_is_a_function_of_the_label_map(dataset: Path) -> None:
    allowed = {tuple(c) for c in LABEL_COLOURS}
    for path in sorted((dataset / "paired" / "train").iterdir()):
        pair = _load(path)
        labels, photo = pair[:, :SIZE], pair[:, SIZE:]
        assert {tuple(int(v) for v in px) for px in labels.reshape(-1, 3)} <= allowed
        np.testing.assert_array_equal(photo_from_labels(labels), photo)
        # Same layout on both sides: shape pixels in the label map are exactly the photo's non-background.
        shapes = (labels != 0).any(-1)
        np.testing.assert_array_equal(shapes, (photo != np.array(PHOTO_COLOURS[0], dtype=np.uint8)).any(-1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([16, 32, 48, 64, 100]))
def test_rendering_properties(seed: int, size: int) -> None:
    scene = random_scene(np.random.default_rng(seed), size)
    assert 2 <= len(scene.shapes) <= 4
    a, b, labels, photo = render_a(scene), render_b(scene), render_labels(scene), render_photo(scene)
    for image in (a, b, labels, photo):
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
    _check_a_to_b(a, b, scene.background)
    np.testing.assert_array_equal(photo_from_labels(labels), photo)
    np.testing.assert_array_equal(render_a(scene), a)  # pure: same scene, same pixels
    assert render_b(scene, 2 * size).shape == (2 * size, 2 * size, 3)  # a scene renders at any size


def test_photo_from_labels_rejects_other_colours() -> None:
    with pytest.raises(ValueError, match="not a synthetic label map"):
        photo_from_labels(np.full((4, 4, 3), 7, dtype=np.uint8))


def test_fast_path_does_not_rewrite(dataset: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert make_synthetic(dataset, size=SIZE, n_train=N_TRAIN, n_test=N_TEST) == dataset
    assert ensure_synthetic(dataset, size=SIZE, n_train=N_TRAIN, n_test=N_TEST) == dataset
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before


def test_ensure_generates_when_missing(tmp_path: Path, dataset: Path) -> None:
    root = ensure_synthetic(tmp_path / "new", size=SIZE, n_train=N_TRAIN, n_test=N_TEST)
    assert _files(root) == _files(dataset)


def test_interrupted_generation_is_detected_and_redone(tmp_path: Path, dataset: Path) -> None:
    root = _make(tmp_path / "set")
    # What a run killed half-way leaves: the marker, some images, no synthetic.json.
    (root / "synthetic.json").unlink()
    (root / ".synthetic-partial").write_text("{}\n")
    for path in list((root / "testB").iterdir())[:2]:
        path.unlink()
    (root / "paired" / "test" / "000001.png").write_bytes(b"truncated")
    assert _files(_make(root)) == _files(dataset)


def test_missing_files_in_a_finished_set_are_regenerated(tmp_path: Path, dataset: Path) -> None:
    root = _make(tmp_path / "set")
    (root / "trainB" / "000003.png").unlink()
    assert _files(_make(root)) == _files(dataset)


def test_foreign_folder_raises_one_line_data_error(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    (root / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(DataError) as info:
        _make(root)
    message = str(info.value)
    assert str(root) in message and "\n" not in message
    assert sorted(p.name for p in root.iterdir()) == ["holiday.jpg"], "nothing written on refusal"
    # overwrite=True writes the set but never deletes files that are not the generator's.
    _make(root, overwrite=True)
    assert (root / "holiday.jpg").read_bytes() == b"mine"
    assert (root / "synthetic.json").is_file()


def test_other_parameters_need_overwrite(tmp_path: Path) -> None:
    root = _make(tmp_path / "set")
    with pytest.raises(DataError, match="other parameters"):
        _make(root, seed=3)
    _make(root, seed=3, n_train=2, overwrite=True)
    assert sorted(p.name for p in (root / "trainA").iterdir()) == ["000001.png", "000002.png"], "stale files removed"


def test_file_root_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        _make(tmp_path / "file")
    for bad in ({"size": 8}, {"n_train": 0}, {"n_test": 0}, {"seed": -1}):
        with pytest.raises(UserError):
            _make(tmp_path / "bad", **bad)


def test_default_set_is_fast(tmp_path: Path) -> None:
    # This process's CPU time, not the wall clock: under `pytest -n auto` another test process shares the cores,
    # which stretches the wall clock but not the work done here (make_synthetic runs in this one process).
    start = time.process_time()
    root = make_synthetic(tmp_path / "default")  # 64 px, 200 train + 20 test per domain
    elapsed = time.process_time() - start
    assert len(list((root / "trainA").iterdir())) == 200
    assert elapsed < 5.0, f"generation took {elapsed:.1f} CPU s"
