"""Prepare the media of one shard: uniform frames, 16 kHz mono audio and (optionally) silent video.

Per clip, under `<media_root>/<shard>/<video_name>/`:
- `frame_00.jpg ...`  `num_frames` frames sampled uniformly over the clip (decord, resized
  while decoding so the longer side is at most `frame_max_side`);
- `audio.wav`  the first `audio_seconds` of the clip's audio track, demuxed and decoded with
  PyAV, averaged to mono, resampled with librosa to `sample_rate`, zero-padded when the
  clip is shorter (the padding is recorded) and trimmed to exactly seconds * rate samples;
- `silent.mp4` (when `silent_video`) the video stream remuxed without audio, no re-encode.

The clip's media row records `audio_silent: true` when the prepared audio is digital silence
(every sample exactly 0: a muted upload, an empty track). Such a clip is kept, not dropped: its
frames are fine, and what to do with a silent track is the concern of a later stage (the audio
teacher would reason about nothing; the trace filter may skip it).

A clip's files are written into a fresh temporary directory in `<shard>/` and moved into place
when complete, so a failure removes only that temporary directory. A `video_name` that is not one
plain file name (it would leave `<shard>/`) fails the clip as `unsafe_video_name`, and nothing is
written for it.

The shard's index `<media_root>/<shard>.jsonl` (one row per clip, status ok or failed with a
reason) is written atomically at the end. Progress goes to `<shard>/progress.jsonl` row by row,
so an interrupted shard resumes where it stopped; `<shard>/params.json` records the parameters,
and a change of parameters starts the shard afresh.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
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
from avrt.data.names import UNSAFE_VIDEO_NAME, child_path

log = logging.getLogger(__name__)


def prepare_clip(job: tuple[str, str, str, Path, MediaParams]) -> MediaRow:
    """Prepare one clip; never raises: a failure comes back as a row with status 'failed'.

    The files are written into a fresh temporary directory beside the clip's and moved into
    place once all of them exist; a failure removes that temporary directory and nothing else.
    """
    video_name, clip_path, shard, media_root, params = job
    row: dict = {"video_name": video_name, "clip_path": clip_path, "params": params.digest()}
    shard_dir = media_root / shard
    try:
        out_dir = child_path(shard_dir, video_name)
    except ValueError as err:  # a manifest not written by ingest: refuse before touching the disk
        row.update(status="failed", reason=UNSAFE_VIDEO_NAME, detail=str(err))
        return MediaRow.from_dict(row)
    rel_dir = Path(shard) / video_name
    work: Path | None = None
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{video_name[:64]}.", suffix=".part", dir=shard_dir))
        video = decode_frames(clip_path, params)
        audio = load_audio(clip_path, params)
        frame_files = []
        for i, frame in enumerate(video.pop("frames")):
            name = f"frame_{i:02d}.jpg"
            Image.fromarray(frame).save(work / name, quality=params.jpeg_quality)
            frame_files.append(str(rel_dir / name))
        sf.write(work / "audio.wav", audio.pop("audio"), params.sample_rate, subtype="PCM_16")
        if params.silent_video:
            write_silent_video(clip_path, work / "silent.mp4")
        move_into_place(work, out_dir)
        work = None
        duration = video["num_video_frames"] / video["video_fps"] if video["video_fps"] else 0.0
        row.update(
            status="ok",
            frames=frame_files,
            audio=str(rel_dir / "audio.wav"),
            sample_rate=params.sample_rate,
            audio_samples=params.audio_samples,
            silent_video=str(rel_dir / "silent.mp4") if params.silent_video else None,
            duration=round(duration, 4),
            **video,
            **audio,
        )
    except Exception as err:  # noqa: BLE001 - any decoder error is this clip's attrition reason
        row.update(status="failed", reason="media_failed", detail=f"{type(err).__name__}: {err}")
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)  # only the directory this call created
    return MediaRow.from_dict(row)


def move_into_place(work: Path, out_dir: Path) -> None:
    """Move the finished files of `work` to `out_dir` and remove the then empty `work`.

    Usually `out_dir` does not exist and `work` is renamed onto it. An existing directory (an
    earlier run stopped after writing the clip, before recording it) gets the new files, each
    replacing the file of its name; nothing else in it is removed. A link or a file at that name
    is not ours to replace: the clip fails.
    """
    if not os.path.lexists(out_dir):
        work.rename(out_dir)
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    for item in work.iterdir():
        item.replace(out_dir / item.name)
    work.rmdir()


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
