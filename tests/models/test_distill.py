"""Distill (models/distill.py, nn/distillation.py): a student generator trained from a frozen teacher translator.

The teacher stays frozen (bitwise) through a fit and is no part of the student's state; feature adapters fit every
supported teacher (CycleGAN both ways, CUT, pix2pix U-Net and ResNet, UNSB without them, another student); one step
lowers the distillation losses; resume is exact; the student exports to ONNX as translate runs it; a safetensors
export teaches too; the student's checkpoint translates without the teacher's file and records its SHA-256; a changed
teacher, a missing one and a wrong direction are one-line errors.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from gan_translate.artifacts import export_model, load_model
from gan_translate.cli import main
from gan_translate.core.errors import UserError
from gan_translate.data.io import list_images, load_image
from gan_translate.inference.translator import load_translator
from gan_translate.models import Distill
from gan_translate.nn.distillation import distillation_stages
from tests.helpers import fit, load_raw
from tests.serving.model_files import save_model
from tests.tiny import TINY, TINY_TEACHER

#: A student narrower than every tiny teacher (8 trunk channels against their 16 or 32): the adapters really map.
_STUDENT: dict[str, Any] = {"generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 2}
_UNET_STUDENT: dict[str, Any] = {"generator": "unet", "generator_args": {"num_downs": 5}, "ngf": 2}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _images(n: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _student(teacher: Path | str = TINY_TEACHER, **overrides: Any) -> Distill:
    torch.manual_seed(0)
    return TINY["distill"].build("distill", teacher=str(teacher), **overrides)  # type: ignore[return-value]


def _trainer(folder: Path, **options: Any) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(folder), **options)


def _args(synthetic_root: Path, run: Path, teacher: Path | None, *extra: str, epochs: int = 1, batches: int = 2) -> list[str]:
    """The tiny CLI fit of tests/tiny.py with ``teacher`` as --model.teacher (None: no --model.teacher at all)."""
    args = TINY["distill"].synthetic_args(synthetic_root, run, epochs=epochs, batches=batches)
    at = args.index("--model.teacher")
    del args[at:at + 2]
    teacher_flags = [] if teacher is None else ["--model.teacher", str(teacher)]
    return [*args, *teacher_flags, "--trainer.logger", "false", "--trainer.num_sanity_val_steps", "0", *extra]


def _last(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``error:`` line a failed command printed (and no traceback)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    return errors[0]


# --- the teacher stays frozen ------------------------------------------------------------------------------------------
def test_the_teacher_stays_frozen_through_a_fit(synthetic_root: Path, tmp_path: Path) -> None:
    """Two batches and a validation: every tensor of the teacher is bitwise unchanged, it got no gradient, no optimiser
    holds it, it stays in eval mode, and it is no part of the student's state (so not of its checkpoint or DDP)."""
    model = _student()
    teacher = model.teacher()
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    trainer = _trainer(tmp_path, max_steps=4, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=TINY["distill"].data.datamodule(synthetic_root))
    assert trainer.global_step == 4  # a discriminator and a student step per batch

    assert model.teacher() is teacher  # the same teacher all along, not re-read
    after = teacher.model.state_dict()
    assert after.keys() == before.keys() and before
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"the teacher's {key} changed"
    assert all(p.grad is None for p in teacher.model.parameters()), "a teacher parameter got a gradient"
    assert not teacher.model.training, "fit put the teacher in training mode"
    optimised = {id(p) for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in teacher.model.parameters()}, "an optimiser holds teacher parameters"
    assert optimised == {id(p) for p in model.parameters()}  # the student, its adapters, its discriminator: all of them
    teacher_storage = {v.data_ptr() for v in teacher.model.state_dict().values()}
    assert not {v.data_ptr() for v in model.state_dict().values()} & teacher_storage, "the teacher is in the state dict"
    assert {k.split(".")[0] for k in model.state_dict()} == {"student", "discriminator", "adapters"}
    # ... while the student did train
    assert any(not torch.equal(v, model.student.state_dict()[k]) for k, v in student_before.items())


def test_the_teachers_parameters_do_not_require_grad() -> None:
    """A frozen teacher: no parameter asks autograd for a gradient (teach() runs under no_grad, but a teacher whose
    parameters require grad builds a graph wherever it is called outside it)."""
    teacher = _student().teacher().model
    assert not [name for name, p in teacher.named_parameters() if p.requires_grad]


# --- feature adapters for every kind of teacher ------------------------------------------------------------------------
#: name -> (registered teacher model, its options over tests/tiny.py's, the student's options, the student's direction)
TEACHERS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "cyclegan_AtoB": ("cyclegan", {}, _STUDENT, "AtoB"),
    "cyclegan_BtoA": ("cyclegan", {}, _STUDENT, "BtoA"),
    "cut": ("cut", {}, _STUDENT, "AtoB"),
    "pix2pix_unet": ("pix2pix", {}, _UNET_STUDENT, "AtoB"),
    "pix2pix_resnet": ("pix2pix", {"generator": "resnet", "generator_args": {"n_blocks": 1}}, _STUDENT, "AtoB"),
    "unsb": ("unsb", {}, _STUDENT, "AtoB"),
    "distill": ("distill", {}, _STUDENT, "AtoB"),  # a student (of the tiny CycleGAN) as the teacher
}


def _teacher_file(name: str, folder: Path) -> Path:
    """The tiny ``TEACHERS[name]`` model saved as `fit` saves it (the keys the loaders read), its weights from seed 0."""
    model, options, _, _ = TEACHERS[name]
    torch.manual_seed(0)
    return save_model(TINY[model].build(model, **options), folder / f"{name}.ckpt")


@pytest.mark.parametrize("name", list(TEACHERS))
def test_feature_adapters_fit_every_teacher(name: str, tmp_path: Path) -> None:
    model_name, _, student_options, direction = TEACHERS[name]
    path = _teacher_file(name, tmp_path)
    model = Distill(teacher=str(path), direction=direction, **student_options)
    teacher = model.teacher().model
    info = model.hparams.teacher_info
    assert (info["model"], info["direction"], info["sha256"]) == (model_name, direction, _sha256(path))
    assert model.hparams.paired == (model_name == "pix2pix")  # a pair-trained teacher: ground truth, pair critic

    source = _images(2)
    teacher_output, teacher_features = model.teach(source)
    student_output, student_features = model.student_pass(source)
    assert student_output.shape == teacher_output.shape == source.shape
    # the teacher's translation of the distilled direction, as translate runs it
    with torch.no_grad():
        torch.testing.assert_close(teacher_output, teacher.inference_network(direction)(source), rtol=0, atol=0)

    if model_name == "unsb":  # a multi-step bridge: its stages run once per step, on states that are not the input
        assert len(model.adapters) == 0 and info["stage_channels"] == []
        assert teacher_features == [] and student_features == []
        assert "distill" not in model.student_losses(source, source, student_output, [], teacher_output, [])
        return
    assert len(model.adapters) == len(teacher_features) == len(student_features) >= 2
    assert info["stage_channels"] == [int(f.shape[1]) for f in teacher_features]
    for adapter, student, teacher_feature in zip(model.adapters.maps, student_features, teacher_features):
        assert student.shape[1] != teacher_feature.shape[1]  # the student is narrower: the adapter maps channels
        assert adapter(student).shape == teacher_feature.shape
    # the features are the student's own stages, at the points the model chose
    assert len(distillation_stages(model.student)) >= len(model.student_points) == len(model.adapters)
    losses = model.student_losses(source, source, student_output, student_features, teacher_output, teacher_features)
    assert torch.isfinite(losses["distill"]) and losses["distill"] > 0
    assert ("gt" in losses) == (model_name == "pix2pix")


@pytest.mark.parametrize(("name", "attribute"), [("cyclegan_AtoB", "discriminator_b"), ("cyclegan_BtoA", "discriminator_a"),
                                                 ("pix2pix_unet", "discriminator"), ("unsb", None)])
def test_the_students_discriminator_starts_from_the_teachers(name: str, attribute: str | None, tmp_path: Path) -> None:
    """The discriminator that judged the distilled direction's outputs (pix2pix's judges pairs); UNSB's judges the
    time step too, so its students start from random weights."""
    _, _, student_options, direction = TEACHERS[name]
    path = _teacher_file(name, tmp_path)
    torch.manual_seed(1)  # not the teacher's seed: a random discriminator differs from the teacher's
    model = Distill(teacher=str(path), direction=direction, **student_options)
    assert model.hparams.teacher_info["discriminator_from_teacher"] is (attribute is not None)
    if attribute is None:
        return
    teacher = getattr(model.teacher().model, attribute).state_dict()
    student = model.discriminator.state_dict()
    assert student.keys() == teacher.keys()
    assert all(torch.equal(student[k], teacher[k]) for k in teacher)


def test_a_student_of_a_student_keeps_the_pairs_and_the_discriminator(tmp_path: Path) -> None:
    """A student distilled from a pix2pix model judges (input, output) pairs with the ground truth; its own student
    keeps both, and starts from its discriminator (norm and width included)."""
    first = Distill(teacher=str(_teacher_file("pix2pix_unet", tmp_path)), **_UNET_STUDENT)
    assert first.hparams.paired and first.hparams.teacher_info["discriminator_from_teacher"]
    path = save_model(first, tmp_path / "student.ckpt")
    second = Distill(teacher=str(path), **_UNET_STUDENT)
    assert second.hparams.paired and second.hparams.teacher_info["discriminator_from_teacher"]
    teacher = first.discriminator.state_dict()
    assert all(torch.equal(second.discriminator.state_dict()[k], v) for k, v in teacher.items())


def test_a_resnet_student_of_a_unet_teacher_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = _teacher_file("pix2pix_unet", tmp_path)
    # 4 U-Net decoder stages against the ResNet student's 2
    with pytest.raises(UserError, match="distill_points 2 or fewer, or 0") as fewer:
        Distill(teacher=str(path), **_STUDENT)
    # as many stages, of other sizes (the U-Net's 2x2 .. 16x16 against the ResNet trunk's 8x8)
    with pytest.raises(UserError, match="use a student of the teacher's kind .* or model.distill_points 0") as sizes:
        Distill(teacher=str(path), distill_points=2, **_STUDENT)
    for error in (fewer, sizes):
        assert "\n" not in str(error.value)
    # the output alone: no adapters, and the student trains on the teacher's outputs
    model = Distill(teacher=str(path), distill_points=0, **_STUDENT)
    assert len(model.adapters) == 0 and model.hparams.teacher_info["stage_channels"] == []
    source = _images(2)
    output, features = model.teach(source)
    assert features == [] and output.shape == source.shape
    fake, _ = model.student_pass(source)
    assert set(model.student_losses(source, source, fake, [], output, [])) == {"recon", "g_adv", "gt"}


# --- one optimisation step ---------------------------------------------------------------------------------------------
def _losses(model: Distill, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    with torch.no_grad():
        source, target = model.sides(batch)
        teacher_output, teacher_features = model.teach(source)
        fake, features = model.student_pass(source)
        losses = model.student_losses(source, target, fake, features, teacher_output, teacher_features)
    return {k: float(v) for k, v in losses.items()}


def test_one_step_lowers_the_distillation_losses(tmp_path: Path) -> None:
    """One training_step on a fixed batch (a discriminator, then a student step): the feature and output distillation
    losses on that batch are lower after it, and the student, its adapters and the discriminator each changed."""
    model = _student(lr=1e-3)  # 5x the default: one Adam step moves each weight by 1e-3, far above float noise
    batch = {"A": _images(2, seed=1), "B": _images(2, seed=2)}
    before_losses = _losses(model, batch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))
    assert trainer.global_step == 2
    after_losses = _losses(model, batch)
    assert after_losses["distill"] < before_losses["distill"]
    assert after_losses["recon"] < before_losses["recon"]
    after = model.state_dict()
    for network in ("student", "adapters", "discriminator"):
        keys = [k for k in after if k.startswith(f"{network}.")]
        assert keys and any(not torch.equal(after[k], before[k]) for k in keys), f"{network} did not change"


# --- resume --------------------------------------------------------------------------------------------------------------
def test_resume_mid_epoch_is_exact(synthetic_root: Path, tmp_path: Path) -> None:
    """Stopped after 2 of 3 batches of the first epoch and resumed: bit-identical to an uninterrupted run (weights,
    adapters and both optimisers' states), with the teacher read again from its file."""
    teacher = tmp_path / "teacher.ckpt"
    shutil.copy(TINY_TEACHER, teacher)
    fit(_args(synthetic_root, tmp_path / "reference", teacher, epochs=2, batches=3))
    stopped_args = _args(synthetic_root, tmp_path / "run", teacher, "--reliability.save_every_n_batches", "1",
                         epochs=2, batches=3)
    fit([*stopped_args, "--trainer.max_steps", "4"])  # 2 batches x (D, G)
    assert load_raw(_last(tmp_path / "run"))["global_step"] == 4
    fit([*stopped_args, "--ckpt_path", str(_last(tmp_path / "run"))])
    reference, resumed = load_raw(_last(tmp_path / "reference")), load_raw(_last(tmp_path / "run"))
    assert resumed["global_step"] == reference["global_step"] == 12
    assert reference["state_dict"].keys() == resumed["state_dict"].keys()
    assert any(k.startswith("adapters.") for k in reference["state_dict"])
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for opt_a, opt_b in zip(reference["optimizer_states"], resumed["optimizer_states"], strict=True):
        for index, state in opt_a["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][index][name])), (index, name)


# --- exports, the teacher's file, directions -----------------------------------------------------------------------------
def test_the_student_exports_to_onnx_as_translate_runs_it(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (in dev) runs the exported graph")
    model = _student()
    with torch.no_grad():  # spread weights, so that the outputs use the range (a flat output would match anything)
        for name, parameter in model.named_parameters():
            if name.startswith("student.") and parameter.dim() == 4:
                parameter.normal_(0.0, 0.5 / parameter[0].numel() ** 0.5)
    path = save_model(model, tmp_path / "student.ckpt")
    result = export_model(path, tmp_path / "student.onnx")  # the model's only direction, AtoB
    assert result.directions == ["AtoB"]
    session = ort.InferenceSession(str(tmp_path / "student.onnx"), providers=["CPUExecutionProvider"])
    translator = load_translator(path, "AtoB", device="cpu")
    rng = np.random.default_rng(0)
    for height, width in ((37, 45), (32, 64)):  # padded inside the file to multiples of 4, and exact
        batch = rng.uniform(-1, 1, (2, 3, height, width)).astype(np.float32)
        reference = translator.translate_batch(torch.from_numpy(batch)).numpy()
        assert reference.std() > 0.05, "a flat reference would let a wrong file pass"
        output = session.run(["translated"], {"image": batch})[0]
        assert output.shape == batch.shape
        assert np.abs(output - reference).max() < 1e-4, (height, width)


def test_a_safetensors_export_teaches(synthetic_root: Path, tmp_path: Path) -> None:
    """The tiny CycleGAN exported with `gan-translate export` (generators only): distillation runs from it, the student's
    discriminator starts from random weights, and the checkpoint records the export's SHA-256."""
    exported = tmp_path / "teacher.safetensors"
    assert main(["export", "--checkpoint", str(TINY_TEACHER), "--output", str(exported)]) == 0
    fit(_args(synthetic_root, tmp_path / "run", exported))
    saved = load_raw(_last(tmp_path / "run"))
    assert saved["global_step"] == 4
    info = saved["hyper_parameters"]["teacher_info"]
    assert info["discriminator_from_teacher"] is False
    assert info["sha256"] == _sha256(exported) != _sha256(TINY_TEACHER)
    assert (Path(info["path"]), info["model"], info["direction"]) == (exported, "cyclegan", "AtoB")
    assert saved["gan_translate"]["teacher"]["sha256"] == info["sha256"]


def test_the_student_translates_without_the_teachers_file(synthetic_root: Path, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher" / "teacher.ckpt"
    teacher.parent.mkdir()
    shutil.copy(TINY_TEACHER, teacher)
    digest = _sha256(teacher)
    fit(_args(synthetic_root, tmp_path / "run", teacher))
    student = _last(tmp_path / "run")
    shutil.rmtree(teacher.parent)

    saved = load_raw(student)
    assert saved["hyper_parameters"]["teacher_info"]["sha256"] == digest
    assert saved["hyper_parameters"]["teacher_info"]["discriminator_from_teacher"] is True  # a fit checkpoint: D's there
    assert {k.split(".")[0] for k in saved["state_dict"]} == {"student", "discriminator", "adapters"}
    out = tmp_path / "translated"
    assert main(["translate", "--checkpoint", str(student), "--input", str(synthetic_root / "testA"),
                 "--output", str(out), "--device", "cpu"]) == 0
    inputs = list_images(synthetic_root / "testA")
    assert len(inputs) == 4
    for source in inputs:
        translated = load_image(out / source.name)
        assert translated.shape == load_image(source).shape
    # ... and the rebuilt student is the trained one (nothing of the teacher needed)
    rebuilt = load_model(student)
    assert all(torch.equal(v, saved["state_dict"][k]) for k, v in rebuilt.state_dict().items())


def test_a_changed_teacher_stops_the_resume_in_one_line(synthetic_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    teacher = tmp_path / "teacher.ckpt"
    shutil.copy(TINY_TEACHER, teacher)
    args = _args(synthetic_root, tmp_path / "run", teacher, "--reliability.save_every_n_batches", "1", epochs=2, batches=1)
    fit([*args, "--trainer.max_steps", "2"])
    stopped = _last(tmp_path / "run")
    capsys.readouterr()

    # another file of the same model: a valid checkpoint whose weights differ
    raw = load_raw(teacher)
    key = next(k for k in raw["state_dict"] if k.startswith("generator_ab.") and k.endswith("weight"))
    raw["state_dict"][key] = raw["state_dict"][key] + 0.01
    torch.save(raw, teacher)
    assert main(["fit", *args, "--ckpt_path", str(stopped)]) == 2
    line = _error_line(capsys)
    assert str(teacher) in line and "is not the teacher this student was distilled from" in line
    assert load_raw(stopped)["global_step"] == 2  # nothing trained

    # the original teacher, moved elsewhere: the resume runs (the file is found by its content, not its path)
    moved = tmp_path / "moved" / "teacher.ckpt"
    moved.parent.mkdir()
    shutil.copy(TINY_TEACHER, moved)
    at = args.index("--model.teacher")
    args[at + 1] = str(moved)
    assert main(["fit", *args, "--ckpt_path", str(stopped)]) == 0
    assert load_raw(_last(tmp_path / "run"))["global_step"] == 4


def test_a_fit_without_a_teacher_is_one_line(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", *_args(synthetic_root, tmp_path / "run", None)]) == 2
    line = _error_line(capsys)
    assert "Distill needs model.teacher" in line and "--model.teacher PATH" in line
    assert not list((tmp_path / "run").rglob("*.ckpt"))


def test_the_other_direction_is_a_one_line_error(tmp_path: Path, synthetic_root: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    student = save_model(_student(), tmp_path / "student.ckpt")
    code = main(["translate", "--checkpoint", str(student), "--input", str(synthetic_root / "testB"),
                 "--output", str(tmp_path / "out"), "--device", "cpu", "--direction", "BtoA"])
    assert code == 2
    line = _error_line(capsys)
    assert "translates AtoB only" in line and "--model.direction BtoA" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_BtoA_student_distils_the_teachers_BtoA_generator(synthetic_root: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    model = _student(direction="BtoA")
    source = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(model.teach(source)[0], model.teacher().model.generator_ba(source), rtol=0, atol=0)
    assert (model.source_domain, model.target_domain) == ("B", "A")

    fit(_args(synthetic_root, tmp_path / "run", TINY_TEACHER, "--model.direction", "BtoA"))
    student = _last(tmp_path / "run")
    assert load_raw(student)["hyper_parameters"]["teacher_info"]["direction"] == "BtoA"
    out = tmp_path / "translated"
    assert main(["translate", "--checkpoint", str(student), "--input", str(synthetic_root / "testB"),
                 "--output", str(out), "--device", "cpu", "--direction", "BtoA"]) == 0
    assert len(list_images(out)) == 4
    # the student's network on a B image is what translate wrote
    rebuilt = load_model(student)
    name = list_images(synthetic_root / "testB")[0].name
    image = load_image(synthetic_root / "testB" / name)
    expected = load_translator(student, "BtoA", device="cpu", precision="auto")(image)  # translate's default
    np.testing.assert_array_equal(load_image(out / name), expected)
    assert rebuilt.translators == {"BtoA": "student"}
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(student), "--input", str(synthetic_root / "testA"),
                 "--output", str(tmp_path / "other"), "--device", "cpu"]) == 2  # AtoB, the default
    assert "--model.direction AtoB" in _error_line(capsys)


def test_a_mobile_resnet_student_is_chosen_by_name() -> None:
    """GAN Compression's depthwise student through the model's options (its widths per stage: the model's ngf does not
    apply), its stages matched to the teacher's."""
    model = _student(generator="mobile_resnet", generator_args={"channels": [4, 8, 16, 16, 8, 4], "n_blocks": 2})
    assert type(model.student).__name__ == "MobileResnetGenerator" and len(model.adapters) == 2
    source = _images(2)
    output, features = model.student_pass(source)
    teacher_output, teacher_features = model.teach(source)
    assert output.shape == teacher_output.shape
    assert [a(f).shape for a, f in zip(model.adapters.maps, features)] == [t.shape for t in teacher_features]
    preset = TINY["cyclegan"].build("cyclegan", generator="mobile_resnet_h2z", generator_args=None)
    assert type(preset.generator_ab).__name__ == "MobileResnetGenerator"
