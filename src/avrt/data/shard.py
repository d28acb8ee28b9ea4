"""Split the manifest into N shards; later stages run one job per shard.

All QAs of one clip go to the same shard, whatever their splits (AVQA asks about some clips in
both train and val), so each clip's media is prepared once. Every row keeps its `split`: the
stages after the shards pick their split from the rows, not from the shard. Shards are
contiguous runs of the clips ordered by (first split asking about the clip, clip), balanced by
QA count: the assignment depends only on the manifest and N, so re-sharding the same manifest
gives the same files.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from avrt.core.rows import ManifestRow, read_rows, write_rows

log = logging.getLogger(__name__)


def shard_ids(n_shards: int) -> list[str]:
    """Zero-padded shard names: 000 .. N-1 (at least three digits)."""
    width = max(3, len(str(n_shards - 1)))
    return [f"{i:0{width}d}" for i in range(n_shards)]


def assign_shards(rows: list[ManifestRow], n_shards: int) -> list[list[ManifestRow]]:
    by_clip: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_clip[row.video_name].append(row)
    order = sorted(by_clip, key=lambda name: (min(r.split for r in by_clip[name]), name))
    total = len(rows)
    shards: list[list[ManifestRow]] = [[] for _ in range(n_shards)]
    done = 0
    for name in order:
        index = min(n_shards - 1, done * n_shards // max(total, 1))
        shards[index].extend(by_clip[name])
        done += len(by_clip[name])
    return shards


def shard_manifest(manifest: str | Path, outputs: list[str | Path]) -> list[int]:
    rows = read_rows(manifest, ManifestRow)
    shards = assign_shards(rows, len(outputs))
    sizes = [write_rows(path, shard) for path, shard in zip(outputs, shards)]
    log.info("%d QA into %d shards (sizes %d..%d)", len(rows), len(outputs), min(sizes), max(sizes))
    return sizes


def add_arguments(parser) -> None:
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--outputs", nargs="+", required=True, help="one output JSONL per shard, in order")


def run(args) -> int:
    shard_manifest(args.manifest, args.outputs)
    return 0
