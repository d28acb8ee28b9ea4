"""The prepared media of one clip, as every model-facing stage consumes it.

Teachers, the student's training and evaluation all load media through `load_clip_media`, so
the frames, audio and fps a model sees are the same everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image


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
    def frames_fps(self) -> float:
        """Frame rate implied by the sampled timestamps (8 frames over 10 s -> 0.8).

        Qwen2.5-Omni aligns video and audio in time from this value; its processor's default
        of 2.0 would misplace every frame of an 8-frame clip.
        """
        if len(self.frame_times) < 2:
            return 1.0 / max(self.duration, 1e-6)
        return float(1.0 / np.mean(np.diff(self.frame_times)))


def load_clip_media(row: dict, media_root: str | Path, *, with_frames: bool = True, with_audio: bool = True) -> ClipMedia:
    """Load one prepared clip from its row in a shard's media index (`media/<shard>.jsonl`)."""
    if row.get("status") != "ok":
        raise ValueError(f"clip {row.get('video_name')!r} has no prepared media: {row.get('reason')}")
    root = Path(media_root)
    frames = (
        np.stack([np.asarray(Image.open(root / p).convert("RGB")) for p in row["frames"]])
        if with_frames
        else np.zeros((0, 0, 0, 3), np.uint8)
    )
    if with_audio:
        audio, sr = sf.read(root / row["audio"], dtype="float32")
    else:
        audio, sr = np.zeros(0, np.float32), row["sample_rate"]
    silent = root / row["silent_video"] if row.get("silent_video") else None
    return ClipMedia(
        video_name=row["video_name"],
        frames=frames,
        frame_times=np.asarray(row["frame_times"], dtype=np.float64),
        audio=audio,
        sample_rate=int(sr),
        duration=float(row["duration"]),
        silent_video=silent,
    )


def read_media_index(path: str | Path) -> dict[str, dict]:
    """video_name -> index row of a shard's media index."""
    rows = {}
    with open(path) as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows[row["video_name"]] = row
    return rows
