"""Select merged traces for SFT (AVRT-20K) and split them into train and val.

Modes:
- both_correct   every teacher answered correctly (the paper: AVRT-20K, about half kept);
- unfiltered     every format-compliant merged trace (the paper's ablation); with
                 `match_count`, a seeded subsample of the both_correct size;
- merger_correct the merged answer is correct, whatever the teachers said.

Only traces in the strict format are kept (the paper reports 100% compliance). With
`drop_answer_mismatch` a trace whose merged answer differs from the ground truth is dropped in
every mode, so SFT never teaches a wrong final answer. The val split is a stable hash of the
sample id (the paper's 945 / 19,224 = 4.9% by default), independent of shard order.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from pathlib import Path

from avrt.core.datasets import in_val
from avrt.core.config import add_config_argument, load_config
from avrt.core.io import atomic_path, write_jsonl
from avrt.core.rows import Avrt20kRow, MergedTrace, read_rows, write_rows

log = logging.getLogger(__name__)

MODES = ("both_correct", "unfiltered", "merger_correct")


def avrt20k_row(merged: MergedTrace) -> Avrt20kRow:
    """A merged row in the released AVRT-20K schema, plus provenance columns and its clip."""
    return Avrt20kRow.of(merged, merged.merged_output, difficulty=merged.difficulty)


def select(rows: list[MergedTrace], mode: str, match_count: bool, drop_answer_mismatch: bool,
           seed: int) -> tuple[list[MergedTrace], Counter]:
    if mode not in MODES:
        raise ValueError(f"unknown filter mode {mode!r} (known: {', '.join(MODES)})")
    counts = Counter(merged=len(rows))
    compliant = [r for r in rows if r.merge_status == "ok"]
    counts["format_ok"] = len(compliant)
    all_correct = [r for r in compliant if r.teachers_correct == len(r.teachers)]
    counts["format_ok_and_all_teachers_correct"] = len(all_correct)
    if mode == "both_correct":
        kept = all_correct
    elif mode == "merger_correct":
        kept = [r for r in compliant if r.merger_correct]
    else:
        kept = compliant
    if drop_answer_mismatch:
        before = len(kept)
        kept = [r for r in kept if r.merger_correct]
        counts["dropped_answer_mismatch"] = before - len(kept)
    if mode == "unfiltered" and match_count:
        target = sum(r.merger_correct or not drop_answer_mismatch for r in all_correct)
        kept = sorted(random.Random(seed).sample(kept, min(target, len(kept))), key=lambda r: r.sample_id)
        counts["matched_count_target"] = target
    counts["kept"] = len(kept)
    return kept, counts


def filter_traces(merged_paths: list[str | Path], mode: str, match_count: bool, drop_answer_mismatch: bool,
                  val_fraction: float, seed: int, out_train, out_val, out_counts, out_difficulty) -> Counter:
    rows = [r for p in merged_paths for r in read_rows(p, MergedTrace)]
    kept, counts = select(rows, mode, match_count, drop_answer_mismatch, seed)
    teachers = sorted({name for r in rows for name in r.teachers})
    for name in teachers:
        counts[f"teacher/{name}/answer_parsed"] = sum(r.teachers[name].answer_letter is not None for r in rows)
        counts[f"teacher/{name}/correct"] = sum(r.teachers[name].correct for r in rows)
    for label, n in Counter(r.difficulty for r in rows).items():
        counts[f"difficulty/{label}"] = n
    counts["merger_correct"] = sum(r.merger_correct for r in rows)
    train = [avrt20k_row(r) for r in kept if not in_val(r.sample_id, val_fraction, seed)]
    val = [avrt20k_row(r) for r in kept if in_val(r.sample_id, val_fraction, seed)]
    counts["train"], counts["val"] = len(train), len(val)
    write_rows(out_train, train)
    write_rows(out_val, val)
    write_jsonl(out_difficulty, ({"sample_id": r.sample_id, "video_name": r.video_name, "split": r.split,
                                  "teachers_correct": r.teachers_correct, "difficulty": r.difficulty} for r in rows))
    with atomic_path(out_counts) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["count", "value"])
        writer.writerow(["mode", mode])
        for key in sorted(counts):
            writer.writerow([key, counts[key]])
    log.info("filter %s: kept %d of %d merged (train %d, val %d)", mode, counts["kept"], len(rows), len(train), len(val))
    return counts


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--merged", nargs="+", required=True)
    parser.add_argument("--out-train", required=True)
    parser.add_argument("--out-val", required=True)
    parser.add_argument("--out-counts", required=True)
    parser.add_argument("--out-difficulty", required=True)


def run(args) -> int:
    f = load_config(*args.config)["filter"]
    filter_traces(args.merged, f["mode"], f["match_count"], f["drop_answer_mismatch"], f["val_fraction"], f["seed"],
                  args.out_train, args.out_val, args.out_counts, args.out_difficulty)
    return 0
