#!/usr/bin/env python
"""Combine two folders of same-named images into pix2pix's aligned format (A | B side by side).

    python datasets/combine_A_and_B.py --fold-A path/A --fold-B path/B --output path/AB

Both folders hold either train/ val/ test/ sub-folders or images directly.
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
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Write OUTPUT/[split/]name.png = A | B for every pair of same-named images in FOLD_A and FOLD_B.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--fold-A", dest="fold_a", required=True, help="folder of A images (flat or train/val/test)")
    parser.add_argument("--fold-B", dest="fold_b", required=True, help="folder of B images, same names as in A")
    parser.add_argument("--output", required=True, help="output folder for the side-by-side images")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Combine the folders; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    from gan_translate.data.combine import combine_pairs

    try:
        count = combine_pairs(args.fold_a, args.fold_b, args.output)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {count} A|B images to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
