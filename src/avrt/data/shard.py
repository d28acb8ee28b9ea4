"""Split the manifest into N shards; later stages run one job per shard.

All QAs of one clip go to the same shard, so each clip's media is prepared once. Shards are
contiguous runs of the manifest's (split, clip) order, balanced by QA count: the assignment
depends only on the manifest and N, so re-sharding the same manifest gives the same files.
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
    groups: dict[tuple, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        groups[(row.split, row.video_name)].append(row)
    total = len(rows)
    shards: list[list[ManifestRow]] = [[] for _ in range(n_shards)]
    done = 0
    for key in sorted(groups):
        index = min(n_shards - 1, done * n_shards // max(total, 1))
        shards[index].extend(groups[key])
        done += len(groups[key])
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
