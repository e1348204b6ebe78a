#!/usr/bin/env python
"""Generate the procedural synthetic dataset (two domains with ground truth, plus a paired set).

    python datasets/make_synthetic.py --root data/synthetic --size 64 --n-train 200 --n-test 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from gan_translate.core.errors import UserError
except ImportError:  # run from a checkout without `pip install -e .`: use the repository's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gan_translate.core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """Command-line options, with their defaults shown in --help."""
    parser = argparse.ArgumentParser(
        description="Write deterministic synthetic scenes: trainA/ trainB/ (unpaired), testA/ testB/ with "
        "ground truth testA_gt/ testB_gt/, and paired/{train,val,test}/ (label map | photo).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--root", default="data/synthetic", help="output folder")
    parser.add_argument("--size", type=int, default=64, help="image height and width in pixels")
    parser.add_argument("--n-train", type=int, default=200, help="training images per domain (and paired/train)")
    parser.add_argument("--n-test", type=int, default=20, help="test images per domain (and paired/val, paired/test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives byte-identical files")
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate even if root already holds a set or other files"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate the set and print its layout; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    from gan_translate.data.synthetic import make_synthetic

    try:
        root = make_synthetic(
            args.root,
            size=args.size,
            n_train=args.n_train,
            n_test=args.n_test,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    folders = ("trainA", "trainB", "testA", "testB", "testA_gt", "testB_gt")
    folders += ("paired/train", "paired/val", "paired/test")
    print(f"synthetic set in {root} (size {args.size}, seed {args.seed}):")
    for folder in folders:
        print(f"  {folder + '/':<14} {sum(1 for _ in (root / folder).glob('*.png'))} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
