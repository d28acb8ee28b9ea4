"""Aggregate the data stage: attrition from ingest and media preparation, and what remains.

Writes one attrition table at QA level (a clip whose media failed drops each of its QAs), the
counts per stage and reason, and a JSON summary with the usable QA per split (clips whose audio is
digital silence are counted there, not dropped).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from avrt.core.io import atomic_path, write_json
from avrt.core.rows import ManifestRow, MediaRow, read_rows
from avrt.data.ingest import read_attrition, write_attrition


def summarize(ingest_summary, attrition, shards, media, out_summary, out_attrition, out_counts) -> dict:
    rows = read_attrition(attrition)
    media_rows: dict[str, MediaRow] = {}
    for path in media:
        for row in read_rows(path, MediaRow):
            media_rows[row.video_name] = row
    usable = Counter()
    for path in shards:
        for qa in read_rows(path, ManifestRow):
            clip = media_rows.get(qa.video_name)
            if clip is None or not clip.ok:
                reason = "media_missing" if clip is None else clip.reason
                detail = "no media index row" if clip is None else clip.detail
                rows.append({"sample_id": qa.sample_id, "split": qa.split, "video_name": qa.video_name,
                             "stage": "media", "reason": reason, "detail": detail})
            else:
                usable[qa.split] += 1
    write_attrition(Path(out_attrition), rows)
    counts = Counter((r["stage"], r["reason"]) for r in rows)
    with atomic_path(out_counts) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["stage", "reason", "qa_dropped"])
        for (stage, reason), n in sorted(counts.items()):
            writer.writerow([stage, reason, n])
    ok = [r for r in media_rows.values() if r.ok]
    summary = {
        "ingest": json.loads(Path(ingest_summary).read_text()),
        "media": {
            "clips": len(media_rows),
            "ok": len(ok),
            "failed": len(media_rows) - len(ok),
            "audio_padded_clips": sum(r.audio_pad_samples > 0 for r in ok),
            "audio_silent_clips": sum(r.audio_silent for r in ok),
            "frame_sizes": dict(Counter("x".join(map(str, r.frame_size)) for r in ok)),
            "source_sizes": dict(Counter("x".join(map(str, r.source_size)) for r in ok)),
        },
        "usable_qa": dict(usable),
        "dropped_qa": {f"{stage}/{reason}": n for (stage, reason), n in sorted(counts.items())},
    }
    write_json(out_summary, summary)
    return summary


def add_arguments(parser) -> None:
    parser.add_argument("--ingest-summary", required=True)
    parser.add_argument("--attrition", required=True)
    parser.add_argument("--shards", nargs="+", required=True)
    parser.add_argument("--media", nargs="+", required=True)
    parser.add_argument("--out-summary", required=True)
    parser.add_argument("--out-attrition", required=True)
    parser.add_argument("--out-counts", required=True)


def run(args) -> int:
    summarize(args.ingest_summary, args.attrition, args.shards, args.media,
              args.out_summary, args.out_attrition, args.out_counts)
    return 0


