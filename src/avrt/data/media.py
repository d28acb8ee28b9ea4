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

import json
import logging
import shutil
from dataclasses import asdict
from multiprocessing import Pool
from pathlib import Path

import soundfile as sf
from PIL import Image
from tqdm import tqdm

from avrt.core.config import add_config_argument, load_config
from avrt.core.io import JsonlAppender, read_partial_jsonl, write_json
from avrt.core.media import MediaParams, decode_frames, load_audio, write_silent_video
from avrt.core.rows import ManifestRow, MediaRow, read_rows, write_rows

log = logging.getLogger(__name__)


def prepare_clip(job: tuple[str, str, str, Path, MediaParams]) -> MediaRow:
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
    return MediaRow.from_dict(row)


def prepare_shard(shard_path: str | Path, index_path: str | Path, params: MediaParams, workers: int = 1) -> dict:
    """Prepare every clip of a shard manifest and write its media index; returns clip counts."""
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
    for row in read_rows(shard_path, ManifestRow):
        clips.setdefault(row.video_name, row.clip_path)
    progress_file = work_dir / "progress.jsonl"
    done = {r.video_name: r for r in map(MediaRow.from_dict, read_partial_jsonl(progress_file)) if r.video_name in clips}
    todo = [(name, path, shard, media_root, params) for name, path in sorted(clips.items()) if name not in done]
    if done:
        log.info("shard %s: resuming, %d of %d clips already prepared", shard, len(done), len(clips))

    with JsonlAppender(progress_file, rewrite=[r.to_dict() for r in done.values()]) as progress:
        bar = tqdm(total=len(todo), desc=f"media {shard}", unit="clip", mininterval=5)
        if workers > 1 and len(todo) > 1:
            with Pool(workers) as pool:
                for row in pool.imap_unordered(prepare_clip, todo):
                    progress.append(row.to_dict())
                    done[row.video_name] = row
                    bar.update()
        else:
            for job in todo:
                row = prepare_clip(job)
                progress.append(row.to_dict())
                done[row.video_name] = row
                bar.update()
        bar.close()

    rows = [done[name] for name in sorted(done)]
    write_rows(index_path, rows)
    failed = [r for r in rows if not r.ok]
    for r in failed:
        log.warning("shard %s: clip %s dropped: %s", shard, r.video_name, r.detail)
    return {"clips": len(rows), "ok": len(rows) - len(failed), "failed": len(failed)}


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--shard", required=True, help="shard manifest JSONL")
    parser.add_argument("--index", required=True, help="output index JSONL; media go to <index dir>/<shard>/")
    parser.add_argument("--workers", type=int, default=1, help="processes preparing clips (the workflow: the job's threads)")


def run(args) -> int:
    params = MediaParams.from_config(load_config(*args.config)["media"])
    prepare_shard(args.shard, args.index, params, args.workers)
    return 0
