"""Cutting media for a model: uniform frames, 16 kHz mono audio and the silent video.

The one place a clip or a benchmark item becomes frames and audio. The data stage
(`avrt.data.media`) writes these cuts per shard; evaluation cuts benchmark items in memory with
`media_from_files`; the same `MediaParams` drive both, so every model sees the same cut.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # clip_media imports this module
    from avrt.core.clip_media import ClipMedia

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaParams:
    num_frames: int = 8
    frame_sampling: str = "segment_center"
    frame_max_side: int = 640
    jpeg_quality: int = 95
    audio_seconds: float = 10.0
    sample_rate: int = 16000
    resample_type: str = "soxr_hq"
    silent_video: bool = False

    @classmethod
    def from_config(cls, media: dict) -> "MediaParams":
        return cls(**media)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def audio_samples(self) -> int:
        return int(round(self.audio_seconds * self.sample_rate))


def sample_frame_indices(n_frames: int, k: int, method: str) -> list[int]:
    """k frame indices spread uniformly over a clip of n_frames frames.

    segment_center: the middle frame of each of k equal segments (no bias towards the ends);
    linspace: round(linspace(0, n-1, k)), first and last frame included (qwen-vl-utils).
    """
    if n_frames < 1:
        raise ValueError("clip has no frames")
    if method == "segment_center":
        idx = np.floor((np.arange(k) + 0.5) * n_frames / k)
    elif method == "linspace":
        idx = np.round(np.linspace(0, n_frames - 1, k))
    else:
        raise ValueError(f"unknown frame_sampling {method!r} (segment_center, linspace)")
    return np.clip(idx, 0, n_frames - 1).astype(int).tolist()


def resized_dims(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most max_side; even numbers, aspect kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def video_size(path: str) -> tuple[int, int]:
    """(width, height) of the first video stream, from the container header (no decoding)."""
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        codec = container.streams.video[0].codec_context
        if not codec.width or not codec.height:
            raise ValueError("video stream header gives no frame size")
        return int(codec.width), int(codec.height)


def decode_frames(path: str, params: MediaParams) -> dict:
    import decord

    # The size comes from the header, not from a probe VideoReader: a second reader alive beside
    # the resizing one keeps decoding in its background thread and doubles the cost.
    src_w, src_h = video_size(path)
    width, height = resized_dims(src_w, src_h, params.frame_max_side)
    if (width, height) != (src_w, src_h):
        vr = decord.VideoReader(path, width=width, height=height, num_threads=1)
    else:
        vr = decord.VideoReader(path, num_threads=1)
    n = len(vr)
    indices = sample_frame_indices(n, params.num_frames, params.frame_sampling)
    frames = vr.get_batch(indices).asnumpy()
    times = vr.get_frame_timestamp(indices)[:, 0]
    return {
        "frames": frames,
        "frame_indices": indices,
        "frame_times": [round(float(t), 4) for t in times],
        "num_video_frames": n,
        "video_fps": round(float(vr.get_avg_fps()), 4),
        "source_size": [src_w, src_h],
        "frame_size": [width, height],
    }


def demux_audio(path: str, max_seconds: float) -> tuple[np.ndarray, int, int]:
    """Decode up to max_seconds of the first audio track: (mono float32, source rate, channels)."""
    with av.open(path) as container:
        if not container.streams.audio:
            raise ValueError("no audio track")
        stream = container.streams.audio[0]
        rate, channels = int(stream.rate), int(stream.channels)
        to_float = av.AudioResampler(format="fltp")  # sample format only: rate and layout unchanged
        need = int(np.ceil(max_seconds * rate))
        chunks, have = [], 0
        for frame in container.decode(stream):
            for out in to_float.resample(frame):
                chunks.append(out.to_ndarray())  # (channels, samples)
                have += chunks[-1].shape[1]
            if have >= need:
                break
    if not chunks:
        raise ValueError("audio track decodes to no samples")
    wave = np.concatenate(chunks, axis=1)[:, :need]
    return wave.mean(axis=0).astype(np.float32), rate, channels


def load_audio(path: str, params: MediaParams) -> dict:
    import librosa

    wave, rate, channels = demux_audio(path, params.audio_seconds)
    source_seconds = wave.size / rate
    if rate != params.sample_rate:
        wave = librosa.resample(wave, orig_sr=rate, target_sr=params.sample_rate, res_type=params.resample_type)
    target = params.audio_samples
    pad = max(0, target - wave.size)
    wave = np.pad(wave, (0, pad))[:target].astype(np.float32)
    return {
        "audio": np.clip(wave, -1.0, 1.0),
        "audio_source_rate": rate,
        "audio_source_channels": channels,
        "audio_source_seconds": round(source_seconds, 4),
        "audio_pad_samples": int(pad),
        "audio_silent": bool(not np.any(wave)),  # digital silence: every prepared sample is exactly 0
    }


def write_silent_video(src: str, dst: Path) -> None:
    """Copy the video stream into a new MP4 without any audio (no re-encode)."""
    tmp = dst.with_name(dst.name + ".part")
    with av.open(src) as inp, av.open(str(tmp), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
    tmp.replace(dst)


def media_from_files(name: str, params: MediaParams, video: str | None = None, image: str | None = None,
                     audio: str | None = None) -> ClipMedia:
    """In-memory media for one benchmark item, cut exactly as the AVQA shards are.

    A video gives the frames and, when `audio` is not given, its own audio track; an image is a
    single frame; a separate audio file (OmniBench, MMAR, MMAU) is demuxed and resampled the same
    way. A modality with no source stays empty (no frames / no audio samples).
    """
    from avrt.core.clip_media import ClipMedia

    frames = np.zeros((0, 0, 0, 3), np.uint8)
    times: list[float] = []
    duration = 0.0
    if video:
        v = decode_frames(video, params)
        frames, times = v["frames"], v["frame_times"]
        duration = v["num_video_frames"] / v["video_fps"] if v["video_fps"] else 0.0
    elif image:
        img = Image.open(image).convert("RGB")
        img = img.resize(resized_dims(img.width, img.height, params.frame_max_side))
        frames, times = np.asarray(img)[None], [0.0]
    wave = np.zeros(0, np.float32)
    source = audio or video
    if source and (audio or _has_audio(video)):
        a = load_audio(source, params)
        wave = a["audio"]
        duration = duration or a["audio_source_seconds"]
    return ClipMedia(name, frames, np.asarray(times, np.float64), wave, params.sample_rate, float(duration))


def _has_audio(path: str) -> bool:
    with av.open(path) as container:
        return bool(container.streams.audio)
