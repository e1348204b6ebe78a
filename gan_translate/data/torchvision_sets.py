"""MNIST, CIFAR-10 and CelebA through torchvision, as ``{"image", "path"}`` batches for DCGAN.

The datasets are downloaded into ``root`` on first use (``download: true``, rank 0 only, in
``prepare_data``). Without internet, or when a download fails, the error is one line that says what
failed and which files to put where by hand; nothing else needs the network. Images come out exactly
like :class:`~gan_translate.data.datamodules.ImageFolderDataModule`'s: RGB (MNIST's grey repeated),
shorter side resized to ``image_size`` and center-cropped, float CHW in [-1, 1]. A 1-channel model
converts them back to grey (exactly, for grey images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from gan_translate.core.errors import DataError
from gan_translate.data.base import SeededTransformDataset
from gan_translate.data.datamodules import ImageDataModule
from gan_translate.data.io import to_rgb_array
from gan_translate.data.transforms import build_transform

__all__ = ["TORCHVISION_DATASETS", "TorchvisionDataModule", "TorchvisionImages", "open_torchvision_dataset"]

DatasetName = Literal["mnist", "cifar10", "celeba"]
Split = Literal["train", "test", "all"]
TORCHVISION_DATASETS: tuple[str, ...] = ("mnist", "cifar10", "celeba")

_PREPROCESS = "scale_shortside_and_center_crop"
_CELEBA_FILES = (
    "list_eval_partition.txt, identity_CelebA.txt, list_attr_celeba.txt, list_bbox_celeba.txt, "
    "list_landmarks_align_celeba.txt"
)


def _location(name: str, root: Path) -> Path:
    """Where torchvision keeps ``name`` under ``root``."""
    return {"mnist": root / "MNIST" / "raw", "cifar10": root / "cifar-10-batches-py", "celeba": root / "celeba"}[name]


def _manual_hint(name: str, root: Path) -> str:
    """How to provide the files without torchvision's download."""
    if name == "mnist":
        return (
            f"{root / 'MNIST' / 'raw'} must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz files from "
            "https://ossci-datasets.s3.amazonaws.com/mnist/, unpacked when download is true)"
        )
    if name == "cifar10":
        return (
            f"put cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) in {root} "
            "(unpacked when download is true) or its unpacked cifar-10-batches-py/ folder"
        )
    return (
        f"{root / 'celeba'} must hold img_align_celeba/ and {_CELEBA_FILES} (from the CelebA website); "
        f"or train on the images alone with gan_translate.data.ImageFolderDataModule, root: "
        f"{root / 'celeba' / 'img_align_celeba'}"
    )


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or "no details"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"


def _construct(name: str, root: Path, split: str, download: bool) -> Dataset[Any]:
    """The torchvision dataset object(s) for ``split`` (``all``: train and test together)."""
    from torchvision import datasets

    if name == "mnist":
        parts = {"train": [True], "test": [False], "all": [True, False]}[split]
        sets = [datasets.MNIST(str(root), train=t, download=download) for t in parts]
    elif name == "cifar10":
        parts = {"train": [True], "test": [False], "all": [True, False]}[split]
        sets = [datasets.CIFAR10(str(root), train=t, download=download) for t in parts]
    else:
        # target_type=[]: only the images are needed (no attribute tensors per item).
        sets = [datasets.CelebA(str(root), split=split, target_type=[], download=download)]
    return sets[0] if len(sets) == 1 else ConcatDataset(sets)


def open_torchvision_dataset(name: str, root: str | os.PathLike[str], split: str = "train", download: bool = False) -> Dataset[Any]:
    """Open (and with ``download`` first fetch) a torchvision dataset; every failure is a one-line DataError."""
    if name not in TORCHVISION_DATASETS:
        raise DataError(f"unknown torchvision dataset {name!r}; valid names: {', '.join(TORCHVISION_DATASETS)}")
    if split not in ("train", "test", "all"):
        raise DataError(f"split must be train, test or all, got {split!r}")
    root = Path(root).expanduser()
    if download:
        try:
            root.mkdir(parents=True, exist_ok=True)
            return _construct(name, root, split, download=True)
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - URLError, socket/HTTP errors, gdown, checksum: all one line
            raise DataError(
                f"could not download {name} into {_location(name, root)} ({_one_line(error)}); "
                f"without internet, provide the files by hand: {_manual_hint(name, root)}"
            ) from None
    try:
        return _construct(name, root, split, download=False)
    except RuntimeError as error:
        if "not found" not in str(error).lower():
            raise DataError(f"cannot read {name} in {_location(name, root)} ({_one_line(error)})") from None
        raise DataError(
            f"{name} not found in {_location(name, root)}; set data.download: true to download it, or "
            f"provide the files by hand: {_manual_hint(name, root)}"
        ) from None


class TorchvisionImages(SeededTransformDataset):
    """A torchvision image dataset (labels dropped) -> ``{"image": CHW in [-1, 1], "path": "<name>:<index>"}``."""

    def __init__(self, dataset: Dataset[Any], name: str, transform: Any, seed: int | None = 0) -> None:
        self.dataset = dataset
        self.name = name
        super().__init__(transform, seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        image = item[0] if isinstance(item, tuple) else item
        array = to_rgb_array(image) if isinstance(image, Image.Image) else image
        return {"image": self.transform(image=array)["image"], "path": f"{self.name}:{index}"}


class TorchvisionDataModule(ImageDataModule):
    """MNIST, CIFAR-10 or CelebA from torchvision for DCGAN (downloaded into ``root`` when missing).

    Batches are ``{"image", "path"}`` like ImageFolderDataModule's: RGB, shorter side resized to
    ``image_size`` and center-cropped (CelebA: the DCGAN paper's 64x64 face crops), values in [-1, 1].
    There is no validation split: DCGAN tracks progress with its fixed-noise grids.

    Args:
        name: mnist, cifar10 or celeba.
        root: Folder the dataset is downloaded to / read from (torchvision's layout below it).
        image_size: Output image size (square); must equal the model's resolution.
        split: train, test or all (train and test together).
        download: Download the dataset into root when it is missing (needs internet).
        batch_size: Images per batch (DCGAN classically uses 128).
        num_workers: DataLoader worker processes (0 loads in the main process).
        flip: Randomly flip images horizontally.
        max_dataset_size: Use at most this many images (null: all).
        seed: Seed of the data stream (shuffling, flips).
    """

    def __init__(
        self,
        name: DatasetName = "mnist",
        root: str = "data",
        image_size: int = 32,
        split: Split = "train",
        download: bool = True,
        batch_size: int = 128,
        num_workers: int = 4,
        flip: bool = False,
        max_dataset_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(root=root, batch_size=batch_size, num_workers=num_workers, max_dataset_size=max_dataset_size, seed=seed)
        if name not in TORCHVISION_DATASETS:
            raise DataError(f"unknown torchvision dataset {name!r}; valid names: {', '.join(TORCHVISION_DATASETS)}")
        if split not in ("train", "test", "all"):
            raise DataError(f"split must be train, test or all, got {split!r}")
        build_transform(_PREPROCESS, image_size, image_size)  # fail at construction on a bad size
        self.dataset_name = name  # not ``name``: LightningDataModule has a ``name`` attribute of its own
        self.image_size = image_size
        self.split = split
        self.download = download
        self.flip = flip
        self.train_set: TorchvisionImages | None = None

    def prepare_data(self) -> None:
        """Download the dataset when asked for and missing (runs on rank 0 only)."""
        if self.download:
            open_torchvision_dataset(self.dataset_name, self.root, self.split, download=True)

    def setup(self, stage: str | None = None) -> None:
        """Open the training set (already downloaded by ``prepare_data``, or provided by hand)."""
        dataset = open_torchvision_dataset(self.dataset_name, self.root, self.split, download=False)
        n = len(dataset)  # type: ignore[arg-type]
        if self.max_dataset_size is not None and self.max_dataset_size < n:
            dataset = Subset(dataset, range(self.max_dataset_size))
        transform = build_transform(_PREPROCESS, self.image_size, self.image_size, self.flip, train=True)
        self.train_set = TorchvisionImages(dataset, self.dataset_name, transform, seed=self._stream_seed())

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled ``{"image", "path"}`` batches."""
        return self._train_loader(_PREPROCESS)
