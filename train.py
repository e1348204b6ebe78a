#!/usr/bin/env python
"""Train, validate, test or predict with any gan-translate model through LightningCLI.

    python train.py fit --config configs/cyclegan/quickstart.yaml
    python train.py fit --config configs/cyclegan/quickstart.yaml --trainer.max_epochs 50
    python train.py fit --config configs/cyclegan/quickstart.yaml --ckpt_path runs/.../last.ckpt

Same as `gan-translate fit ...`.
"""

import sys

from gan_translate.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
