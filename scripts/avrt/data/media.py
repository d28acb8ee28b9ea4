"""Prepare the media of one shard: uniform frames, 16 kHz mono audio and (optionally) silent video.

Per clip, under `<media_root>/<shard>/<video_name>/`:
- `frame_00.jpg ...`  `num_frames` frames sampled uniformly over the clip (decord, resized
  while decoding so the longer side is at most `frame_max_side`);
- `audio.wav`  the first `audio_seconds` of the clip's audio track, demuxed and decoded with
  PyAV, averaged to mono, resampled with librosa to `sample_rate`, zero-padded when the
  clip is shorter (the padding is recorded) and trimmed to exactly seconds * rate samples;
- `silent.mp4` (when `silent_video`) the video stream remuxed without audio, no re-encode.

The shard's index `<media_root>/<shard>.jsonl` (one row per clip, status ok or failed with a
reason) is written atomically at the end. Progress goes to `<shard>/progress.jsonl` row by row,
so an interrupted shard resumes where it stopped; `<shard>/params.json` records the parameters,
and a change of parameters starts the shard afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import soundfile as sf
from PIL import Image
from tqdm import tqdm

from avrt.io import JsonlAppender, read_jsonl, read_partial_jsonl, write_json, write_jsonl

if TYPE_CHECKING:  # clip_media imports this module
    from avrt.data.clip_media import ClipMedia

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


def sample_frame_indices(n_frames: int, k: int, method: str = "segment_center") -> list[int]:
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


def decode_frames(path: str, params: MediaParams) -> dict:
    import decord

    probe = decord.VideoReader(path, num_threads=1)
    src_h, src_w = probe[0].shape[:2] if len(probe) else (0, 0)
    width, height = resized_dims(src_w, src_h, params.frame_max_side)
    vr = decord.VideoReader(path, width=width, height=height, num_threads=1) if (width, height) != (src_w, src_h) else probe
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
    from avrt.data.clip_media import ClipMedia

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


def prepare_clip(job: tuple[str, str, str, Path, MediaParams]) -> dict:
    """Prepare one clip; never raises: a failure comes back as a row with status 'failed'."""
    video_name, clip_path, shard, media_root, params = job
    rel_dir = Path(shard) / video_name
    out_dir = media_root / rel_dir
    row: dict = {"video_name": video_name, "clip_path": clip_path, "params": params.digest()}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        video = decode_frames(clip_path, params)
        audio = load_audio(clip_path, params)
        frame_files = []
        for i, frame in enumerate(video.pop("frames")):
            name = rel_dir / f"frame_{i:02d}.jpg"
            Image.fromarray(frame).save(media_root / name, quality=params.jpeg_quality)
            frame_files.append(str(name))
        sf.write(media_root / rel_dir / "audio.wav", audio.pop("audio"), params.sample_rate, subtype="PCM_16")
        silent = None
        if params.silent_video:
            silent = rel_dir / "silent.mp4"
            write_silent_video(clip_path, media_root / silent)
        duration = video["num_video_frames"] / video["video_fps"] if video["video_fps"] else 0.0
        row.update(
            status="ok",
            frames=frame_files,
            audio=str(rel_dir / "audio.wav"),
            sample_rate=params.sample_rate,
            audio_samples=params.audio_samples,
            silent_video=str(silent) if silent else None,
            duration=round(duration, 4),
            **video,
            **audio,
        )
    except Exception as err:  # noqa: BLE001 - any decoder error is this clip's attrition reason
        shutil.rmtree(out_dir, ignore_errors=True)
        row.update(status="failed", reason="media_failed", detail=f"{type(err).__name__}: {err}")
    return row


def prepare_shard(shard_path: str | Path, index_path: str | Path, params: MediaParams, workers: int = 1) -> dict:
    index_path = Path(index_path)
    media_root = index_path.parent
    shard = index_path.stem
    work_dir = media_root / shard
    params_file = work_dir / "params.json"
    if params_file.exists() and json.loads(params_file.read_text()) != asdict(params):
        log.info("shard %s: media parameters changed, starting afresh", shard)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(params_file, asdict(params))

    clips = {}
    for row in read_jsonl(shard_path):
        clips.setdefault(row["video_name"], row["clip_path"])
    progress_file = work_dir / "progress.jsonl"
    done = {r["video_name"]: r for r in read_partial_jsonl(progress_file) if r["video_name"] in clips}
    todo = [(name, path, shard, media_root, params) for name, path in sorted(clips.items()) if name not in done]
    if done:
        log.info("shard %s: resuming, %d of %d clips already prepared", shard, len(done), len(clips))

    with JsonlAppender(progress_file, rewrite=list(done.values())) as progress:
        bar = tqdm(total=len(todo), desc=f"media {shard}", unit="clip", mininterval=5)
        if workers > 1 and len(todo) > 1:
            with Pool(workers) as pool:
                for row in pool.imap_unordered(prepare_clip, todo):
                    progress.append(row)
                    done[row["video_name"]] = row
                    bar.update()
        else:
            for job in todo:
                row = prepare_clip(job)
                progress.append(row)
                done[row["video_name"]] = row
                bar.update()
        bar.close()

    rows = [done[name] for name in sorted(done)]
    write_jsonl(index_path, rows)
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        log.warning("shard %s: clip %s dropped: %s", shard, r["video_name"], r["detail"])
    return {"clips": len(rows), "ok": len(rows) - len(failed), "failed": len(failed)}


def add_arguments(parser) -> None:
    parser.add_argument("--shard", required=True, help="shard manifest JSONL")
    parser.add_argument("--index", required=True, help="output index JSONL; media go to <index dir>/<shard>/")
    parser.add_argument("--params", required=True, help="JSON object of media parameters (config 'media')")
    parser.add_argument("--workers", type=int, default=1)


def run(args) -> int:
    params = MediaParams.from_config(json.loads(args.params))
    prepare_shard(args.shard, args.index, params, args.workers)
    return 0
