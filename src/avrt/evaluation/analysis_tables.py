"""The paper's analysis tables on one benchmark (OmniBench in the paper).

Table 8: accuracy of each evaluated model on the benchmark's difficulty subsets, the items sorted by
how many single-modality teachers answered them correctly (`avrt.evaluation.difficulty`): easy =
all, medium = some, hard = none. An item some teacher could not be shown (missing media) is
`unassigned` rather than hard; the paper's 64 + 456 + 619 = 1,139 of 1,142 leaves 3 such items.

Table 9: accuracy, invalid-format rate (IFE) and logic-error rate per model, each a share of all
items (see `avrt.evaluation.scoring`); missing media and missing predictions make up the rest.

Numbers are percentages with one decimal, rounded half up as in Table 3. Notes name the input
protocol of each row (and of each teacher), marked where the rows differ.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from avrt.core.datasets import DIFFICULTY_SUBSETS, difficulty_of
from avrt.evaluation.difficulty import count_teachers_correct, difficulty_subsets
from avrt.evaluation.registry import BENCHMARKS
from avrt.evaluation.scoring import BenchmarkResult
from avrt.core.rows import InputProtocol
from avrt.evaluation.tables import MISSING, protocol_label, protocol_notes, round_percent
from avrt.core.io import atomic_path

SUBSET_HEADERS = {"easy": "Easy", "medium": "Med", "hard": "Hard"}


def _percent(value: float | None) -> float | None:
    return None if value is None else round_percent(100 * value)


def _text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _name(model: str) -> str:
    return model.replace("|", "\\|")  # a bar in a model name would split the row


def _display(benchmark: str) -> str:
    spec = BENCHMARKS.get(benchmark)
    return spec.display_name if spec else benchmark


def _check_benchmark(results: Mapping[str, BenchmarkResult], benchmark: str, what: str) -> None:
    wrong = {m: r.benchmark for m, r in results.items() if r.benchmark != benchmark}
    if wrong:
        raise ValueError(f"{what} must be results on {benchmark}, got {wrong}")


# ---- Table 9 --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table9:
    benchmark: str
    rows: tuple[tuple[str, dict], ...]  # (model, metrics in percent and n)
    protocols: dict[str, InputProtocol | None] = field(default_factory=dict)  # model -> its input protocol


def build_table9(results: Mapping[str, BenchmarkResult], benchmark: str) -> Table9:
    """`results`: model -> its unmasked result on `benchmark`, in row order."""
    _check_benchmark(results, benchmark, "Table 9 rows")
    rows = []
    for model, result in results.items():
        m = result.metrics
        keys = ("accuracy", "ife_rate", "logic_error_rate", "missing_media_rate", "no_prediction_rate")
        rows.append((model, {"n": m["n"], **{k: _percent(m[k]) for k in keys}}))
    return Table9(benchmark, tuple(rows), {model: r.protocol for model, r in results.items()})


def table9_markdown(table: Table9) -> str:
    lines = ["| Model | Acc. (%) ↑ | IFE (%) ↓ | Logic Err (%) ↓ |", "|---|---:|---:|---:|"]
    for model, m in table.rows:
        cells = (m["accuracy"], m["ife_rate"], m["logic_error_rate"])
        lines.append(f"| {_name(model)} | " + " | ".join(map(_text, cells)) + " |")
    notes = [
        f"Error analysis on {_display(table.benchmark)}, strict scoring; every rate is a share of all items. "
        "IFE: no usable `<answer>` letter; Logic Err: a well-formed wrong answer."
    ]
    if not table.rows:
        notes.append(f"No model was evaluated on {table.benchmark}.")
    notes += protocol_notes({_display(table.benchmark): table.protocols} if table.protocols else {})[0]
    for model, m in table.rows:
        rest = [f"{m[k]:.1f}% {label}" for k, label in (("missing_media_rate", "missing media"),
                                                         ("no_prediction_rate", "no prediction")) if m[k]]
        if rest:
            notes.append(f"{model} (n={m['n']}): also " + ", ".join(rest) + ".")
    return "\n".join(lines + [""] + notes) + "\n"


def table9_csv(table: Table9) -> str:
    keys = ("accuracy", "ife_rate", "logic_error_rate", "missing_media_rate", "no_prediction_rate")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "benchmark", "n", *keys])
    for model, m in table.rows:
        writer.writerow([model, table.benchmark, m["n"], *("" if m[k] is None else f"{m[k]:.1f}" for k in keys)])
    return buffer.getvalue()


# ---- Table 8 --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table8:
    benchmark: str
    teachers: tuple[tuple[str, float | None], ...]  # (teacher, its accuracy in percent)
    counts: dict[str, int]  # subset (and "unassigned") -> items
    rows: tuple[tuple[str, dict], ...]  # (model, subset -> {n, correct, accuracy in percent})
    protocols: dict[str, InputProtocol | None] = field(default_factory=dict)  # model -> its input protocol
    teacher_protocols: dict[str, InputProtocol | None] = field(default_factory=dict)  # teacher -> its input protocol


def teacher_counts(teacher_results: Mapping[str, BenchmarkResult]) -> dict[str, int]:
    """id -> teachers right, leaving out items some teacher was not shown (missing media)."""
    counts = count_teachers_correct(list(teacher_results.values()))
    not_shown = {i.id for r in teacher_results.values() for i in r.items if i.outcome == "missing_media"}
    return {k: v for k, v in counts.items() if k not in not_shown}


def build_table8(results: Mapping[str, BenchmarkResult], teacher_results: Mapping[str, BenchmarkResult],
                 benchmark: str) -> Table8:
    """`results`: model -> its unmasked result on `benchmark`; `teacher_results`: teacher -> its result."""
    if not teacher_results:
        raise ValueError("Table 8 needs at least one teacher's results")
    _check_benchmark(results, benchmark, "Table 8 rows")
    _check_benchmark(teacher_results, benchmark, "teacher results")
    n_teachers = len(teacher_results)
    n_correct = teacher_counts(teacher_results)
    subset_names = [difficulty_of(k, n_teachers) for k in n_correct.values()]
    counts = {s: subset_names.count(s) for s in DIFFICULTY_SUBSETS}
    counts["unassigned"] = len({i.id for r in teacher_results.values() for i in r.items} - set(n_correct))
    rows = []
    for model, result in results.items():
        subsets = difficulty_subsets(result, n_correct, n_teachers=n_teachers)
        if {k: v["n"] for k, v in subsets.items()} != counts:
            raise ValueError(f"{model}: its {benchmark} items are not the teachers' items")
        rows.append((model, {s: {**subsets[s], "accuracy": _percent(subsets[s]["accuracy"])} for s in DIFFICULTY_SUBSETS}))
    teachers = tuple((t, _percent(r.accuracy())) for t, r in teacher_results.items())
    return Table8(benchmark, teachers, counts, tuple(rows), {m: r.protocol for m, r in results.items()},
                  {t: r.protocol for t, r in teacher_results.items()})


def table8_markdown(table: Table8) -> str:
    headers = [f"{SUBSET_HEADERS[s]} (n={table.counts[s]})" for s in DIFFICULTY_SUBSETS]
    lines = ["| Model | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(DIFFICULTY_SUBSETS)]
    for model, subsets in table.rows:
        lines.append(f"| {_name(model)} | " + " | ".join(_text(subsets[s]["accuracy"]) for s in DIFFICULTY_SUBSETS) + " |")
    names = ", ".join(t for t, _ in table.teachers)
    notes = [
        f"Accuracy (%), strict scoring, on {_display(table.benchmark)} subsets by how many of the teachers "
        f"({names}) answered an item correctly: easy all, medium some, hard none.",
        "Teacher accuracy (teacher answer parser; an unreadable answer is wrong): "
        + ", ".join(f"{t} {_text(a)}%" for t, a in table.teachers) + ".",
    ]
    if table.counts.get("unassigned"):
        notes.append(f"{table.counts['unassigned']} item(s) unassigned: a teacher could not be shown their media.")
    notes += protocol_notes({_display(table.benchmark): table.protocols} if table.protocols else {})[0]
    if table.teacher_protocols:  # each teacher takes only its own modality of its cut
        notes.append("Teachers' input protocols: " + "; ".join(
            f"{t}: {protocol_label(p)}" for t, p in table.teacher_protocols.items()) + ".")
    return "\n".join(lines + [""] + notes) + "\n"


def table8_csv(table: Table8) -> str:
    header = ["model", "benchmark"]
    for s in DIFFICULTY_SUBSETS:
        header += [f"{s}_n", f"{s}_correct", s]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header + ["unassigned_n"])
    for model, subsets in table.rows:
        row = [model, table.benchmark]
        for s in DIFFICULTY_SUBSETS:
            acc = subsets[s]["accuracy"]
            row += [subsets[s]["n"], subsets[s]["correct"], "" if acc is None else f"{acc:.1f}"]
        writer.writerow(row + [table.counts.get("unassigned", 0)])
    return buffer.getvalue()


def write_table(markdown: str, csv_text: str, out_dir: str | Path, stem: str) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt, text in (("md", markdown), ("csv", csv_text)):
        paths[fmt] = out_dir / f"{stem}.{fmt}"
        with atomic_path(paths[fmt]) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return paths
