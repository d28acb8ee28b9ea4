"""The prepared media of one clip, as every model-facing stage consumes it.

Teachers, the checker and the student's training load a prepared clip through `load_clip`;
evaluation cuts benchmark items in memory with the same `MediaParams` (`avrt.core.media`), so
the frames, audio and fps a model sees are the same everywhere. What a model may see is said
here once: `MODALITIES`, what each needs loaded (`load_clip`), and which a clip carries
(`ClipMedia.modalities`, narrowed to a model's by `visible_modalities`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avrt.core.rows import ClipRef, MediaRow, read_rows

# What a prompt can show of a clip: its frames, its audio track, or the silent video file (frames
# decoded by the model's own video processor).
MODALITIES = ("frames", "audio", "silent_video")
IN_MEMORY = ("frames", "audio")  # what a cut clip holds itself; the silent video is a file beside it


@dataclass(frozen=True)
class ClipMedia:
    video_name: str
    frames: np.ndarray  # (T, H, W, 3) uint8, RGB
    frame_times: np.ndarray  # (T,) seconds from clip start
    audio: np.ndarray  # (samples,) float32 mono in [-1, 1]
    sample_rate: int
    duration: float  # seconds of the source clip
    silent_video: Path | None = None

    @property
    def modalities(self) -> tuple[str, ...]:
        """The media this clip carries: frames and/or audio (an empty cut carries nothing)."""
        present = {"frames": self.frames.shape[0] > 0, "audio": self.audio.size > 0}
        return tuple(m for m in IN_MEMORY if present[m])

    @property
    def frames_fps(self) -> float:
        """Frame rate implied by the sampled timestamps (8 frames over 10 s -> 0.8).

        Qwen2.5-Omni aligns video and audio in time from this value; its processor's default
        of 2.0 would misplace every frame of an 8-frame clip.
        """
        if len(self.frame_times) < 2:
            return 1.0 / max(self.duration, 1e-6)
        return float(1.0 / np.mean(np.diff(self.frame_times)))


def load_clip_media(row: MediaRow, media_root: str | Path, *, with_frames: bool = True,
                    with_audio: bool = True) -> ClipMedia:
    """Load one prepared clip from its row in a shard's media index (`media/<shard>.jsonl`)."""
    if not row.ok:
        raise ValueError(f"clip {row.video_name!r} has no prepared media: {row.reason}")
    root = Path(media_root)
    frames = (
        np.stack([np.asarray(Image.open(root / p).convert("RGB")) for p in row.frames])
        if with_frames
        else np.zeros((0, 0, 0, 3), np.uint8)
    )
    if with_audio:
        audio, sr = sf.read(root / row.audio, dtype="float32")
    else:
        audio, sr = np.zeros(0, np.float32), row.sample_rate
    return ClipMedia(
        video_name=row.video_name,
        frames=frames,
        frame_times=np.asarray(row.frame_times, dtype=np.float64),
        audio=audio,
        sample_rate=int(sr),
        duration=float(row.duration),
        silent_video=root / row.silent_video if row.silent_video else None,
    )


def visible_modalities(clip: ClipMedia, supported: Iterable[str]) -> tuple[str, ...]:
    """The clip's media a model takes: what the clip carries and the model's family supports."""
    supported = frozenset(supported)
    return tuple(m for m in clip.modalities if m in supported)


def load_clip(ref: ClipRef, modalities: Iterable[str] = ("frames", "audio")) -> ClipMedia:
    """A sample's prepared clip with only what `modalities` need read from disk (all by default)."""
    modalities = frozenset(modalities)
    unknown = sorted(modalities - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown} (known: {', '.join(MODALITIES)})")
    return load_clip_media(ref.media, ref.root, with_frames=bool(modalities & {"frames", "silent_video"}),
                           with_audio="audio" in modalities)


def read_clip_refs(media_index: str | Path) -> dict[str, ClipRef]:
    """video_name -> where its prepared media lie, for the clips of one shard's media index
    (paths in an index are relative to its directory)."""
    root = str(Path(media_index).parent)
    return {row.video_name: ClipRef(root=root, media=row) for row in read_rows(media_index, MediaRow)}
