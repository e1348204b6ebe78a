"""Translate a video: every frame through a :class:`~gan_translate.inference.translator.Translator`, in batches (tiled when the
translator tiles), with the frame count, size, frame rate and timestamps kept and the audio copied as it is.

PyAV (FFmpeg's libraries, the ``video`` extra) reads and writes the files. The video is encoded with H.264
(``libx264``, CRF 18: visually lossless) in MP4 / MOV / MKV, VP9 in WebM; odd frame sizes use 4:4:4 chroma, which
H.264 allows and 4:2:0 does not. Audio packets are copied without re-encoding when the output container takes their
codec; otherwise the video is written without audio and the summary says why. The output is written to a temporary
file beside it and renamed when complete, so an interrupted run never leaves a truncated video under the name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gan_translate.core.errors import DataError, UserError
from gan_translate.core.files import atomic_write
from gan_translate.inference.translator import Translator

__all__ = ["VIDEO_SUFFIXES", "VideoSummary", "is_video", "require_pyav", "translate_video", "write_animation"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_CODECS = {".webm": ("libvpx-vp9", "libvpx"), ".avi": ("mpeg4",)}
_DEFAULT_CODECS = ("libx264", "h264", "mpeg4")


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file (by its extension)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def require_pyav() -> Any:
    """The ``av`` module, or one line saying how to get it."""
    try:
        import av
    except ImportError:
        raise UserError("video needs PyAV: pip install 'gan-translate[video]' (or pip install av)") from None
    return av


@dataclass
class VideoSummary:
    frames: int
    width: int
    height: int
    frame_rate: Fraction
    audio: str
    """``copied``, ``none`` (the input has none) or why it was not copied."""


def _encoder(av: Any, suffix: str) -> str:
    for name in _CODECS.get(suffix, _DEFAULT_CODECS):
        if name in av.codecs_available:
            return name
    raise UserError(f"this FFmpeg build has no encoder for {suffix} video (tried {', '.join(_CODECS.get(suffix, _DEFAULT_CODECS))})")


def _open_input(av: Any, source: Path) -> Any:
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, OSError) as error:
        raise DataError(f"cannot read video {source}: {error}") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{source} has no video stream")
    return container


def translate_video(
    translator: Translator, source: str | os.PathLike[str], output: str | os.PathLike[str], batch_size: int = 8,
    on_frame: Callable[[], None] | None = None,
) -> VideoSummary:
    """Translate every frame of ``source`` into ``output`` (atomically); ``on_frame()`` after each written frame."""
    av = require_pyav()
    source, output = Path(source), Path(output)
    suffix = output.suffix.lower()
    if suffix not in _CONTAINERS:
        raise UserError(f"--output {output}: a video needs one of {', '.join(VIDEO_SUFFIXES)}")
    codec = _encoder(av, suffix)
    with _open_input(av, source) as reader, atomic_write(output) as handle:
        video_in = reader.streams.video[0]
        audio_in = reader.streams.audio[0] if reader.streams.audio else None
        rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
        writer = av.open(handle, mode="w", format=_CONTAINERS[suffix])
        try:
            audio_out, audio = _audio_stream(av, writer, audio_in)
            summary = _transcode(av, translator, reader, writer, video_in, audio_in, audio_out, codec, rate, batch_size, on_frame)
            summary.audio = audio
        finally:
            writer.close()
    return summary


def _audio_stream(av: Any, writer: Any, audio_in: Any) -> tuple[Any, str]:
    if audio_in is None:
        return None, "none"
    try:
        return writer.add_stream_from_template(audio_in), "copied"
    except (ValueError, av.error.FFmpegError) as error:  # the container does not take this codec: keep the video
        return None, f"not copied ({audio_in.codec_context.name} cannot go into this container: {error})"


def _transcode(
    av: Any, translator: Translator, reader: Any, writer: Any, video_in: Any, audio_in: Any, audio_out: Any, codec: str,
    rate: Fraction, batch_size: int, on_frame: Callable[[], None] | None,
) -> VideoSummary:
    width, height = video_in.codec_context.width, video_in.codec_context.height
    video_out = writer.add_stream(codec, rate=rate)
    video_out.width, video_out.height = width, height
    video_out.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 or codec == "mpeg4" else "yuv444p"
    video_out.time_base = video_in.time_base
    if codec == "libx264":
        video_out.options = {"crf": "18"}
    timestamps: list[tuple[int | None, Any]] = []

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        for packet in reader.demux(*streams):
            if packet.stream.type == "audio":
                if audio_out is not None and packet.dts is not None:
                    packet.stream = audio_out
                    writer.mux(packet)
                continue
            for frame in packet.decode():
                timestamps.append((frame.pts, frame.time_base))
                yield len(timestamps) - 1, frame.to_ndarray(format="rgb24")

    written = 0
    for index, result in translator.translate_many(frames(), batch_size=batch_size):
        rgb = np.repeat(result, 3, axis=2) if result.ndim == 3 and result.shape[2] == 1 else result[..., :3]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        pts, time_base = timestamps[index]
        # A frame without a timestamp (some raw streams) gets the one its position and the frame rate give.
        frame.time_base = time_base or video_in.time_base
        frame.pts = pts if pts is not None else round(index / rate / frame.time_base)
        writer.mux(video_out.encode(frame))
        written += 1
        if on_frame is not None:
            on_frame()
    writer.mux(video_out.encode(None))  # flush the encoder's delayed frames
    return VideoSummary(frames=written, width=width, height=height, frame_rate=Fraction(rate), audio="")


def write_animation(frames: Iterable[np.ndarray], output: str | os.PathLike[str], fps: float = 15.0,
                    on_frame: Callable[[], None] | None = None) -> int:
    """uint8 HxWx3 frames of one size -> a looping ``.gif`` (Pillow) or a video (``.mp4`` ... through PyAV, the
    ``video`` extra), written atomically; returns the number of frames."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        pictures = []
        for frame in frames:
            pictures.append(Image.fromarray(frame))
            if on_frame is not None:
                on_frame()
        if not pictures:
            raise UserError("an animation needs at least one frame")
        with atomic_write(output) as handle:  # disposal 1, no optimisation: every frame is a whole picture
            pictures[0].save(handle, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                             duration=round(1000 / fps), disposal=1, optimize=False)
        return len(pictures)
    if suffix not in _CONTAINERS:
        raise UserError(f"{output}: an animation is a .gif or a video ({', '.join(VIDEO_SUFFIXES)})")
    av = require_pyav()
    codec = _encoder(av, suffix)
    written = 0
    with atomic_write(output) as handle:
        writer = av.open(handle, mode="w", format=_CONTAINERS[suffix])
        try:
            stream = None
            for frame in frames:
                if stream is None:
                    stream = writer.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = frame.shape[:2]
                    even = frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0
                    stream.pix_fmt = "yuv420p" if even or codec == "mpeg4" else "yuv444p"
                writer.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
                written += 1
                if on_frame is not None:
                    on_frame()
            if stream is None:
                raise UserError("an animation needs at least one frame")
            writer.mux(stream.encode(None))
        finally:
            writer.close()
    return written
