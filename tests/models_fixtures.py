"""Shared pieces of the model-layer tests: synthetic clips, the tiny model zoo, golden files.

Golden files under tests/golden/models/ are rewritten instead of compared when the environment
has AVRT_UPDATE_GOLDEN=1:  AVRT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_models_adapters.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avrt.core.clip_media import ClipMedia

GOLDEN_DIR = Path(__file__).parent / "golden" / "models"
UPDATE_GOLDEN = os.environ.get("AVRT_UPDATE_GOLDEN") == "1"


def make_clip(name: str = "clip", *, tone_hz: float = 440.0, seed: int = 0, frames: int = 8, size: int = 56,
              seconds: float = 10.0, silent_video: Path | None = None) -> ClipMedia:
    """8 random 56x56 frames at segment centres and `seconds` of a half-scale sine at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return ClipMedia(
        video_name=name,
        frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
        frame_times=(np.arange(frames) + 0.5) * seconds / frames,
        # Quantised like 16-bit PCM, so the samples (and golden hashes) do not depend on libm's last bit.
        audio=(np.round(16384 * np.sin(2 * np.pi * tone_hz * t)) / 32768).astype(np.float32),
        sample_rate=16000,
        duration=seconds,
        silent_video=silent_video,
    )


def write_silent_video(path: Path, seconds: float = 10.0, fps: int = 10, width: int = 64, height: int = 48) -> Path:
    """An H.264 MP4 without audio whose frame i has brightness 2*i (so order is visible after decoding)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 2 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> Path:
    """Every tiny model, built once per test session (later modules reuse the finished build)."""
    from avrt.demo.zoo import build_zoo

    out = tmp_path_factory.getbasetemp() / "tiny_zoo"
    if not (out / "zoo.json").exists():
        build_zoo(out)
    return out


def describe(value):
    """A JSON-able picture of a value: arrays and images become shape, dtype and a content hash."""
    if isinstance(value, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()[:12]
        return {"ndarray": list(value.shape), "dtype": str(value.dtype), "sha1": digest}
    if isinstance(value, Image.Image):
        return {"image": [value.width, value.height], "mode": value.mode, **_hash_only(np.asarray(value))}
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def _hash_only(array: np.ndarray) -> dict:
    return {"sha1": describe(array)["sha1"]}


def check_golden(name: str, actual: dict) -> None:
    """Compare `actual` with tests/golden/models/<name>.json (or rewrite it when updating)."""
    path = GOLDEN_DIR / f"{name}.json"
    text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"missing golden file {path}; create it with AVRT_UPDATE_GOLDEN=1"
    assert json.loads(text) == json.loads(path.read_text()), f"{name} differs from {path}"
