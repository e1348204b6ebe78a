"""`translate --input clip.mp4 --output out.mp4`: every frame translated; frame count, size, rate and audio kept."""

from __future__ import annotations

import builtins
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gan_translate.cli import main
from gan_translate.inference.translator import load_translator
from tests.artifacts.test_checkpoint_safety import write_checkpoint

av = pytest.importorskip("av")


def make_clip(path: Path, seconds: float = 2, fps: Fraction = Fraction(24), size: tuple[int, int] = (64, 48),
              audio: bool = True) -> Path:
    """An H.264 clip with a moving bar (and a 440 Hz tone in AAC), made here: nothing downloaded."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p" if size[0] % 2 == 0 and size[1] % 2 == 0 else "yuv444p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(int(seconds * fps)):
            image = np.full((size[1], size[0], 3), 40, np.uint8)
            image[..., 0] = (i * 10) % 256
            image[:, i % size[0]:] = (30, 200, 90)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            t = np.arange(int(16000 * seconds)) / 16000
            samples = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, samples.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]), format="flt", layout="mono")
                frame.sample_rate, frame.pts = 16000, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def describe(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return {"frames": len(frames), "size": (stream.codec_context.width, stream.codec_context.height),
                "rate": stream.average_rate, "audio": len(container.streams.audio), "first": frames[0], "last": frames[-1]}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / max(float(((a.astype(float) - b.astype(float)) ** 2).mean()), 1e-12))


def test_a_two_second_clip_round_trips_translated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    assert main(["translate", "--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(tmp_path / "out.mp4"),
                 "--device", "cpu", "--batch-size", "5"]) == 0
    assert "translated 48 frames (64x48, 24 fps, audio copied" in capsys.readouterr().out
    source, result = describe(clip), describe(tmp_path / "out.mp4")
    assert (result["frames"], result["size"], result["rate"], result["audio"]) == (48, (64, 48), Fraction(24), 1)
    translator = load_translator(checkpoint, device="cpu", precision="auto")  # translate's default
    for key in ("first", "last"):
        # the translations of the input's frames, in order, up to H.264's loss (4:2:0 chroma blurs an untrained
        # generator's pixel noise: ~22 dB), and far from the frames themselves (~8 dB)
        assert _psnr(result[key], translator(source[key])) > _psnr(result[key], source[key]) + 8
    assert _psnr(result["first"], translator(source["first"])) > _psnr(result["first"], translator(source["last"])) + 3


def test_odd_sizes_silent_clips_and_tiles(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "odd.mkv", seconds=0.5, fps=Fraction(30000, 1001), size=(75, 41), audio=False)
    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    assert main(["translate", "--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--tile", "32", "--tile-overlap", "12"]) == 0
    result = describe(tmp_path / "out" / "odd.mkv")  # a folder as --output: the input's name
    assert (result["frames"], result["size"], result["rate"], result["audio"]) == (14, (75, 41), Fraction(30000, 1001), 0)


def test_video_refusals_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.25, audio=False)
    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    common = ["translate", "--checkpoint", str(checkpoint), "--input", str(clip), "--device", "cpu"]
    (tmp_path / "taken.mp4").write_bytes(b"earlier result")
    cases = [
        (["--output", str(clip)], "refusing to overwrite the input video"),
        (["--output", str(tmp_path / "taken.mp4")], "taken.mp4 already exists; pass --overwrite"),
        (["--output", str(tmp_path / "out.png")], "a translated video needs a video file name"),
    ]
    for flags, message in cases:
        assert main([*common, *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert (tmp_path / "taken.mp4").read_bytes() == b"earlier result"
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "av" else real_import(name, *a, **k))
    assert main([*common, "--output", str(tmp_path / "x.mp4")]) == 2
    assert "video needs PyAV: pip install 'gan-translate[video]'" in capsys.readouterr().err
