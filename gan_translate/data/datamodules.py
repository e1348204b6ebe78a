"""LightningDataModules: unpaired (CycleGAN), paired (pix2pix) and single-folder (DCGAN) data.

All are built by LightningCLI from YAML, hence the typed, defaulted ``__init__`` arguments and the ``Args:``
sections (the CLI's ``--help`` text). Option groups are dataclasses of :mod:`gan_translate.data.options`
(``transform``, ``synthetic_set``); the folder layouts are those of :mod:`gan_translate.data.layouts`.

Randomness: the training stream (order, random B, crops, flips) is a pure function of ``seed``, the epoch and
the position (:mod:`gan_translate.data.resumable`), and of the global rank, so DDP ranks do not augment in
lockstep; it never repeats across workers and is the same on reruns and after a resume. Evaluation loaders are
deterministic.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from gan_translate.core.directions import Direction, check_direction
from gan_translate.core.errors import DataError
from gan_translate.core.lightning_compat import constructor_arguments
from gan_translate.core.random_streams import rank_seed
from gan_translate.data.io import OnBadFile
from gan_translate.data.layouts import (
    detect_paired_layout,
    first_split,
    ground_truth_folder,
    unpaired_eval_split,
    unpaired_folders,
)
from gan_translate.data.options import ImageTransform, SyntheticSet, plain_hparams
from gan_translate.data.paired import AlignedDataset, PairedFolderDataset
from gan_translate.data.resumable import ItemSeededDataset, ResumableDataLoader, ResumableSampler
from gan_translate.data.single import ImageFolderDataset
from gan_translate.data.transforms import FIXED_SIZE_PREPROCESS, build_transform, seed_worker
from gan_translate.data.unaligned import UnalignedDataset

__all__ = ["ImageDataModule", "ImageFolderDataModule", "PairedDataModule", "UnpairedDataModule"]

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


def _first(dataset: Dataset[Any], limit: int) -> Dataset[Any]:
    """The first ``limit`` items (all of them when ``limit <= 0``)."""
    n = len(dataset)  # type: ignore[arg-type]
    return dataset if limit <= 0 or limit >= n else Subset(dataset, range(limit))


class ImageDataModule(pl.LightningDataModule):
    """What every DataModule here shares: the loaders (resumable for training), seeding, bad-file handling and, when
    asked, the synthetic dataset generated under ``root``. Subclasses take their own options and pass the rest on
    (``**kwargs``: LightningCLI lists these with theirs), then build ``train_set`` (and evaluation sets) in ``setup``.

    Args:
        root: Dataset folder (with synthetic: where the synthetic set is generated).
        batch_size: Images (or pairs) per batch.
        num_workers: DataLoader worker processes (0 loads in the main process).
        max_dataset_size: Use at most this many training images per folder (null: all).
        synthetic: Generate the small synthetic dataset (with ground truth) in root when it is missing.
        synthetic_set: Size, image counts and seed of that synthetic dataset.
        seed: Seed of the data stream (shuffling, random partners, crops, flips).
        on_bad_file: What to do with unreadable images: error (stop, naming the file) or skip (warn).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        batch_size: int = 1,
        num_workers: int = 4,
        max_dataset_size: int | None = None,
        synthetic: bool = False,
        synthetic_set: SyntheticSet = SyntheticSet(),
        seed: int = 0,
        on_bad_file: OnBadFile = "error",
    ) -> None:
        super().__init__()
        # Every subclass's arguments too; option groups as plain dicts (checkpoints are read with weights_only).
        self.save_hyperparameters(plain_hparams(constructor_arguments(inspect.currentframe())))  # type: ignore[arg-type]
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise DataError(f"num_workers must be 0 or more, got {num_workers}")
        if max_dataset_size is not None and max_dataset_size < 1:
            raise DataError(f"max_dataset_size must be positive or null, got {max_dataset_size}")
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_dataset_size = max_dataset_size
        self.synthetic = synthetic
        self.synthetic_set = synthetic_set
        self.seed = seed
        self.on_bad_file: OnBadFile = on_bad_file

    # --- data on disk -------------------------------------------------------------------------
    def _ensure_synthetic(self) -> None:
        """With ``synthetic``, make sure the synthetic set exists under ``root`` (generate it if not).

        ``ensure_synthetic`` is idempotent and cheap on a complete set, resumes an interrupted one, and refuses
        (one-line DataError) a folder holding other data or other parameters. It runs in ``prepare_data`` (rank
        0) and again in ``setup``, so a bare ``setup()`` works too.
        """
        if self.synthetic:
            from gan_translate.data.synthetic import ensure_synthetic  # lazy: only synthetic runs need it

            spec = self.synthetic_set
            ensure_synthetic(
                self.root, size=spec.size, n_train=spec.n_train, n_test=spec.n_test, seed=spec.seed,
                # `synthetic: true` (the quickstart configs) pointed at the user's own data: say how to train on it.
                refusal_hint="to train on the images there, pass --data.synthetic false; "
                "to generate the synthetic set, point --data.root at an empty or new folder",
            )

    def prepare_data(self) -> None:
        """Generate the synthetic dataset when asked for and missing (runs on rank 0 only)."""
        self._ensure_synthetic()

    @staticmethod
    def _require(folders: list[Path]) -> None:
        for folder in folders:
            if folder.is_file():
                raise DataError(f"{folder} is a file, not a folder of images (check --data.root)")
            if not folder.is_dir():
                raise DataError(f"dataset folder not found: {folder} ({_DOWNLOAD_HINT})")

    # --- loaders ------------------------------------------------------------------------------
    def _stream_seed(self) -> int:
        return rank_seed(self.seed, self.trainer.global_rank if self.trainer is not None else 0)

    def _loader(self, dataset: Dataset[Any], *, train: bool, batch_size: int, preprocess: str) -> DataLoader[Any]:
        common: dict[str, Any] = dict(
            batch_size=batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_worker,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self._stream_seed()),
            collate_fn=SizeCheckingCollate(preprocess),
        )
        if not train:
            return DataLoader(dataset, shuffle=False, drop_last=False, **common)
        # Order and augmentations from (seed, epoch, position) only: exact resume (data/resumable.py).
        n = len(dataset)  # type: ignore[arg-type]
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        return ResumableDataLoader(
            ItemSeededDataset(dataset),
            sampler=ResumableSampler(n, seed=self.seed, num_replicas=world, rank=rank),
            # Dropping the last partial batch keeps batch-norm statistics sane, but with a dataset no bigger
            # than one batch it would leave nothing to train on.
            drop_last=n // world > batch_size,
            **common,
        )

    def _train_loader(self, preprocess: str) -> DataLoader[Any]:
        train_set = getattr(self, "train_set", None)
        if train_set is None:
            self.setup("fit")
            train_set = self.train_set
        return self._loader(train_set, train=True, batch_size=self.batch_size, preprocess=preprocess)


class _TwoDomainDataModule(ImageDataModule):
    """What the CycleGAN and pix2pix data share: ``{"A", "B", "A_path", "B_path"}`` batches for fit, validate
    and test, from ``train_set`` / ``val_set`` / ``test_set`` built by the subclass's ``setup``, preprocessed
    as ``transform`` says."""

    train_set: Dataset[Any] | None = None
    val_set: Dataset[Any] | None = None
    test_set: Dataset[Any] | None = None

    def __init__(self, transform: ImageTransform = ImageTransform(), val_max_images: int = 16, **kwargs: Any) -> None:
        """
        Args:
            transform: Resizing, cropping and flipping (preprocess, load_size, crop_size, flip; pairs alike).
            val_max_images: Validate on the first N images (or pairs) only (0: all).
        """
        super().__init__(**kwargs)
        build_transform(transform.preprocess, transform.load_size, transform.crop_size)  # fail now on a bad value
        self.transform = transform
        self.val_max_images = val_max_images

    def _build_transform(self, train: bool) -> Any:
        t = self.transform
        return build_transform(t.preprocess, t.load_size, t.crop_size, t.flip and train, train=train)

    def _no_validation_message(self) -> str:
        raise NotImplementedError

    def _eval_loader(self, dataset: Dataset[Any]) -> DataLoader[Any]:
        # Images of different sizes (no fixed-size preprocessing) cannot share a batch.
        preprocess = self.transform.preprocess
        batch_size = self.batch_size if preprocess in FIXED_SIZE_PREPROCESS else 1
        return self._loader(dataset, train=False, batch_size=batch_size, preprocess=preprocess)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches ``{"A", "B", "A_path", "B_path"}``."""
        return self._train_loader(self.transform.preprocess)

    def val_dataloader(self) -> DataLoader[Any] | list[Any]:
        """Deterministic batches of the first ``val_max_images`` validation (else test) items."""
        if self.val_set is None:
            self.setup("validate")
        if self.val_set is None:
            rank_zero_warn(self._no_validation_message())
            return []
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader[Any]:
        """Deterministic batches of the whole test split."""
        if self.test_set is None:
            self.setup("test")
        assert self.test_set is not None
        return self._eval_loader(self.test_set)


class UnpairedDataModule(_TwoDomainDataModule):
    """Unpaired two-domain data for CycleGAN: ``root/{trainA,trainB,testA,testB}``.

    Validation uses ``valA``/``valB`` when present, else ``testA``/``testB``. Ground-truth folders
    next to them (``testA_gt``: the true B for each testA image, ``testB_gt``: the true A for each
    testB image; ``valA_gt``/``valB_gt`` likewise) are used automatically and appear in the batches
    as ``"A_gt"``/``"B_gt"``. ``predict`` yields ``{"image", "path"}`` batches of the testA images.
    The other options (``transform``, ``batch_size``, ``synthetic``, ...) are those of every DataModule here.

    Args:
        root: Dataset folder holding trainA/, trainB/, testA/, testB/ (and optionally valA/, valB/, *_gt/).
        serial_batches: Pair A[i] with B[i % |B|] instead of a random B.
    """

    def __init__(self, root: str = "data/synthetic", serial_batches: bool = False, **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
        self.serial_batches = serial_batches
        self.predict_set: ImageFolderDataset | None = None

    def _eval_set(self, split: str) -> UnalignedDataset:
        folder_a, folder_b = unpaired_folders(self.root, split)
        return UnalignedDataset(
            folder_a,
            folder_b,
            self._build_transform(train=False),
            serial_b=True,
            gt_a=ground_truth_folder(self.root, split, "A"),
            gt_b=ground_truth_folder(self.root, split, "B"),
            on_bad_file=self.on_bad_file,
            seed=self.seed,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs (generating synthetic data first if it was not yet)."""
        self._ensure_synthetic()
        if stage in (None, "fit"):
            self._require(list(unpaired_folders(self.root, "train")))
            self.train_set = UnalignedDataset(
                *unpaired_folders(self.root, "train"),
                self._build_transform(train=True),
                serial_b=self.serial_batches,
                max_size=self.max_dataset_size,
                on_bad_file=self.on_bad_file,
                seed=self._stream_seed(),
            )
        if stage in (None, "fit", "validate"):
            split = unpaired_eval_split(self.root)
            self.val_set = _first(self._eval_set(split), self.val_max_images) if split else None
        if stage in (None, "test"):
            self._require(list(unpaired_folders(self.root, "test")))
            self.test_set = self._eval_set("test")
        if stage in (None, "predict"):
            test_a = unpaired_folders(self.root, "test")[0]
            self._require([test_a])
            self.predict_set = ImageFolderDataset(
                test_a, self._build_transform(train=False), recursive=False, on_bad_file=self.on_bad_file
            )

    def _no_validation_message(self) -> str:
        return f"no validation data: neither valA/valB nor testA/testB in {self.root}"

    def predict_dataloader(self) -> DataLoader[Any]:
        """The testA images as ``{"image", "path"}`` batches (eval preprocessing)."""
        if self.predict_set is None:
            self.setup("predict")
        assert self.predict_set is not None
        return self._eval_loader(self.predict_set)


class PairedDataModule(_TwoDomainDataModule):
    """Pixel-aligned pairs for pix2pix, in ``train/``, ``val/`` and ``test/`` split folders.

    ``layout="aligned"``: each split folder holds A|B side-by-side images (the classic pix2pix
    datasets); ``"folders"``: each split folder holds ``A/`` and ``B/`` with matching file names;
    ``"auto"``: ``folders`` when ``<split>/A`` and ``<split>/B`` exist, else ``aligned``.
    Validation uses ``val/`` (else ``test/``), testing ``test/`` (else ``val/``).

    With ``synthetic: true``, ``root`` is the synthetic dataset root (the same folder
    UnpairedDataModule uses); it is generated when missing and the pairs are read from
    ``root/paired`` with the layout detected automatically. The other options (``transform``,
    ``batch_size``, ...) are those of every DataModule here.

    Args:
        root: Folder holding train/, val/, test/ (with synthetic: the synthetic root; pairs are in root/paired).
        layout: aligned (A|B side by side in one file), folders (A/ and B/ subfolders) or auto.
        direction: AtoB translates the left/A images into the right/B ones; BtoA the reverse.
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        layout: Literal["aligned", "folders", "auto"] = "aligned",
        direction: Direction = "AtoB",
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if layout not in ("aligned", "folders", "auto"):
            raise DataError(f"layout must be 'aligned', 'folders' or 'auto', got {layout!r}")
        self.direction = check_direction(direction)
        self.layout = layout

    @property
    def data_root(self) -> Path:
        """Where the split folders are: ``root``, or ``root/paired`` for synthetic data."""
        return self.root / "paired" if self.synthetic else self.root

    def _dataset(self, split_dir: Path, train: bool, max_size: int | None) -> Dataset[Any]:
        transform = self._build_transform(train)
        seed = self._stream_seed() if train else self.seed
        layout = "auto" if self.synthetic else self.layout
        if layout == "auto":
            layout = detect_paired_layout(split_dir)
        if layout == "folders":
            return PairedFolderDataset(split_dir, transform, self.direction, max_size, self.on_bad_file, seed)
        return AlignedDataset(split_dir, transform, self.direction, max_size, self.on_bad_file, seed)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs (generating synthetic data first if it was not yet)."""
        self._ensure_synthetic()
        if stage in (None, "fit"):
            self._require([self.data_root / "train"])
            self.train_set = self._dataset(self.data_root / "train", True, self.max_dataset_size)
        if stage in (None, "fit", "validate"):
            split_dir = first_split(self.data_root, "val", "test")
            self.val_set = _first(self._dataset(split_dir, False, None), self.val_max_images) if split_dir else None
        if stage in (None, "test", "predict"):
            split_dir = first_split(self.data_root, "test", "val")
            if split_dir is None:
                raise DataError(f"dataset folder not found: {self.data_root / 'test'} (nor {self.data_root / 'val'})")
            self.test_set = self._dataset(split_dir, False, None)

    def _no_validation_message(self) -> str:
        return f"no validation data: neither val/ nor test/ in {self.data_root}"

    def predict_dataloader(self) -> DataLoader[Any]:
        """The test pairs (else val) in order: ``predict`` translates their inputs (``A`` after ``direction``)."""
        return self.test_dataloader()


class ImageFolderDataModule(ImageDataModule):
    """One folder of images for DCGAN: shorter side resized to ``image_size``, then center-cropped.

    With ``synthetic: true``, ``root`` is the synthetic dataset root (generated when missing) and
    its ``trainB`` images are used. The other options (``num_workers``, ``seed``, ...) are those of every
    DataModule here.

    Args:
        root: Folder of training images (searched recursively by default); with synthetic: the synthetic root.
        image_size: Output image size (square).
        batch_size: Images per batch (DCGAN classically uses 128).
        recursive: Also use images in subfolders of root.
        flip: Randomly flip images horizontally.
    """

    _PREPROCESS = "scale_shortside_and_center_crop"

    def __init__(
        self,
        root: str = "data/synthetic",
        image_size: int = 64,
        batch_size: int = 128,
        recursive: bool = True,
        flip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, batch_size=batch_size, **kwargs)
        build_transform(self._PREPROCESS, image_size, image_size)  # fail at construction on a bad size
        self.image_size = image_size
        self.recursive = recursive
        self.flip = flip
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
        return self._train_loader(self._PREPROCESS)
