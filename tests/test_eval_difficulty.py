"""Difficulty subsets by teacher correctness (the paper's Table 8)."""

from __future__ import annotations

import pytest

from avrt.core.datasets import difficulty_of
from avrt.evaluation.difficulty import count_teachers_correct, difficulty_subsets
from avrt.evaluation.scoring import BenchmarkResult, ItemScore


def result_of(correct: dict[str, bool], benchmark: str = "omnibench") -> BenchmarkResult:
    items = [
        ItemScore(id=i, outcome="correct" if ok else "logic_error", gold="A", strict_answer="A" if ok else "B",
                  think_format=True, official_correct=ok)
        for i, ok in correct.items()
    ]
    return BenchmarkResult(benchmark, "rule", True, items)


def test_difficulty_of_two_teachers():
    assert [difficulty_of(n, 2) for n in (2, 1, 0)] == ["easy", "medium", "hard"]
    assert difficulty_of(3, n_teachers=3) == "easy" and difficulty_of(2, n_teachers=3) == "medium"
    with pytest.raises(ValueError, match="outside 0..2"):
        difficulty_of(3, 2)


def test_teacher_counts_and_student_accuracy_per_subset():
    visual = result_of({"q1": True, "q2": True, "q3": False, "q4": False, "q5": True})
    audio = result_of({"q1": True, "q2": False, "q3": True, "q4": False})  # q5 missing: counts as wrong
    counts = count_teachers_correct([visual, audio])
    assert counts == {"q1": 2, "q2": 1, "q3": 1, "q4": 0, "q5": 1}

    student = result_of({"q1": True, "q2": False, "q3": True, "q4": True, "q5": True, "q6": False})
    subsets = difficulty_subsets(student, counts)
    assert subsets["easy"] == {"n": 1, "correct": 1, "accuracy": 1.0}
    assert subsets["medium"] == {"n": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}
    assert subsets["hard"] == {"n": 1, "correct": 1, "accuracy": 1.0}
    assert subsets["unassigned"] == {"n": 1}  # q6 has no teacher count


def test_teacher_ids_from_another_benchmark_are_refused():
    with pytest.raises(ValueError, match="not items of omnibench"):
        difficulty_subsets(result_of({"q1": True}), {"q1": 2, "other": 0})
