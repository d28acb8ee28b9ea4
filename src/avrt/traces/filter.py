"""Select traces for SFT (AVRT-20K) and split them into train and val.

Sources (`filter.source`): the merger's audio-visual traces (`merged`, the paper's AVRT-20K), or
one teacher's own traces (the paper's Table 5 single-modality chains), each written in the strict
SFT format by `teacher_sft_trace`. Teacher rows come with every teacher's rows of the same
questions, so the modes and the difficulty see all teachers' answers as with merged rows.

Modes:
- both_correct   every teacher answered correctly (the paper: AVRT-20K, about half kept);
- unfiltered     every format-compliant trace (the paper's ablation); with `match_count`,
                 a seeded subsample of the both_correct size;
- merger_correct the merged answer is correct, whatever the teachers said (merged source only).

Only traces in the strict format are kept (the paper reports 100% compliance). With
`drop_answer_mismatch` a trace whose final answer (the merger's, or the source teacher's) differs
from the ground truth is dropped in every mode, so SFT never teaches a wrong final answer. The val
split is a stable hash of the sample id (the paper's 945 / 19,224 = 4.9% by default), independent
of shard order.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from avrt.core.datasets import difficulty_of, in_val
from avrt.core.config import add_config_argument, load_config
from avrt.core.io import atomic_path, write_jsonl
from avrt.core.parsing import check_merger_output
from avrt.core.rows import Avrt20kRow, MergedTrace, QuestionRow, TeacherRef, TeacherTrace, read_rows, write_rows

log = logging.getLogger(__name__)

MODES = ("both_correct", "unfiltered", "merger_correct")


MERGED = "merged"  # filter.source: the merger's traces; any other value names a teacher


@dataclass(frozen=True)
class Candidate:
    """One trace that may enter the SFT set, with what the modes select it by."""

    row: QuestionRow  # the merged row, or the source teacher's own row
    trace: str | None  # the SFT target in the strict format; None when the trace does not hold it
    all_teachers_correct: bool
    answer_correct: bool  # the trace's own final answer is the ground truth
    teachers_correct: int
    difficulty: str


def merged_candidate(merged: MergedTrace) -> Candidate:
    return Candidate(merged, merged.merged_output if merged.merge_status == "ok" else None,
                     merged.teachers_correct == len(merged.teachers), merged.merger_correct,
                     merged.teachers_correct, merged.difficulty)


def teacher_sft_trace(trace: TeacherTrace) -> str | None:
    """A teacher's trace as an SFT target: `<think>{reasoning}</think><answer>{letter}</answer>`.

    `reasoning` is the teacher's answer text less its answer line(s), or its thinking block when
    nothing else is left (`TeacherTrace.reasoning`, from `parse_teacher_answer`); `letter` is the
    option read from it. None when no option was read, the reasoning is empty, or the result does
    not hold the strict format the merged traces are held to (reasoning that writes the tags).
    """
    reasoning = (trace.reasoning or "").strip()
    if trace.answer_letter is None or not reasoning:
        return None
    text = f"<think>{reasoning}</think><answer>{trace.answer_letter}</answer>"
    return text if check_merger_output(text, len(trace.choices)).ok else None


def teacher_candidates(rows: list[TeacherTrace], teacher: str) -> list[Candidate]:
    """The source teacher's first sample of every question all teachers answered (as the merger
    pairs them), judged by every teacher's answer to it."""
    by_question: dict[str, dict[str, TeacherTrace]] = defaultdict(dict)
    for r in rows:
        if r.sample_index == 0:
            by_question[r.sample_id][r.teacher] = r
    names = sorted({r.teacher for r in rows})
    if teacher not in names:
        raise ValueError(f"config key 'filter.source': no traces of teacher {teacher!r} among the inputs "
                         f"(have: {', '.join(names) or 'none'})")
    candidates = []
    for sample_id in sorted(by_question):
        traces = by_question[sample_id]
        if len(traces) < len(names):
            continue
        own, n_correct = traces[teacher], sum(t.correct for t in traces.values())
        candidates.append(Candidate(own, teacher_sft_trace(own), n_correct == len(names), own.correct, n_correct,
                                    difficulty_of(n_correct, len(names))))
    return candidates


def avrt20k_row(merged: MergedTrace) -> Avrt20kRow:
    """A merged row in the released AVRT-20K schema, plus provenance columns and its clip."""
    return Avrt20kRow.of(merged, merged.merged_output, difficulty=merged.difficulty)


def choose(candidates: list[Candidate], mode: str, match_count: bool, drop_answer_mismatch: bool,
           seed: int) -> tuple[list[Candidate], Counter]:
    if mode not in MODES:
        raise ValueError(f"unknown filter mode {mode!r} (known: {', '.join(MODES)})")
    counts = Counter()
    compliant = [c for c in candidates if c.trace is not None]
    counts["format_ok"] = len(compliant)
    all_correct = [c for c in compliant if c.all_teachers_correct]
    counts["format_ok_and_all_teachers_correct"] = len(all_correct)
    if mode == "both_correct":
        kept = all_correct
    elif mode == "merger_correct":
        kept = [c for c in compliant if c.answer_correct]
    else:
        kept = compliant
    if drop_answer_mismatch:
        before = len(kept)
        kept = [c for c in kept if c.answer_correct]
        counts["dropped_answer_mismatch"] = before - len(kept)
    if mode == "unfiltered" and match_count:
        target = sum(c.answer_correct or not drop_answer_mismatch for c in all_correct)
        kept = sorted(random.Random(seed).sample(kept, min(target, len(kept))), key=lambda c: c.row.sample_id)
        counts["matched_count_target"] = target
    counts["kept"] = len(kept)
    return kept, counts


def select(rows: list[MergedTrace], mode: str, match_count: bool, drop_answer_mismatch: bool,
           seed: int) -> tuple[list[MergedTrace], Counter]:
    kept, counts = choose([merged_candidate(r) for r in rows], mode, match_count, drop_answer_mismatch, seed)
    counts["merged"] = len(rows)
    return [c.row for c in kept], counts


def candidates_of(paths: list[str | Path], source: str) -> tuple[list[Candidate], Counter]:
    """The candidates of the SFT set from merged rows (source `merged`) or every teacher's rows
    (source: the teacher whose traces train), with each teacher's answer counts."""
    counts = Counter()
    if source == MERGED:
        rows = [r for p in paths for r in read_rows(p, MergedTrace)]
        counts["merged"] = len(rows)
        counts.update(_teacher_counts([(*ref, len(r.choices)) for r in rows for ref in r.teachers.items()]))
        return [merged_candidate(r) for r in rows], counts
    traces = [r for p in paths for r in read_rows(p, TeacherTrace)]
    candidates = teacher_candidates(traces, source)
    counts["traces"] = len(candidates)
    counts.update(_teacher_counts([(t.teacher, t, len(t.choices)) for t in traces if t.sample_index == 0]))
    return candidates, counts


def _teacher_counts(answers: list[tuple[str, TeacherRef | TeacherTrace, int]]) -> Counter:
    """Per teacher: answers an option was read from, correct answers (zeros kept in the table), and
    the correct answers a uniform guess among each question's options would expect, to compare with."""
    counts = Counter()
    for name, answer, n_options in answers:
        counts[f"teacher/{name}/answer_parsed"] += answer.answer_letter is not None
        counts[f"teacher/{name}/correct"] += answer.correct
        counts[f"teacher/{name}/correct_by_chance"] += 1 / n_options if n_options else 0.0
    return Counter({key: round(n, 2) if isinstance(n, float) else n for key, n in counts.items()})


def filter_traces(paths: list[str | Path], mode: str, match_count: bool, drop_answer_mismatch: bool,
                  val_fraction: float, seed: int, out_train, out_val, out_counts, out_difficulty,
                  source: str = MERGED) -> Counter:
    """Write the SFT set chosen from `paths` (merged rows, or every teacher's rows for a teacher source)."""
    if source != MERGED and mode == "merger_correct":
        raise ValueError(f"config key 'filter.mode': merger_correct needs the merger's traces, "
                         f"but filter.source is the teacher {source!r}")
    candidates, counts = candidates_of(paths, source)
    kept, selected = choose(candidates, mode, match_count, drop_answer_mismatch, seed)
    counts.update(selected)
    for label, n in Counter(c.difficulty for c in candidates).items():
        counts[f"difficulty/{label}"] = n
    if source == MERGED:
        counts["merger_correct"] = sum(c.answer_correct for c in candidates)
    rows = {split: [Avrt20kRow.of(c.row, c.trace, difficulty=c.difficulty) for c in kept
                    if in_val(c.row.sample_id, val_fraction, seed) == (split == "val")] for split in ("train", "val")}
    counts["train"], counts["val"] = len(rows["train"]), len(rows["val"])
    write_rows(out_train, rows["train"])
    write_rows(out_val, rows["val"])
    write_jsonl(out_difficulty, ({"sample_id": c.row.sample_id, "video_name": c.row.video_name, "split": c.row.split,
                                  "teachers_correct": c.teachers_correct, "difficulty": c.difficulty}
                                 for c in candidates))
    with atomic_path(out_counts) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["count", "value"])
        writer.writerow(["source", source])
        writer.writerow(["mode", mode])
        for key in sorted(counts):
            writer.writerow([key, counts[key]])
    log.info("filter %s: kept %d of %d %s (train %d, val %d)", mode, counts["kept"], len(candidates), source,
             counts["train"], counts["val"])
    return counts


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--traces", nargs="+", required=True,
                        help="merged rows, or every teacher's rows when filter.source names a teacher")
    parser.add_argument("--out-train", required=True)
    parser.add_argument("--out-val", required=True)
    parser.add_argument("--out-counts", required=True)
    parser.add_argument("--out-difficulty", required=True)


def run(args) -> int:
    f = load_config(*args.config)["filter"]
    filter_traces(args.traces, f["mode"], f["match_count"], f["drop_answer_mismatch"], f["val_fraction"], f["seed"],
                  args.out_train, args.out_val, args.out_counts, args.out_difficulty, f["source"])
    return 0
