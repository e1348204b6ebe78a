"""Distill learns: the distill quickstart's student (ResNet, 3 blocks, 8 filters: a quarter of the teacher's MACs),
distilled briefly on CPU from the trained CycleGAN quickstart's A -> B export, translates the held-out synthetic
images as the teacher does, about as close to the ground truth as the teacher, and far closer than the input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from gan_translate import load_translator
from gan_translate.data.io import list_images, load_image
from gan_translate.data.synthetic import make_synthetic
from tests.helpers import CONFIGS, checkpoints, fit
from tests.tiny import TEACHERS

#: The trained 64 px CycleGAN quickstart's A -> B generator (tests/fixtures/teachers/make_teachers.py).
TEACHER = TEACHERS / "cyclegan_quickstart_AtoB.safetensors"
#: Batches of 4 distilled, two optimiser steps each (discriminator, student): the quickstart's whole schedule (8 epochs
#: of 50 batches, the learning rate decaying to 0 over the last 4), so the student ends where its training settles.
BATCHES = 400


def _l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def _psnr(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """PSNR (dB, 8-bit) of the mean squared error over all the pairs' pixels."""
    mse = np.mean([((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean() for a, b in pairs])
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.slow
def test_quickstart_student_translates_as_its_teacher(tmp_path: Path) -> None:
    # The teacher's own data: the quickstart's synthetic set (64 px, 200 training images a domain, seed 0).
    root = make_synthetic(tmp_path / "synthetic", size=64, n_train=200, n_test=20, seed=0)
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    fit([
        "--config", str(CONFIGS / "distill" / "quickstart.yaml"),
        "--model.teacher", str(TEACHER),
        "--data.root", str(root),
        "--data.num_workers", "0",
        "--trainer.accelerator", "cpu",
        "--trainer.max_steps", str(2 * BATCHES),
        "--trainer.max_time", "00:00:05:00",  # a guard against a hung run, not the budget
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.logger.init_args.save_dir", str(run_dir),
    ])
    train_seconds = time.perf_counter() - started

    student = load_translator(checkpoints(run_dir)[-1], direction="AtoB", device="cpu")
    teacher = load_translator(TEACHER, direction="AtoB", device="cpu")
    inputs = list_images(root / "testA")
    images = [load_image(p) for p in inputs]
    truths = [load_image(root / "testA_gt" / p.name) for p in inputs]  # the B rendering of each testA scene
    students, teachers = [student(image) for image in images], [teacher(image) for image in images]
    psnr_to_teacher = _psnr(list(zip(students, teachers)))
    l1_student = float(np.mean([_l1(s, t) for s, t in zip(students, truths)]))
    l1_teacher = float(np.mean([_l1(s, t) for s, t in zip(teachers, truths)]))
    l1_identity = float(np.mean([_l1(s, t) for s, t in zip(images, truths)]))
    psnr_identity = _psnr(list(zip(images, teachers)))  # the input itself against the teacher's output
    print(f"distill quickstart, {BATCHES} batches in {train_seconds:.0f} s: PSNR to the teacher {psnr_to_teacher:.2f} dB "
          f"(input: {psnr_identity:.2f} dB); L1 to the ground truth: student {l1_student:.4f}, teacher {l1_teacher:.4f}, "
          f"input {l1_identity:.4f}")

    # Measured (2 shared cores, one thread, deterministic from seed 0): 400 batches in 44-50 s, PSNR to the teacher
    # 22.76 dB (the input: 9.29 dB), L1 to the ground truth 0.0663 against the teacher's 0.0603 (x1.10) and the input's
    # 0.2412. Stopped earlier the student wanders with the GAN term: 150 / 225 / 300 batches gave 22.61 / 21.48 / 22.63 dB
    # and x1.05 / x1.14 / x1.09 (the full quickstart run: 0.0652 against 0.0607, x1.07). The bounds sit beyond that
    # spread: 20 dB, and x1.25 of the teacher's L1 (a quarter more error than the teacher makes); an untrained
    # or broken student (no translation: the input's 0.24, or 9 dB) fails each of them by far.
    assert psnr_to_teacher > 20.0
    assert psnr_to_teacher > psnr_identity + 10.0
    assert l1_student <= 1.25 * l1_teacher
    assert l1_student < 0.5 * l1_identity
