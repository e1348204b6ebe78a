"""The classic CycleGAN / pix2pix pretrained generators: their names, where they are published, how to read them.

The classic project's ``scripts/download_cyclegan_model.sh NAME`` and ``download_pix2pix_model.sh NAME`` fetch one
generator ``state_dict`` per name from the authors' server. The files do not say which network they hold, so each
entry here also records the settings the classic test commands use for it: CycleGAN models are ResNet-9 with
instance norm and no dropout (``--model test --no_dropout``), pix2pix models U-Net 256 with batch norm and dropout,
run as the classic test script runs them (dropout on, each image's own batch statistics: ``inference_mode
classic``). :func:`download_classic_model` fetches one into a folder; nothing here reads it (``classic.py`` does).
"""

from __future__ import annotations

import http.client
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gan_translate.core.errors import UserError
from gan_translate.core.files import atomic_write

__all__ = [
    "DEFAULT_MIRROR",
    "MIRROR_ENV",
    "ZOO",
    "ClassicZooModel",
    "download_classic_model",
    "zoo_model",
    "zoo_table",
]

#: The host both classic download scripts use; ``datasets/download.py`` reads the same variable for its mirror.
DEFAULT_MIRROR = "http://efrosgans.eecs.berkeley.edu"
MIRROR_ENV = "GAN_TRANSLATE_DATASETS_MIRROR"
_PATHS = {"cyclegan": "cyclegan/pretrained_models/{name}.pth", "pix2pix": "pix2pix/models-pytorch/{name}.pth"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ClassicZooModel:
    """One published generator and the import settings its classic test command implies."""

    zoo: str  # "cyclegan" or "pix2pix": which script publishes it, and the gan-translate model it becomes
    name: str
    arch: str
    norm: str
    dropout: bool

    @property
    def key(self) -> str:
        return f"{self.zoo}/{self.name}"

    def url(self, mirror: str | None = None) -> str:
        """Where the file is published (``mirror``, else ``$GAN_TRANSLATE_DATASETS_MIRROR``, else the classic host)."""
        host = mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        return f"{host.rstrip('/')}/{_PATHS[self.zoo].format(name=self.name)}"

    def flags(self) -> str:
        """The ``import-classic`` flags that read this file."""
        return f"--arch {self.arch} --norm {self.norm} {'--dropout' if self.dropout else '--no-dropout'}"


_CYCLEGAN = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
    "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map", "map2sat",
    "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
    "iphone2dslr_flower",
)
_PIX2PIX = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")

#: ``"cyclegan/horse2zebra"`` -> its entry; the names of both classic download scripts.
ZOO: dict[str, ClassicZooModel] = {
    **{f"cyclegan/{n}": ClassicZooModel("cyclegan", n, "resnet_9blocks", "instance", False) for n in _CYCLEGAN},
    **{f"pix2pix/{n}": ClassicZooModel("pix2pix", n, "unet_256", "batch", True) for n in _PIX2PIX},
}


def zoo_model(name: str) -> ClassicZooModel:
    """The zoo entry ``name``: ``cyclegan/NAME`` or ``pix2pix/NAME``, or a bare NAME that only one zoo has."""
    if name in ZOO:
        return ZOO[name]
    matches = [entry for entry in ZOO.values() if entry.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"{name!r} is in both classic zoos: choose {' or '.join(m.key for m in matches)}")
    raise UserError(f"unknown classic pretrained model {name!r}; valid: {', '.join(ZOO)}")


def zoo_table() -> str:
    """One line per published model: its name and the ``import-classic`` flags for it (``--list``)."""
    width = max(len(key) for key in ZOO)
    return "\n".join(f"{entry.key:<{width}}  {entry.flags()}" for entry in ZOO.values())


def _fetch(url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into ``target`` (atomically: an interrupted download leaves nothing)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(target, durable=True) as out:
        length = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
        if length and length.isdigit() and received != int(length):
            raise OSError(f"connection closed after {received} of {length} bytes")


def download_classic_model(name: str, folder: str | Path, mirror: str | None = None, timeout: float = 30.0) -> Path:
    """Download zoo model ``name`` to ``folder/NAME.pth`` (``folder/ZOO_NAME.pth`` for the names both zoos have)
    and return that path; a file already there is kept and returned, so a download made by hand is used as is.

    Without network this is one UserError naming the URL and where to put the file by hand.
    """
    entry = zoo_model(name)
    shared = sum(other.name == entry.name for other in ZOO.values()) > 1
    target = Path(folder) / (f"{entry.zoo}_{entry.name}.pth" if shared else f"{entry.name}.pth")
    if target.is_file():
        return target
    url = entry.url(mirror)
    try:
        _fetch(url, target, timeout)
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = " ".join(str(getattr(error, "reason", error)).split())  # one line, whatever the library says
        raise UserError(f"download failed: {url} ({reason}); download it by hand to {target}") from None
    return target
