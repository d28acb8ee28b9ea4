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

from avrt.core.io import JsonlAppender, read_jsonl, read_partial_jsonl, write_json, write_jsonl
from avrt.core.media import MediaParams, decode_frames, load_audio, write_silent_video

log = logging.getLogger(__name__)


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
