"""LightningDataModules: unpaired (CycleGAN), paired (pix2pix) and single-folder (DCGAN) data.

All three are built by LightningCLI from YAML, hence the typed, defaulted ``__init__`` arguments
and the ``Args:`` sections (the CLI's ``--help`` text).

Randomness: every DataLoader gets its own ``torch.Generator`` seeded from ``seed`` (and the
global rank, so DDP ranks do not augment in lockstep), and ``worker_init_fn=seed_worker``
reseeds each worker's transforms from it. The data stream (order, random B, crops, flips)
therefore depends only on ``seed``, never repeats across workers, and is the same on reruns.
With ``num_workers=0`` the datasets are seeded directly in ``setup``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from gan_translate.data.io import OnBadFile
from gan_translate.data.paired import AlignedDataset, PairedFolderDataset
from gan_translate.data.resumable import ItemSeededDataset, ResumableDataLoader, ResumableSampler
from gan_translate.data.single import ImageFolderDataset
from gan_translate.data.transforms import FIXED_SIZE_PREPROCESS, build_transform, seed_worker
from gan_translate.data.unaligned import UnalignedDataset
from gan_translate.errors import DataError

__all__ = ["ImageFolderDataModule", "PairedDataModule", "UnpairedDataModule"]

_DOWNLOAD_HINT = (
    "get a dataset with `python datasets/download.py <name>`, or set synthetic: true to generate a small one"
)


class SizeCheckingCollate:
    """``default_collate`` that turns "images of different sizes" into a one-line DataError."""

    def __init__(self, preprocess: str) -> None:
        self.preprocess = preprocess

    def __call__(self, batch: list[dict[str, Any]]) -> Any:
        try:
            return default_collate(batch)
        except RuntimeError as exc:
            if "equal size" not in str(exc):
                raise
            paths = [item.get("A_path", item.get("path")) for item in batch]
            raise DataError(
                f"cannot batch images of different sizes ({', '.join(map(str, paths))}): preprocess "
                f"{self.preprocess!r} keeps each image's size; use batch_size 1 or a cropping preprocess"
            ) from None


class _BaseDataModule(pl.LightningDataModule):
    """Shared loader construction, seeding and synthetic-data generation."""

    def __init__(
        self,
        root: str,
        batch_size: int,
        num_workers: int,
        seed: int,
        synthetic: bool,
        synthetic_size: int,
        synthetic_train: int,
        synthetic_test: int,
        synthetic_seed: int,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise DataError(f"num_workers must be 0 or more, got {num_workers}")
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.synthetic = synthetic
        self.synthetic_size = synthetic_size
        self.synthetic_train = synthetic_train
        self.synthetic_test = synthetic_test
        self.synthetic_seed = synthetic_seed

    # --- data on disk -------------------------------------------------------------------------
    def _ensure_synthetic(self) -> None:
        """With ``synthetic``, make sure the synthetic set exists under ``root`` (generate it if not).

        ``ensure_synthetic`` is idempotent and cheap on a complete set, resumes an interrupted one,
        and refuses (one-line DataError) a folder holding other data or other parameters. It runs
        in ``prepare_data`` (rank 0) and again in ``setup``, so a bare ``setup()`` works too.
        """
        if self.synthetic:
            from gan_translate.data.synthetic import ensure_synthetic  # lazy: only synthetic runs need it

            ensure_synthetic(
                self.root,
                size=self.synthetic_size,
                n_train=self.synthetic_train,
                n_test=self.synthetic_test,
                seed=self.synthetic_seed,
                # `synthetic: true` (the quickstart configs) pointed at the user's own data: say how to train on it.
                refusal_hint="to train on the images there, pass --data.synthetic false; "
                "to generate the synthetic set, point --data.root at an empty or new folder",
            )

    def prepare_data(self) -> None:
        """Generate the synthetic dataset when asked for and missing (runs on rank 0 only)."""
        self._ensure_synthetic()

    def _require(self, folders: list[Path]) -> None:
        for folder in folders:
            if folder.is_file():
                raise DataError(f"{folder} is a file, not a folder of images (check --data.root)")
            if not folder.is_dir():
                raise DataError(f"dataset folder not found: {folder} ({_DOWNLOAD_HINT})")

    # --- loaders ------------------------------------------------------------------------------
    def _stream_seed(self) -> int:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return self.seed + 1_000_003 * rank

    def _loader(self, dataset: Dataset[Any], *, train: bool, batch_size: int, preprocess: str) -> DataLoader[Any]:
        n = len(dataset)  # type: ignore[arg-type]
        if train:
            # Order and augmentations from (seed, epoch, position) only: exact resume (data/resumable.py).
            world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
            return ResumableDataLoader(
                ItemSeededDataset(dataset),
                batch_size=batch_size,
                sampler=ResumableSampler(n, seed=self.seed, num_replicas=world, rank=rank),
                drop_last=n // world > batch_size,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                worker_init_fn=seed_worker,
                pin_memory=torch.cuda.is_available(),
                generator=torch.Generator().manual_seed(self._stream_seed()),
                collate_fn=SizeCheckingCollate(preprocess),
            )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            # Dropping the last partial batch keeps batch-norm statistics sane, but with a dataset no
            # bigger than one batch it would leave nothing to train on.
            drop_last=train and n > batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_worker,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self._stream_seed()),
            collate_fn=SizeCheckingCollate(preprocess),
        )


def _first(dataset: Dataset[Any], limit: int) -> Dataset[Any]:
    """The first ``limit`` items (all of them when ``limit <= 0``)."""
    n = len(dataset)  # type: ignore[arg-type]
    return dataset if limit <= 0 or limit >= n else Subset(dataset, range(limit))


class _TwoDomainDataModule(_BaseDataModule):
    """What the CycleGAN and pix2pix data share: ``{"A", "B", "A_path", "B_path"}`` batches for fit, validate
    and test, from ``train_set`` / ``val_set`` / ``test_set`` built by the subclass's ``setup``."""

    train_set: Dataset[Any] | None
    val_set: Dataset[Any] | None
    test_set: Dataset[Any] | None

    def _no_validation_message(self) -> str:
        raise NotImplementedError

    def _eval_batch_size(self) -> int:
        # Images of different sizes (no fixed-size preprocessing) cannot share a batch.
        return self.batch_size if self.preprocess in FIXED_SIZE_PREPROCESS else 1

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches ``{"A", "B", "A_path", "B_path"}``."""
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        return self._loader(self.train_set, train=True, batch_size=self.batch_size, preprocess=self.preprocess)

    def val_dataloader(self) -> DataLoader[Any] | list[Any]:
        """Deterministic batches of the first ``val_max_images`` validation (else test) items."""
        if self.val_set is None:
            self.setup("validate")
        if self.val_set is None:
            rank_zero_warn(self._no_validation_message())
            return []
        return self._loader(self.val_set, train=False, batch_size=self._eval_batch_size(), preprocess=self.preprocess)

    def test_dataloader(self) -> DataLoader[Any]:
        """Deterministic batches of the whole test split."""
        if self.test_set is None:
            self.setup("test")
        assert self.test_set is not None
        return self._loader(self.test_set, train=False, batch_size=self._eval_batch_size(), preprocess=self.preprocess)


class UnpairedDataModule(_TwoDomainDataModule):
    """Unpaired two-domain data for CycleGAN: ``root/{trainA,trainB,testA,testB}``.

    Validation uses ``valA``/``valB`` when present, else ``testA``/``testB``. Ground-truth folders
    next to them (``testA_gt``: the true B for each testA image, ``testB_gt``: the true A for each
    testB image; ``valA_gt``/``valB_gt`` likewise) are used automatically and appear in the batches
    as ``"A_gt"``/``"B_gt"``. ``predict`` yields ``{"image", "path"}`` batches of the testA images.

    Args:
        root: Dataset folder holding trainA/, trainB/, testA/, testB/ (and optionally valA/, valB/, *_gt/).
        preprocess: Resizing/cropping: resize_and_crop, scale_width, scale_width_and_crop, crop, resize, none.
        load_size: Size images are resized to before cropping (the width for scale_width*).
        crop_size: Size of the (random in training, center at evaluation) square crop.
        flip: Randomly flip training images horizontally.
        batch_size: Images per batch (CycleGAN classically uses 1).
        num_workers: DataLoader worker processes (0 loads in the main process).
        serial_batches: Pair A[i] with B[i % |B|] instead of a random B.
        max_dataset_size: Use at most this many images per training folder (null: all).
        val_max_images: Validate on the first N images only (0: all).
        synthetic: Generate a small synthetic dataset with ground truth in root when it is missing.
        synthetic_size: Image size of the synthetic dataset.
        synthetic_train: Training images per domain in the synthetic dataset.
        synthetic_test: Test images per domain in the synthetic dataset.
        synthetic_seed: Seed of the synthetic dataset (kept apart from seed: a new data order reuses the set).
        seed: Seed of the data stream (shuffling, random B, crops, flips).
        on_bad_file: What to do with unreadable images: error (stop, naming the file) or skip (warn).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 4,
        serial_batches: bool = False,
        max_dataset_size: int | None = None,
        val_max_images: int = 16,
        synthetic: bool = False,
        synthetic_size: int = 64,
        synthetic_train: int = 200,
        synthetic_test: int = 20,
        synthetic_seed: int = 0,
        seed: int = 0,
        on_bad_file: OnBadFile = "error",
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            synthetic=synthetic,
            synthetic_size=synthetic_size,
            synthetic_train=synthetic_train,
            synthetic_test=synthetic_test,
            synthetic_seed=synthetic_seed,
        )
        self.save_hyperparameters()
        build_transform(preprocess, load_size, crop_size)  # fail at construction on a bad name or size
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.serial_batches = serial_batches
        self.max_dataset_size = max_dataset_size
        self.val_max_images = val_max_images
        self.on_bad_file: OnBadFile = on_bad_file
        self.train_set: UnalignedDataset | None = None
        self.val_set: Dataset[Any] | None = None
        self.test_set: UnalignedDataset | None = None
        self.predict_set: ImageFolderDataset | None = None

    def _folders(self, stage: str) -> list[Path]:
        names = {"fit": ["trainA", "trainB"], "test": ["testA", "testB"], "predict": ["testA"]}
        return [self.root / n for n in names[stage]]

    def _eval_split(self) -> str | None:
        for split in ("val", "test"):
            if (self.root / f"{split}A").is_dir() and (self.root / f"{split}B").is_dir():
                return split
        return None

    def _eval_transform(self) -> Any:
        return build_transform(self.preprocess, self.load_size, self.crop_size, flip=False, train=False)

    def _eval_set(self, split: str) -> UnalignedDataset:
        gt_a, gt_b = self.root / f"{split}A_gt", self.root / f"{split}B_gt"
        return UnalignedDataset(
            self.root / f"{split}A",
            self.root / f"{split}B",
            self._eval_transform(),
            serial_b=True,
            gt_a=gt_a if gt_a.is_dir() else None,
            gt_b=gt_b if gt_b.is_dir() else None,
            on_bad_file=self.on_bad_file,
            seed=self.seed,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs (generating synthetic data first if it was not yet)."""
        self._ensure_synthetic()
        if stage in (None, "fit"):
            self._require(self._folders("fit"))
            self.train_set = UnalignedDataset(
                self.root / "trainA",
                self.root / "trainB",
                build_transform(self.preprocess, self.load_size, self.crop_size, self.flip, train=True),
                serial_b=self.serial_batches,
                max_size=self.max_dataset_size,
                on_bad_file=self.on_bad_file,
                seed=self._stream_seed(),
            )
        if stage in (None, "fit", "validate"):
            split = self._eval_split()
            self.val_set = _first(self._eval_set(split), self.val_max_images) if split else None
        if stage in (None, "test"):
            self._require(self._folders("test"))
            self.test_set = self._eval_set("test")
        if stage in (None, "predict"):
            self._require(self._folders("predict"))
            self.predict_set = ImageFolderDataset(
                self.root / "testA", self._eval_transform(), recursive=False, on_bad_file=self.on_bad_file
            )

    def _no_validation_message(self) -> str:
        return f"no validation data: neither valA/valB nor testA/testB in {self.root}"

    def predict_dataloader(self) -> DataLoader[Any]:
        """The testA images as ``{"image", "path"}`` batches (eval preprocessing)."""
        if self.predict_set is None:
            self.setup("predict")
        assert self.predict_set is not None
        return self._loader(
            self.predict_set, train=False, batch_size=self._eval_batch_size(), preprocess=self.preprocess
        )


def _detect_layout(split_dir: Path) -> Literal["aligned", "folders"]:
    return "folders" if (split_dir / "A").is_dir() and (split_dir / "B").is_dir() else "aligned"


class PairedDataModule(_TwoDomainDataModule):
    """Pixel-aligned pairs for pix2pix, in ``train/``, ``val/`` and ``test/`` split folders.

    ``layout="aligned"``: each split folder holds A|B side-by-side images (the classic pix2pix
    datasets); ``"folders"``: each split folder holds ``A/`` and ``B/`` with matching file names;
    ``"auto"``: ``folders`` when ``<split>/A`` and ``<split>/B`` exist, else ``aligned``.
    Validation uses ``val/`` (else ``test/``), testing ``test/`` (else ``val/``).

    With ``synthetic: true``, ``root`` is the synthetic dataset root (the same folder
    UnpairedDataModule uses); it is generated when missing and the pairs are read from
    ``root/paired`` with the layout detected automatically.

    Args:
        root: Folder holding train/, val/, test/ (with synthetic: the synthetic root; pairs are in root/paired).
        layout: aligned (A|B side by side in one file), folders (A/ and B/ subfolders) or auto.
        direction: AtoB translates the left/A images into the right/B ones; BtoA the reverse.
        preprocess: Resizing/cropping: resize_and_crop, scale_width, scale_width_and_crop, crop, resize, none.
        load_size: Size images are resized to before cropping (the width for scale_width*).
        crop_size: Size of the (random in training, center at evaluation) square crop.
        flip: Randomly flip training pairs horizontally (both images alike).
        batch_size: Pairs per batch (pix2pix classically uses 1).
        num_workers: DataLoader worker processes (0 loads in the main process).
        max_dataset_size: Use at most this many training pairs (null: all).
        val_max_images: Validate on the first N pairs only (0: all).
        synthetic: Generate a small synthetic dataset in root when it is missing and train on root/paired.
        synthetic_size: Image size of the synthetic dataset.
        synthetic_train: Training images in the synthetic dataset.
        synthetic_test: Test images in the synthetic dataset.
        synthetic_seed: Seed of the synthetic dataset (kept apart from seed: a new data order reuses the set).
        seed: Seed of the data stream (shuffling, crops, flips).
        on_bad_file: What to do with unreadable images: error (stop, naming the file) or skip (warn).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        layout: Literal["aligned", "folders", "auto"] = "aligned",
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 4,
        max_dataset_size: int | None = None,
        val_max_images: int = 16,
        synthetic: bool = False,
        synthetic_size: int = 64,
        synthetic_train: int = 200,
        synthetic_test: int = 20,
        synthetic_seed: int = 0,
        seed: int = 0,
        on_bad_file: OnBadFile = "error",
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            synthetic=synthetic,
            synthetic_size=synthetic_size,
            synthetic_train=synthetic_train,
            synthetic_test=synthetic_test,
            synthetic_seed=synthetic_seed,
        )
        self.save_hyperparameters()
        if layout not in ("aligned", "folders", "auto"):
            raise DataError(f"layout must be 'aligned', 'folders' or 'auto', got {layout!r}")
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        build_transform(preprocess, load_size, crop_size)  # fail at construction on a bad name or size
        self.layout = layout
        self.direction = direction
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.max_dataset_size = max_dataset_size
        self.val_max_images = val_max_images
        self.on_bad_file: OnBadFile = on_bad_file
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None
        self.test_set: Dataset[Any] | None = None

    @property
    def data_root(self) -> Path:
        """Where the split folders are: ``root``, or ``root/paired`` for synthetic data."""
        return self.root / "paired" if self.synthetic else self.root

    def _split_dir(self, *candidates: str) -> Path | None:
        return next((self.data_root / c for c in candidates if (self.data_root / c).is_dir()), None)

    def _dataset(self, split_dir: Path, train: bool, max_size: int | None) -> Dataset[Any]:
        transform = build_transform(self.preprocess, self.load_size, self.crop_size, self.flip and train, train=train)
        seed = self._stream_seed() if train else self.seed
        layout = "auto" if self.synthetic else self.layout
        if layout == "auto":
            layout = _detect_layout(split_dir)
        if layout == "folders":
            return PairedFolderDataset(
                split_dir / "A", split_dir / "B", transform, self.direction, max_size, self.on_bad_file, seed
            )
        return AlignedDataset(split_dir, transform, self.direction, max_size, self.on_bad_file, seed)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs (generating synthetic data first if it was not yet)."""
        self._ensure_synthetic()
        if stage in (None, "fit"):
            self._require([self.data_root / "train"])
            self.train_set = self._dataset(self.data_root / "train", True, self.max_dataset_size)
        if stage in (None, "fit", "validate"):
            split_dir = self._split_dir("val", "test")
            self.val_set = _first(self._dataset(split_dir, False, None), self.val_max_images) if split_dir else None
        if stage in (None, "test", "predict"):
            split_dir = self._split_dir("test", "val")
            if split_dir is None:
                raise DataError(f"dataset folder not found: {self.data_root / 'test'} (nor {self.data_root / 'val'})")
            self.test_set = self._dataset(split_dir, False, None)

    def _no_validation_message(self) -> str:
        return f"no validation data: neither val/ nor test/ in {self.data_root}"

    def predict_dataloader(self) -> DataLoader[Any]:
        """The test pairs (else val) in order: ``predict`` translates their inputs (``A`` after ``direction``)."""
        return self.test_dataloader()


class ImageFolderDataModule(_BaseDataModule):
    """One folder of images for DCGAN: shorter side resized to ``image_size``, then center-cropped.

    With ``synthetic: true``, ``root`` is the synthetic dataset root (generated when missing) and
    its ``trainB`` images are used.

    Args:
        root: Folder of training images (searched recursively by default); with synthetic: the synthetic root.
        image_size: Output image size (square).
        batch_size: Images per batch (DCGAN classically uses 128).
        num_workers: DataLoader worker processes (0 loads in the main process).
        recursive: Also use images in subfolders of root.
        flip: Randomly flip images horizontally.
        max_dataset_size: Use at most this many images (null: all).
        synthetic: Generate a small synthetic dataset in root when it is missing and use its trainB images.
        synthetic_size: Image size of the synthetic dataset.
        synthetic_train: Training images per domain in the synthetic dataset.
        synthetic_test: Test images per domain in the synthetic dataset.
        synthetic_seed: Seed of the synthetic dataset (kept apart from seed: a new data order reuses the set).
        seed: Seed of the data stream (shuffling, flips).
        on_bad_file: What to do with unreadable images: error (stop, naming the file) or skip (warn).
    """

    _PREPROCESS = "scale_shortside_and_center_crop"

    def __init__(
        self,
        root: str = "data/synthetic",
        image_size: int = 64,
        batch_size: int = 128,
        num_workers: int = 4,
        recursive: bool = True,
        flip: bool = False,
        max_dataset_size: int | None = None,
        synthetic: bool = False,
        synthetic_size: int = 64,
        synthetic_train: int = 200,
        synthetic_test: int = 20,
        synthetic_seed: int = 0,
        seed: int = 0,
        on_bad_file: OnBadFile = "error",
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            synthetic=synthetic,
            synthetic_size=synthetic_size,
            synthetic_train=synthetic_train,
            synthetic_test=synthetic_test,
            synthetic_seed=synthetic_seed,
        )
        self.save_hyperparameters()
        build_transform(self._PREPROCESS, image_size, image_size)  # fail at construction on a bad size
        self.image_size = image_size
        self.recursive = recursive
        self.flip = flip
        self.max_dataset_size = max_dataset_size
        self.on_bad_file: OnBadFile = on_bad_file
        self.train_set: ImageFolderDataset | None = None

    @property
    def image_dir(self) -> Path:
        """The folder images are read from: ``root``, or ``root/trainB`` for synthetic data."""
        return self.root / "trainB" if self.synthetic else self.root

    def setup(self, stage: str | None = None) -> None:
        """Build the training dataset (generating synthetic data first if it was not yet)."""
        self._ensure_synthetic()
        self._require([self.image_dir])
        transform = build_transform(self._PREPROCESS, self.image_size, self.image_size, self.flip, train=True)
        self.train_set = ImageFolderDataset(
            self.image_dir,
            transform,
            recursive=self.recursive,
            max_size=self.max_dataset_size,
            on_bad_file=self.on_bad_file,
            seed=self._stream_seed(),
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled ``{"image", "path"}`` batches."""
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        return self._loader(self.train_set, train=True, batch_size=self.batch_size, preprocess=self._PREPROCESS)
