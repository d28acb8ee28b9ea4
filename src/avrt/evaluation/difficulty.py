"""Difficulty subsets by teacher correctness (the paper's Table 8).

An item is easy when every teacher answered it correctly, hard when none did and medium in
between (with the paper's two teachers: 2, 0 and 1 correct). The paper's OmniBench subsets
(64 + 456 + 619 = 1,139 of 1,142 items) leave 3 items unassigned, so items without a teacher
count are reported as `unassigned` rather than put in a subset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from avrt.core.datasets import DIFFICULTY_SUBSETS, difficulty_of
from avrt.evaluation.scoring import BenchmarkResult


def count_teachers_correct(teacher_results: Sequence[BenchmarkResult], column: str = "strict") -> dict[str, int]:
    """id -> how many teachers answered the item correctly (items a teacher lacks count as wrong)."""
    counts: dict[str, int] = {}
    for result in teacher_results:
        for item in result.items:
            right = item.correct if column == "strict" else bool(item.official_correct)
            counts[item.id] = counts.get(item.id, 0) + int(right)
    return counts


def difficulty_subsets(
    result: BenchmarkResult, teachers_correct: Mapping[str, int], *, n_teachers: int = 2, column: str = "strict"
) -> dict[str, dict]:
    """Per subset: item count, correct count and accuracy of `result`; plus the unassigned count.

    Ids in `teachers_correct` that are not items of `result` are an error (a different benchmark).
    """
    ids = {item.id for item in result.items}
    foreign = sorted(set(teachers_correct) - ids)
    if foreign:
        raise ValueError(f"{len(foreign)} teacher id(s) are not items of {result.benchmark}, e.g. {foreign[:5]}")
    tally = {name: [0, 0] for name in DIFFICULTY_SUBSETS}
    unassigned = 0
    for item in result.items:
        if item.id not in teachers_correct:
            unassigned += 1
            continue
        subset = tally[difficulty_of(teachers_correct[item.id], n_teachers)]
        subset[0] += 1
        subset[1] += int(item.correct if column == "strict" else bool(item.official_correct))
    out: dict[str, dict] = {
        name: {"n": n, "correct": k, "accuracy": k / n if n else None} for name, (n, k) in tally.items()
    }
    out["unassigned"] = {"n": unassigned}
    return out
