"""Datasets and datamodules on tiny folders made here (no dependence on the synthetic generator)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.core.errors import DataError
from gan_translate.data.datamodules import ImageFolderDataModule, PairedDataModule, UnpairedDataModule
from gan_translate.data.options import ImageTransform, SyntheticSet
from gan_translate.data.paired import AlignedDataset, PairedFolderDataset
from gan_translate.data.single import ImageFolderDataset
from gan_translate.data.transforms import build_transform, seed_dataset, seed_worker
from gan_translate.data.unaligned import UnalignedDataset

# Linear interpolation of (255 - x) and of x can round 1 level apart; geometry errors are far larger.
PIXEL_TOL = 1.01 / 127.5


def _img(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth image with a unique layout per seed (so a wrong crop or flip shows)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a, b = rng.uniform(1, 4, 2)
    return np.stack([(yy * a) % 256, (xx * b) % 256, (yy + 2 * xx) % 256], axis=2).astype(np.uint8)


def _save(folder: Path, name: str, arr: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(arr).save(path)
    return path


def _domain(folder: Path, n: int, size: int = 40, seed: int = 0, gt: Path | None = None) -> None:
    for i in range(n):
        a = _img(size, size, seed + i)
        _save(folder, f"{i:03d}.png", a)
        if gt is not None:
            _save(gt, f"{i:03d}.png", 255 - a)


def _train_t(**kw: Any):
    return build_transform("resize_and_crop", 48, 32, flip=True, train=True, **kw)


# --- UnalignedDataset -------------------------------------------------------------------------
def test_unaligned_length_keys_and_max_size(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 3)
    _domain(tmp_path / "B", 5, seed=10)
    ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t())
    assert len(ds) == 5
    item = ds[4]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == (3, 32, 32) and item["A"].dtype == torch.float32
    assert item["A_path"].endswith("001.png")  # 4 % 3
    assert len(UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), max_size=2)) == 2
    assert ds.transforms == [ds.transform]


def test_unaligned_serial_vs_random_b(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 6)
    _domain(tmp_path / "B", 4, seed=10)
    serial = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), serial_b=True)
    assert [Path(serial[i]["B_path"]).name for i in range(6)] == [f"{i % 4:03d}.png" for i in range(6)]

    def b_names(ds: UnalignedDataset, n: int = 24) -> list[str]:
        return [Path(ds[i % len(ds)]["B_path"]).name for i in range(n)]

    r1 = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), seed=5)
    r2 = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), seed=5)
    first = b_names(r1)
    assert first == b_names(r2)  # reproducible from the seed
    assert len(set(first)) == 4 and first != [f"{i % 4:03d}.png" for i in range(24)]
    seed_dataset(r2, 6)
    assert b_names(r2) != first  # the worker reseeding reaches the B generator


def test_unaligned_ground_truth_follows_crop_and_flip(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 3, size=44, gt=tmp_path / "A_gt")
    _domain(tmp_path / "B", 2, size=44, seed=10, gt=tmp_path / "B_gt")
    ds = UnalignedDataset(
        tmp_path / "A", tmp_path / "B", _train_t(), gt_a=tmp_path / "A_gt", gt_b=tmp_path / "B_gt", seed=1
    )
    crops = set()
    for k in range(40):
        item = ds[k % len(ds)]
        # gt = 255 - x  ->  after normalisation gt = -x, if and only if the geometry matched
        assert (item["A_gt"] + item["A"]).abs().max() <= PIXEL_TOL
        assert (item["B_gt"] + item["B"]).abs().max() <= PIXEL_TOL
        crops.add(round(float(item["A"][0, 0, 0]), 4))
    assert len(crops) > 5  # the crops and flips really varied


def test_unaligned_missing_or_mismatched_ground_truth(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 3, gt=tmp_path / "A_gt")
    _domain(tmp_path / "B", 2, seed=10)
    (tmp_path / "A_gt" / "001.png").unlink()
    with pytest.raises(DataError, match=r"missing ground truth for .*A/001\.png.*A_gt/001"):
        UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), gt_a=tmp_path / "A_gt")
    _save(tmp_path / "A_gt", "001.png", _img(30, 40, 0))
    ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), gt_a=tmp_path / "A_gt")
    with pytest.raises(DataError, match=r"differ in size: .*A/001\.png.*A_gt/001\.png"):
        ds[1]


def test_unaligned_skip_bad_files(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 3)
    _domain(tmp_path / "B", 2, seed=10)
    (tmp_path / "A" / "bad.png").write_text("not an image")
    with pytest.raises(DataError, match="bad.png"):
        UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t())
    with pytest.warns(UserWarning, match="bad.png"):
        ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", _train_t(), on_bad_file="skip")
    assert len(ds.paths_a) == 3


# --- single -----------------------------------------------------------------------------------
def test_image_folder_dataset_recursive(tmp_path: Path) -> None:
    _domain(tmp_path / "x", 2)
    _domain(tmp_path / "x" / "sub", 2, seed=5)
    t = build_transform("resize", crop_size=16, train=False)
    assert len(ImageFolderDataset(tmp_path / "x", t)) == 4
    flat = ImageFolderDataset(tmp_path / "x", t, recursive=False, max_size=1)
    item = flat[0]
    assert len(flat) == 1 and set(item) == {"image", "path"} and item["image"].shape == (3, 16, 16)


# --- paired -----------------------------------------------------------------------------------
def _aligned_folder(folder: Path, n: int = 3, h: int = 40, w: int = 40) -> None:
    for i in range(n):
        a = _img(h, w, i)
        _save(folder, f"{i}.png", np.concatenate([a, 255 - a], axis=1))


def test_aligned_split_and_direction(tmp_path: Path) -> None:
    _aligned_folder(tmp_path / "train")
    a = _img(40, 40, 0)
    none = build_transform("none", train=False)
    item = AlignedDataset(tmp_path / "train", none)[0]
    assert item["A"].shape == (3, 40, 40) and item["A_path"] == item["B_path"]
    assert torch.allclose(item["A"], torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1)
    assert torch.allclose(item["B"], -item["A"])
    swapped = AlignedDataset(tmp_path / "train", build_transform("none", train=False), direction="BtoA")[0]
    assert torch.equal(swapped["A"], item["B"]) and torch.equal(swapped["B"], item["A"])


def test_aligned_pairs_stay_aligned_under_random_crop_flip(tmp_path: Path) -> None:
    _aligned_folder(tmp_path / "train", h=44, w=60)
    ds = AlignedDataset(tmp_path / "train", _train_t(), seed=3)
    for k in range(30):
        item = ds[k % len(ds)]
        assert item["A"].shape == item["B"].shape == (3, 32, 32)
        assert (item["A"] + item["B"]).abs().max() <= PIXEL_TOL


def test_aligned_odd_width_names_file_before_training(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / "train", f"{i}.png", _img(10, 20, i))
    _save(tmp_path / "train", "odd.png", _img(10, 21, 0))
    # when the dataset is built (from the headers), not when an epoch first reaches the file
    with pytest.raises(DataError, match=r"odd\.png into A\|B halves: its width 21 is odd$"):
        AlignedDataset(tmp_path / "train", _train_t())
    with pytest.warns(UserWarning, match=r"skipping .*odd\.png: its width 21 is odd"):
        ds = AlignedDataset(tmp_path / "train", _train_t(), on_bad_file="skip")
    assert [a.name for a, _ in ds.pairs] == ["0.png", "1.png", "2.png"]
    # the width that counts is the upright one: a file 20 wide on disk that EXIF rotates to 21 wide
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_img(20, 21, 0)).transpose(Image.Transpose.TRANSPOSE).save(tmp_path / "train" / "odd.png", exif=exif)
    with pytest.raises(DataError, match=r"width 21 is odd"):
        AlignedDataset(tmp_path / "train", _train_t())


def test_paired_folders_match_by_name(tmp_path: Path) -> None:
    for i in range(3):
        a = _img(40, 40, i)
        _save(tmp_path / "A", f"{i}.jpg" if i == 0 else f"{i}.png", a)
        _save(tmp_path / "B", f"{i}.png", 255 - a)
    ds = PairedFolderDataset(tmp_path, _train_t(), seed=0)
    assert len(ds) == 3 and Path(ds[0]["B_path"]).name == "0.png"
    for k in range(1, 3):  # exact pairs (the .jpg one is lossy)
        item = ds[k]
        assert (item["A"] + item["B"]).abs().max() <= PIXEL_TOL
    back = PairedFolderDataset(tmp_path, _train_t(), direction="BtoA")
    assert Path(back[1]["A_path"]).parent.name == "B"


def test_paired_folders_mismatch_errors(tmp_path: Path) -> None:
    _domain(tmp_path / "A", 2)
    _domain(tmp_path / "B", 1)
    with pytest.raises(DataError, match=r"missing partner in B for .*A/001\.png"):
        PairedFolderDataset(tmp_path, _train_t())
    _domain(tmp_path / "B", 3)
    with pytest.raises(DataError, match=r"missing partner in A for .*B/002\.png"):
        PairedFolderDataset(tmp_path, _train_t())
    (tmp_path / "B" / "002.png").unlink()
    _save(tmp_path / "B", "001.png", _img(30, 40, 0))
    with pytest.raises(DataError, match=r"A/001\.png is 40x40.*B/001\.png is 40x30"):  # when built, not when loaded
        PairedFolderDataset(tmp_path, _train_t())
    with pytest.warns(UserWarning, match=r"skipping the pair: paired images differ in size"):
        ds = PairedFolderDataset(tmp_path, _train_t(), on_bad_file="skip")
    assert [a.name for a, _ in ds.pairs] == ["000.png"]


# --- datamodules ------------------------------------------------------------------------------
@pytest.fixture()
def unpaired_root(tmp_path: Path) -> Path:
    root = tmp_path / "u"
    _domain(root / "trainA", 5)
    _domain(root / "trainB", 4, seed=20)
    _domain(root / "testA", 3, seed=40, gt=root / "testA_gt")
    _domain(root / "testB", 2, seed=60, gt=root / "testB_gt")
    return root


def _dm_kw(**kw: Any) -> dict[str, Any]:
    transform = ImageTransform(**{"load_size": 36, "crop_size": 32, **kw.pop("transform", {})})
    return {"transform": transform, "num_workers": 0, **kw}


def test_unpaired_datamodule_batches(unpaired_root: Path) -> None:
    dm = UnpairedDataModule(str(unpaired_root), batch_size=2, val_max_images=2, **_dm_kw())
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.drop_last and loader.worker_init_fn is seed_worker
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["A"].shape == (2, 3, 32, 32) and len(batches[0]["B_path"]) == 2
    val = list(dm.val_dataloader())
    assert len(val) == 1 and set(val[0]) >= {"A", "B", "A_gt", "B_gt"} and val[0]["A_gt"].shape == (2, 3, 32, 32)
    assert (val[0]["A"] + val[0]["A_gt"]).abs().max() <= PIXEL_TOL
    again = list(dm.val_dataloader())
    assert torch.equal(again[0]["A"], val[0]["A"])  # deterministic
    test = list(dm.test_dataloader())
    assert sum(len(b["A_path"]) for b in test) == 3
    pred = next(iter(dm.predict_dataloader()))
    assert set(pred) == {"image", "path"} and pred["image"].shape[1:] == (3, 32, 32)


def test_unpaired_datamodule_prefers_val_folders_and_keeps_small_last_batch(unpaired_root: Path) -> None:
    _domain(unpaired_root / "valA", 1, seed=80)
    _domain(unpaired_root / "valB", 1, seed=90)
    dm = UnpairedDataModule(str(unpaired_root), batch_size=8, **_dm_kw())
    dm.setup("fit")
    val = list(dm.val_dataloader())
    assert "valA" in val[0]["A_path"][0] and "A_gt" not in val[0]
    loader = dm.train_dataloader()
    assert not loader.drop_last and len(list(loader)) == 1  # 5 images < batch 8: keep them


def test_unpaired_datamodule_with_workers(unpaired_root: Path) -> None:
    dm = UnpairedDataModule(str(unpaired_root), batch_size=1, **_dm_kw(num_workers=2))
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.persistent_workers and loader.num_workers == 2
    first = [b["A"] for b in loader]
    dm2 = UnpairedDataModule(str(unpaired_root), batch_size=1, **_dm_kw(num_workers=2))
    second = [b["A"] for b in dm2.train_dataloader()]
    assert len(first) == 5 and all(torch.equal(a, b) for a, b in zip(first, second))  # same seed, same stream


def test_missing_root_points_to_download(tmp_path: Path) -> None:
    dm = UnpairedDataModule(str(tmp_path / "horse2zebra"), **_dm_kw())
    with pytest.raises(DataError, match=r"horse2zebra/trainA.*datasets/download\.py"):
        dm.setup("fit")
    with pytest.raises(Exception, match="unknown preprocess"):
        UnpairedDataModule(str(tmp_path), transform=ImageTransform(preprocess="zoom"))


def test_variable_size_batches_give_a_clear_error(tmp_path: Path) -> None:
    _save(tmp_path / "trainA", "0.png", _img(20, 30, 0))
    _save(tmp_path / "trainA", "1.png", _img(24, 30, 1))
    _domain(tmp_path / "trainB", 2, size=20)
    dm = UnpairedDataModule(str(tmp_path), batch_size=2, serial_batches=True, **_dm_kw(transform={"preprocess": "none", "flip": False}))
    with pytest.raises(DataError, match="different sizes.*batch_size 1"):
        list(dm.train_dataloader())


@pytest.fixture()
def fake_synthetic(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A stand-in gan_translate.data.synthetic that writes a tiny dataset and records its calls."""
    calls: list[dict[str, Any]] = []

    def ensure_synthetic(root: Path, **kw: Any) -> Path:
        calls.append({"root": Path(root), **kw})
        root = Path(root)
        if (root / "done").exists():  # idempotent, like the real one
            return root
        size = kw["size"]
        for split, n in (("train", kw["n_train"]), ("test", kw["n_test"])):
            _domain(root / f"{split}A", n, size=size, gt=root / f"{split}A_gt")
            _domain(root / f"{split}B", n, size=size, seed=50, gt=root / f"{split}B_gt")
        for split in ("train", "val", "test"):
            _aligned_folder(root / "paired" / split, n=2, h=size, w=size)
        (root / "done").touch()
        return root

    module = types.ModuleType("gan_translate.data.synthetic")
    module.ensure_synthetic = ensure_synthetic  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gan_translate.data.synthetic", module)
    return calls


def test_synthetic_is_ensured_and_setup_works_without_prepare(tmp_path: Path, fake_synthetic: list) -> None:
    root = tmp_path / "syn"
    kw = _dm_kw(synthetic_set=SyntheticSet(size=36, n_train=3, n_test=2, seed=7))
    dm = UnpairedDataModule(str(root), synthetic=True, **kw)
    dm.setup("fit")  # no prepare_data call
    assert len(fake_synthetic) == 1 and "--data.synthetic false" in fake_synthetic[0].pop("refusal_hint")
    assert fake_synthetic == [{"root": root, "size": 36, "n_train": 3, "n_test": 2, "seed": 7}]
    batch = next(iter(dm.val_dataloader()))
    assert "A_gt" in batch and batch["A"].shape == (1, 3, 32, 32)
    dm2 = UnpairedDataModule(str(root), synthetic=True, **kw)
    dm2.prepare_data()
    dm2.setup("fit")
    for call in fake_synthetic:
        call.pop("refusal_hint", None)
    assert len(fake_synthetic) == 3 and all(c == fake_synthetic[0] for c in fake_synthetic)

    pdm = PairedDataModule(str(root), synthetic=True, batch_size=2, **kw)
    syn = {"synthetic_set": kw["synthetic_set"]}
    pdm.prepare_data()
    pdm.setup("fit")
    batch = next(iter(pdm.train_dataloader()))
    assert batch["A"].shape == (2, 3, 32, 32) and "/paired/train/" in batch["A_path"][0]

    idm = ImageFolderDataModule(str(root), image_size=16, batch_size=2, num_workers=0, synthetic=True, **syn)
    idm.setup("fit")
    batch = next(iter(idm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and "trainB" in batch["path"][0]
    for call in fake_synthetic:
        call.pop("refusal_hint", None)
    assert all(c == fake_synthetic[0] for c in fake_synthetic)  # every module asks for the same set


@pytest.mark.parametrize("layout", ["aligned", "folders", "auto"])
def test_paired_datamodule_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "p"
    for split, n in (("train", 3), ("val", 2)):
        if layout == "aligned":
            _aligned_folder(root / split, n=n)
        else:
            for i in range(n):
                a = _img(40, 40, i)
                _save(root / split / "A", f"{i}.png", a)
                _save(root / split / "B", f"{i}.png", 255 - a)
    dm = PairedDataModule(str(root), layout=layout, batch_size=2, **_dm_kw())
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    assert (batch["A"] + batch["B"]).abs().max() <= PIXEL_TOL
    val = next(iter(dm.val_dataloader()))
    assert (val["A"] + val["B"]).abs().max() <= PIXEL_TOL
    dm.setup("test")  # no test/: falls back to val/
    assert len(dm.test_dataloader().dataset) == 2
    predict = PairedDataModule(str(root), layout=layout, batch_size=2, **_dm_kw())
    batches = list(predict.predict_dataloader())  # `gan-translate predict` on paired data: the test (here val) pairs
    assert [b["A"].shape[0] for b in batches] == [2] and torch.equal(batches[0]["A"], val["A"])


def test_pix2pix_predicts_from_the_paired_datamodule(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from gan_translate.models import Pix2Pix

    _aligned_folder(tmp_path / "p" / "test", n=3)
    data = PairedDataModule(str(tmp_path / "p"), batch_size=2, **_dm_kw())
    model = Pix2Pix(generator="unet", generator_args={"num_downs": 5}, ngf=4, ndf=4)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    outputs = trainer.predict(model, datamodule=data)
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert all(o.abs().max() <= 1 for o in outputs)


def test_image_folder_datamodule(tmp_path: Path) -> None:
    _save(tmp_path / "imgs", "wide.png", _img(30, 50, 0))
    _save(tmp_path / "imgs" / "sub", "tall.png", _img(50, 30, 1))
    _save(tmp_path / "imgs", "small.png", _img(8, 8, 2))
    dm = ImageFolderDataModule(str(tmp_path / "imgs"), image_size=24, batch_size=8, num_workers=0)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1 and batches[0]["image"].shape == (3, 3, 24, 24)
    assert batches[0]["image"].min() >= -1 and batches[0]["image"].max() <= 1


def test_image_folder_root_that_is_a_file_is_named(tmp_path: Path) -> None:
    _save(tmp_path, "one.png", _img(8, 8, 0))
    dm = ImageFolderDataModule(str(tmp_path / "one.png"), image_size=8, batch_size=1, num_workers=0)
    with pytest.raises(DataError, match=r"one\.png is a file, not a folder of images \(check --data.root\)$"):
        dm.setup("fit")
