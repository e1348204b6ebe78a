"""``python -m gan_translate ...`` is the ``gan-translate`` command (for environments without the script on PATH)."""

import sys

from gan_translate.cli import main

if __name__ == "__main__":
    sys.exit(main())
