"""AVQA ingest: one manifest row per usable QA; every unusable QA in the attrition table.

Reads the official annotation JSON of each split (fields: id, video_name, video_id,
question_text, multi_choice, answer, question_type, question_relation), probes every
referenced clip once (exists, opens, has a video stream that decodes, has an audio track, and
its video and its audio stream each last at least `data.checks.min_duration_s`) and writes:

- manifest.jsonl   one row per usable QA, with the clip's probe results;
- attrition.tsv    one row per dropped QA: sample_id, split, video_name, stage, reason, detail;
- ingest_summary.json   counts per split and per reason.

Real AVQA loses clips whose YouTube source is gone: those QAs land in attrition as
`clip_missing`, and the rest proceeds. A `video_name` that is not one plain file name (`..`, a
path separator, NUL: it would point outside the clips directory) lands there as `unsafe_video_name`
and its clip is never opened.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import av
from tqdm import tqdm

from avrt.core.answers import option_letter
from avrt.core.config import add_config_argument, load_config, stage_config
from avrt.core.datasets import check_avqa_row
from avrt.core.io import InputFileError, atomic_path, read_json, write_json
from avrt.core.rows import ManifestRow, write_rows
from avrt.data.names import UNSAFE_VIDEO_NAME, video_name_problem

log = logging.getLogger(__name__)

ATTRITION_FIELDS = ["sample_id", "split", "video_name", "stage", "reason", "detail"]


@dataclass
class ClipProbe:
    path: str
    ok: bool
    reason: str = ""
    detail: str = ""
    duration: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    num_frames: int = 0
    audio_rate: int = 0
    audio_channels: int = 0


def stream_seconds(stream: av.stream.Stream) -> float | None:
    """A stream's own duration from its metadata: its duration field, else frames / frame rate
    (video); None when the container does not say (e.g. some Matroska files)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.type == "video" and stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def probe_clip(path: str, min_duration: float) -> ClipProbe:
    """Check one clip without decoding it all: it exists, opens, decodes a frame, has audio, and
    both its video and its audio stream last at least `min_duration` seconds."""
    p = Path(path)
    if not p.exists():
        return ClipProbe(path, False, "clip_missing", "file does not exist")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                return ClipProbe(path, False, "no_video_stream", "container has no video stream")
            vstream = container.streams.video[0]
            next(container.decode(vstream))  # StopIteration or av.FFmpegError when undecodable
            container_seconds = float(container.duration / av.time_base) if container.duration else None
            video_seconds = stream_seconds(vstream) or container_seconds or 0.0
            probe = ClipProbe(
                path,
                True,
                duration=round(container_seconds or video_seconds, 4),
                width=vstream.codec_context.width,
                height=vstream.codec_context.height,
                fps=round(float(vstream.average_rate or 0), 4),
                num_frames=int(vstream.frames or 0),
            )
            if not container.streams.audio:
                probe.ok, probe.reason, probe.detail = False, "no_audio_track", "container has no audio stream"
                return probe
            astream = container.streams.audio[0]
            probe.audio_rate = int(astream.rate or 0)
            probe.audio_channels = int(astream.channels or 0)
            audio_seconds = stream_seconds(astream) or container_seconds or 0.0
    except StopIteration:
        return ClipProbe(path, False, "clip_corrupt", "video stream yields no frame")
    except (av.FFmpegError, OSError, ValueError) as err:
        return ClipProbe(path, False, "clip_corrupt", f"{type(err).__name__}: {err}")
    # each stream on its own: a 1-frame video with 2 s of audio has a 2 s container
    for kind, seconds in (("video", video_seconds), ("audio", audio_seconds)):
        if seconds < min_duration:
            probe.ok, probe.reason = False, "clip_too_short"
            probe.detail = f"{kind} stream {seconds:.2f} s < {min_duration:.2f} s"
            break
    return probe


def _probe_star(args: tuple[str, float]) -> ClipProbe:
    return probe_clip(*args)


def load_annotations(path: str | Path) -> list[dict]:
    data = read_json(path)
    if not isinstance(data, list):
        raise InputFileError(f"{path}: expected a JSON list of QA objects (official AVQA schema), got {type(data).__name__}")
    return data


def ingest(
    annotations: dict[str, str | Path],
    clips_dir: str | Path,
    out_dir: str | Path,
    data: dict | None = None,
    workers: int | None = None,
) -> dict:
    """Check every annotated QA and its clip; write the manifest, attrition table and summary.

    `data` is the config's `data` block (clip extension under `avqa`, clip checks under `checks`);
    None takes the schema's defaults. `workers` (processes probing clips) overrides
    `data.checks.workers`, e.g. with the threads the workflow granted the job.
    """
    data = stage_config("data", data or {})
    clip_ext, min_duration = data["avqa"]["clip_ext"], data["checks"]["min_duration_s"]
    workers = workers or data["checks"]["workers"]
    out = Path(out_dir)
    attrition: list[dict] = []
    candidates: list[dict] = []
    seen_ids: set = set()
    totals = Counter()

    def drop(row: dict, split: str, reason: str, detail: str, stage: str = "annotation") -> None:
        attrition.append(
            {"sample_id": row.get("id", ""), "split": split, "video_name": row.get("video_name", ""),
             "stage": stage, "reason": reason, "detail": detail}
        )

    for split, path in annotations.items():
        rows = load_annotations(path)
        totals[split] = len(rows)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                drop({"id": f"{split}[{i}]"}, split, "bad_annotation", f"row {i} is not an object")
                continue
            problem = check_avqa_row(row)
            if problem:
                drop(row, split, "bad_annotation", problem)
            elif name_problem := video_name_problem(row["video_name"]):
                # the name becomes a path under the clips and media dirs: never let it leave them
                drop(row, split, UNSAFE_VIDEO_NAME, name_problem)
            elif (split, row["id"]) in seen_ids:
                drop(row, split, "duplicate_id", f"QA id {row['id']} appears more than once in {split}")
            else:
                seen_ids.add((split, row["id"]))
                candidates.append({**row, "_split": split})

    clips = sorted({r["video_name"] for r in candidates})
    jobs = [(str(Path(clips_dir) / f"{name}{clip_ext}"), min_duration) for name in clips]
    log.info("probing %d clips with %d worker(s)", len(jobs), workers)
    progress = dict(total=len(jobs), desc="probe clips", unit="clip", mininterval=5)
    if workers > 1 and len(jobs) > 1:
        with Pool(workers) as pool:
            probes = list(tqdm(pool.imap(_probe_star, jobs, chunksize=8), **progress))
    else:
        probes = [probe_clip(*job) for job in tqdm(jobs, **progress)]
    by_clip = dict(zip(clips, probes))

    manifest = []
    for row in candidates:
        probe = by_clip[row["video_name"]]
        if not probe.ok:
            drop(row, row["_split"], probe.reason, probe.detail, stage="clip_check")
            continue
        manifest.append(
            ManifestRow(
                sample_id=str(row["id"]),
                split=row["_split"],
                video_name=row["video_name"],
                video_id=row.get("video_id"),
                clip_path=probe.path,
                question=row["question_text"],
                choices=tuple(row["multi_choice"]),
                answer_index=row["answer"],
                gold_letter=option_letter(row["answer"]),
                question_type=row.get("question_type", ""),
                question_relation=row.get("question_relation", ""),
                duration=probe.duration,
                width=probe.width,
                height=probe.height,
                fps=probe.fps,
                audio_rate=probe.audio_rate,
                audio_channels=probe.audio_channels,
            )
        )
    manifest.sort(key=lambda r: (r.split, r.video_name, r.sample_id))

    write_rows(out / "manifest.jsonl", manifest)
    write_attrition(out / "attrition.tsv", attrition)
    summary = {
        "annotations": dict(totals),
        "usable_qa": dict(Counter(r.split for r in manifest)),
        "dropped_qa": dict(Counter(r["reason"] for r in attrition)),
        "clips": {"referenced": len(clips), "usable": sum(p.ok for p in probes),
                  "unusable": dict(Counter(p.reason for p in probes if not p.ok))},
    }
    write_json(out / "ingest_summary.json", summary)
    log.info("manifest: %d usable QA; dropped %d (%s)", len(manifest), len(attrition), dict(summary["dropped_qa"]))
    return summary


def write_attrition(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ATTRITION_FIELDS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def read_attrition(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--annotations", nargs="+", required=True, metavar="SPLIT=PATH",
                        help="official AVQA annotation JSON per split, e.g. train=train_qa.json")
    parser.add_argument("--clips-dir", required=True, help="directory holding <video_name><data.avqa.clip_ext>")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--workers", type=int, help="processes probing clips (default: data.checks.workers)")


def run(args) -> int:
    annotations = {}
    for item in args.annotations:
        split, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--annotations expects SPLIT=PATH, got {item!r}")
        annotations[split] = path
    config = load_config(*args.config)
    ingest(annotations, args.clips_dir, args.out, config["data"], args.workers)
    return 0

