"""Cutting media for a model: uniform frames, 16 kHz mono audio and the silent video.

The one place a clip or a benchmark item becomes frames and audio. The data stage
(`avrt.data.media`) writes these cuts per shard; evaluation cuts benchmark items in memory with
`media_from_files`. The training cut (the config's `media` block) takes a fixed number of frames
and a fixed audio window; an evaluation protocol (`avrt.evaluation.protocols`) may instead take
frames at a rate with a cap (`fps`, `max_frames`) and the whole audio track up to a cap
(`audio_length: full`). Either way only the sampled frames are decoded (decord seeks to them) and
audio is demuxed no further than its cap, so an hour-long video costs what its cut holds.
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
    # Evaluation protocols only (`$defs/media_protocol`; the training cut leaves them at these values):
    fps: float | None = None  # frames per second of video, at most max_frames; None: num_frames frames
    max_frames: int = 64
    audio_length: str = "fixed"  # fixed: exactly audio_seconds (zero-padded); full: the track, cut at audio_seconds

    def __post_init__(self):
        if self.audio_length not in AUDIO_LENGTHS:
            raise ValueError(f"unknown audio_length {self.audio_length!r} ({', '.join(AUDIO_LENGTHS)})")
        if self.fps is not None and self.max_frames < 1:
            raise ValueError(f"frames at fps {self.fps} need a cap of at least 1 frame, got max_frames {self.max_frames}")

    @classmethod
    def from_config(cls, media: dict) -> "MediaParams":
        return cls(**media)

    def cut_fields(self) -> dict:
        """The fields that decide the cut. Those the cut does not use are left out (num_frames
        at a frame rate), and so are the protocol fields at their training values, so the training
        cut keeps the digest it had before they existed (its prepared shards stay valid)."""
        fields = asdict(self)
        if self.fps is None:
            del fields["fps"], fields["max_frames"]
        else:
            del fields["num_frames"]
        if self.audio_length == "fixed":
            del fields["audio_length"]
        return fields

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.cut_fields(), sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        """The cut in words, for result files and table notes."""
        if self.fps is None:
            frames = f"{self.num_frames} frames ({self.frame_sampling})"
        else:
            frames = f"{self.fps:g} fps, at most {self.max_frames} frames ({self.frame_sampling})"
        if self.audio_length == "fixed":
            audio = f"audio: the first {self.audio_seconds:g} s, zero-padded"
        else:
            audio = f"audio: all of it, at most {self.audio_seconds:g} s"
        return f"{frames} of at most {self.frame_max_side} px a side; {audio} ({self.sample_rate} Hz)"

    def frame_count(self, total: int, native_fps: float, where: str = "video") -> int:
        """How many frames to take of a video of `total` frames at `native_fps`."""
        if self.fps is None:
            return self.num_frames
        if not native_fps or native_fps <= 0:
            raise ValueError(f"{where}: the container gives no frame rate, so frames at {self.fps:g} fps cannot be placed")
        return fps_frame_count(total, native_fps, self.fps, self.max_frames)

    @property
    def audio_samples(self) -> int:
        return int(round(self.audio_seconds * self.sample_rate))


AUDIO_LENGTHS = ("fixed", "full")
# qwen-omni-utils (v2_5/vision_process.py smart_nframes): at least FPS_MIN_FRAMES frames, an even
# count (FRAME_FACTOR: the processor's temporal patch takes frames in pairs).
FPS_MIN_FRAMES = 4
FRAME_FACTOR = 2


def fps_frame_count(total: int, native_fps: float, fps: float, max_frames: int) -> int:
    """qwen-omni-utils' frame count: duration x fps, at least 4, at most max_frames and the
    video's own frames, rounded down to an even number (a one-frame video gives its frame)."""
    wanted = total / native_fps * fps
    n = min(max(wanted, FPS_MIN_FRAMES), max_frames, total)
    return max(int(n // FRAME_FACTOR) * FRAME_FACTOR, min(total, 1))


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
    """The sampled frames of a video and where they lie. Only those frames are decoded: the frame
    count and rate come from the container's index (no decoding), and decord seeks to each one."""
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
    indices = sample_frame_indices(n, params.frame_count(n, float(vr.get_avg_fps()), path), params.frame_sampling)
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
    # fixed: exactly audio_seconds; full: what the track has, up to audio_seconds
    target = params.audio_samples if params.audio_length == "fixed" else min(wave.size, params.audio_samples)
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
    """In-memory media for one benchmark item, cut by `params` (the AVQA shards' own cut, or an
    evaluation protocol's).

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
