"""The media one prompt shows a model: the single place where model inputs are cut from a clip.

Every adapter gets its frames and audio from `build_media_inputs`, for both backends, so choosing
modalities, decoding a silent video, and masking a modality for evaluation (blank frames, silent
audio) happen here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import decord
import numpy as np

from avrt.core.clip_media import MODALITIES, ClipMedia

MASKABLE = ("frames", "audio")
SAMPLE_RATE = 16000  # every audio encoder used here (Whisper-style) expects 16 kHz


@dataclass(frozen=True)
class MediaInputs:
    """Frames (T, H, W, 3) uint8 with their frame rate, and/or mono float32 audio at 16 kHz."""

    frames: np.ndarray | None = None
    frames_fps: float | None = None
    audio: np.ndarray | None = None
    sample_rate: int = SAMPLE_RATE

    @property
    def has_frames(self) -> bool:
        return self.frames is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def build_media_inputs(
    clip: ClipMedia | None,
    modalities: tuple[str, ...] | list[str],
    *,
    mask: tuple[str, ...] | list[str] = (),
    video_fps: float,
    video_max_frames: int,
) -> MediaInputs:
    """Cut the requested modalities out of `clip`.

    `frames` are the clip's prepared frames; `silent_video` decodes the clip's silent video at
    `video_fps` (as frames, since that is what the models take); `audio` is the clip's audio.
    `mask` lists modalities kept in the prompt but replaced by blank frames or silence, for the
    missing-modality evaluation.
    """
    modalities = tuple(modalities)
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown} (known: {', '.join(MODALITIES)})")
    if "frames" in modalities and "silent_video" in modalities:
        raise ValueError("choose one of 'frames' and 'silent_video': both are the clip's pictures")
    bad_mask = sorted(set(mask) - set(MASKABLE))
    if bad_mask:
        raise ValueError(f"cannot mask {bad_mask}: only {', '.join(MASKABLE)} can be masked")
    not_requested = sorted(set(mask) - {"frames" if m == "silent_video" else m for m in modalities})
    if not_requested:
        raise ValueError(f"masked modalities {not_requested} are not among the requested {list(modalities)}")
    if not modalities:
        return MediaInputs()
    if clip is None:
        raise ValueError(f"modalities {list(modalities)} requested but the request has no media")

    frames = fps = audio = None
    if "frames" in modalities:
        if clip.frames.size == 0:
            raise ValueError(f"clip {clip.video_name!r}: frames requested but none were loaded")
        frames, fps = clip.frames, clip.frames_fps
    elif "silent_video" in modalities:
        if clip.silent_video is None:
            raise ValueError(f"clip {clip.video_name!r}: silent_video requested but the clip has none")
        frames, fps = decode_video_frames(clip.silent_video, video_fps, video_max_frames)
    if "audio" in modalities:
        if clip.audio.size == 0:
            raise ValueError(f"clip {clip.video_name!r}: audio requested but none was loaded")
        if clip.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"clip {clip.video_name!r}: audio is at {clip.sample_rate} Hz, models take {SAMPLE_RATE} Hz"
            )
        audio = np.asarray(clip.audio, dtype=np.float32)

    if "frames" in mask:
        frames = np.zeros_like(frames)
    if "audio" in mask:
        audio = np.zeros_like(audio)
    return MediaInputs(frames=frames, frames_fps=fps, audio=audio)


def decode_video_frames(path, fps: float, max_frames: int) -> tuple[np.ndarray, float]:
    """Frames sampled uniformly at about `fps` (an even count, at least 2, at most `max_frames`).

    Follows qwen-vl-utils: n = round(duration * fps) rounded to an even number, indices
    linspace(0, total - 1, n). Returns the frames and the frame rate their timestamps imply.
    """
    reader = decord.VideoReader(str(path), num_threads=1)
    total = len(reader)
    if total == 0:
        raise ValueError(f"{path}: no video frames")
    native_fps = float(reader.get_avg_fps()) or 1.0
    duration = total / native_fps
    wanted = max(2, min(max_frames, total, 2 * round(duration * fps / 2)))
    indices = np.linspace(0, total - 1, wanted).round().astype(int)
    frames = reader.get_batch(indices.tolist()).asnumpy()
    times = indices / native_fps
    sampled_fps = float(1.0 / np.mean(np.diff(times))) if len(times) > 1 else 1.0 / duration
    return frames, sampled_fps
