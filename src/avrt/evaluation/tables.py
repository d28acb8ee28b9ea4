"""The paper's Table 3 layout: per-benchmark accuracy, AV and A averages, deltas against a base.

Columns: AVQA | DailyOmni | OmniBench | Video-MME | Riva-S | Riva-A | AV Avg. | MMAR | MMAU |
A Avg. AVQA is in-domain (the training data comes from its train split) and is not averaged.
Scores go in as accuracies in [0, 1] and come out as percentages with one decimal, rounded half
up (the paper's 63.65 -> 63.7). Averages are taken over unrounded scores; a delta is the
difference of the two printed values, so the table adds up as read.

An average is only computed when the model has every benchmark of that average; otherwise the
cell is empty and marked, with a note naming what is missing.

Each number names its input protocol (`avrt.evaluation.protocols`): a note per protocol lists the
columns it cut, and a column whose rows were cut by different protocols is marked, with a note
naming each row's protocol. The CSV has each cell's protocol beside it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from avrt.core.rows import InputProtocol
from avrt.evaluation.registry import BENCHMARKS
from avrt.evaluation.scoring import BenchmarkResult

MISSING = "–"
MISSING_MARK = "*"
MIXED_MARK = "‡"  # a column whose rows were cut by different input protocols
UNRECORDED = "protocol not recorded"


def protocol_label(protocol: InputProtocol | None) -> str:
    return f"{protocol.name} ({protocol.summary})" if protocol else UNRECORDED


def protocol_key(protocol: InputProtocol | None) -> tuple[str, str] | None:
    """What makes two protocols the same: name and cut (a summary leaves details out)."""
    return (protocol.name, protocol.digest) if protocol else None


def protocol_notes(by_label: Mapping[str, Mapping[str, InputProtocol | None]]) -> tuple[list[str], set[str]]:
    """Notes naming the input protocols, for `by_label`: a table label (column header, benchmark)
    -> row (model) -> its protocol. One note per protocol lists the labels it cut alone; a label
    whose rows differ gets a note per row. Returns the notes and the labels with mixed protocols."""
    uniform: dict[tuple[str, str] | None, tuple[InputProtocol | None, list[str]]] = {}
    notes, mixed = [], set()
    for label, rows in by_label.items():
        keys = {protocol_key(p) for p in rows.values()}
        if len(keys) == 1:
            protocol = next(iter(rows.values()))
            uniform.setdefault(protocol_key(protocol), (protocol, []))[1].append(label)
        elif keys:
            mixed.add(label)
            parts = "; ".join(f"{row}: {protocol_label(p)}" for row, p in rows.items())
            notes.append(f"{MIXED_MARK} {label}: rows cut by different input protocols ({parts}).")
    lead = [f"Input protocol {protocol_label(p)}: {', '.join(labels)}." for p, labels in uniform.values()]
    return lead + notes, mixed


@dataclass(frozen=True)
class Column:
    key: str  # a benchmark name, or "av_avg" / "a_avg"
    header: str
    members: tuple[str, ...] = ()  # the benchmarks an average is taken over


@dataclass(frozen=True)
class Cell:
    value: float | None  # percent, one decimal
    delta: float | None = None  # against the row's base model
    missing: tuple[str, ...] = ()  # for an average: members the model has no score for


@dataclass(frozen=True)
class Table3:
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, str | None, dict[str, Cell]], ...]  # (model, base model, key -> cell)
    score_column: str  # "strict" or "official": which scoring the numbers are
    protocols: Mapping[str, Mapping[str, InputProtocol | None]] = field(default_factory=dict)  # model -> benchmark -> its protocol

    def _protocol_notes(self) -> tuple[list[str], set[str]]:
        by_header = {}
        for column in self.columns:
            rows = {m: p[column.key] for m, p in self.protocols.items() if column.key in p}
            if rows:
                by_header[column.header] = rows
        return protocol_notes(by_header)

    def header(self, column: Column) -> str:
        return column.header + (MIXED_MARK if column.header in self._protocol_notes()[1] else "")

    def notes(self) -> list[str]:
        notes = [
            f"Accuracy (%), {self.score_column} scoring. AVQA is in-domain and excluded from the averages."
        ]
        notes += self._protocol_notes()[0]
        for model, _, cells in self.rows:
            for column in self.columns:
                if cells[column.key].missing:
                    headers = ", ".join(BENCHMARKS[m].display_name for m in cells[column.key].missing)
                    notes.append(f"{MISSING_MARK} {model}: {column.header} not computed, missing {headers}.")
        return notes


def _columns() -> tuple[Column, ...]:
    def group(name: str) -> list[str]:
        return [benchmark for benchmark, spec in BENCHMARKS.items() if spec.group == name]

    def plain(names: list[str]) -> list[Column]:
        return [Column(n, BENCHMARKS[n].display_name) for n in names]

    audio_visual, audio = group("audio_visual"), group("audio")
    return (
        *plain(group("in_domain") + audio_visual),
        Column("av_avg", "AV Avg.", tuple(audio_visual)),
        *plain(audio),
        Column("a_avg", "A Avg.", tuple(audio)),
    )


def round_percent(value: float) -> float:
    # Through a 6-decimal string first, so that 63.649999999 (a float's 63.65) rounds up too.
    return float(Decimal(f"{value:.6f}").quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _cell_values(scores: Mapping[str, float | None], columns: tuple[Column, ...]) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for column in columns:
        if not column.members:
            value = scores.get(column.key)
            cells[column.key] = Cell(None if value is None else round_percent(100 * value))
            continue
        missing = tuple(m for m in column.members if scores.get(m) is None)
        mean = None if missing else sum(scores[m] for m in column.members) / len(column.members)
        cells[column.key] = Cell(None if mean is None else round_percent(100 * mean), missing=missing)
    return cells


def build_table3(
    scores: Mapping[str, Mapping[str, float | None]],
    base_of: Mapping[str, str] | None = None,
    *,
    score_column: str = "strict",
    protocols: Mapping[str, Mapping[str, InputProtocol | None]] | None = None,
) -> Table3:
    """Rows in the order of `scores` (model -> benchmark name -> accuracy in [0, 1] or None).

    `base_of` maps a model to the base model its deltas are taken against (e.g. each AVRT
    student to its Qwen2.5-Omni of the same size). `protocols` (model -> benchmark -> input
    protocol) says how each score's items were cut.
    """
    if score_column not in ("strict", "official"):
        raise ValueError(f"score_column must be 'strict' or 'official', got {score_column!r}")
    base_of = dict(base_of or {})
    columns = _columns()
    for model, per_benchmark in scores.items():
        shown = [c.key for c in columns if not c.members]
        unknown = sorted(set(per_benchmark) - set(shown))
        if unknown:
            raise ValueError(f"{model}: benchmark(s) {unknown} are not in Table 3, which shows {shown}")
        bad = {k: v for k, v in per_benchmark.items() if v is not None and not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"{model}: accuracies must be in [0, 1], got {bad}")
    for model, base in base_of.items():
        if model not in scores or base not in scores:
            raise ValueError(f"base_of: {model!r} -> {base!r} names a model without scores")
    plain = {model: _cell_values(per_benchmark, columns) for model, per_benchmark in scores.items()}

    def with_delta(cell: Cell, base_cell: Cell) -> Cell:
        if cell.value is None or base_cell.value is None:
            return cell
        return Cell(cell.value, round_percent(cell.value - base_cell.value), cell.missing)

    rows = []
    for model, cells in plain.items():
        base = base_of.get(model)
        if base is not None:
            cells = {key: with_delta(cell, plain[base][key]) for key, cell in cells.items()}
        rows.append((model, base, cells))
    return Table3(columns, tuple(rows), score_column, dict(protocols or {}))


def scores_from_results(
    results_by_model: Mapping[str, Iterable[BenchmarkResult]], column: str = "strict"
) -> dict[str, dict[str, float | None]]:
    """model -> benchmark -> accuracy of `column`, for the benchmarks Table 3 shows."""
    shown = {name for name, spec in BENCHMARKS.items() if spec.group != "extra"}
    return {
        model: {r.benchmark: r.accuracy(column) for r in results if r.benchmark in shown}
        for model, results in results_by_model.items()
    }


def protocols_from_results(
    results_by_model: Mapping[str, Iterable[BenchmarkResult]],
) -> dict[str, dict[str, InputProtocol | None]]:
    """model -> benchmark -> the input protocol of its result, for the benchmarks Table 3 shows."""
    shown = {name for name, spec in BENCHMARKS.items() if spec.group != "extra"}
    return {model: {r.benchmark: r.protocol for r in results if r.benchmark in shown}
            for model, results in results_by_model.items()}


def _text(cell: Cell, *, latex: bool = False) -> str:
    if cell.value is None:
        if not cell.missing:
            return "--" if latex else MISSING
        return f"--$^{MISSING_MARK}$" if latex else f"{MISSING}{MISSING_MARK}"
    if cell.delta is None:
        return f"{cell.value:.1f}"
    delta = f"{cell.delta:+.1f}"
    return f"{cell.value:.1f}\\,{{\\scriptsize({delta})}}" if latex else f"{cell.value:.1f} ({delta})"


def to_markdown(table: Table3) -> str:
    lines = [
        "| Model | " + " | ".join(table.header(c) for c in table.columns) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for model, _, cells in table.rows:
        name = model.replace("|", "\\|")  # a bar in a model name would split the row
        lines.append(f"| {name} | " + " | ".join(_text(cells[c.key]) for c in table.columns) + " |")
    return "\n".join(lines + [""] + table.notes()) + "\n"


def to_csv(table: Table3) -> str:
    """One row per model: each column's value and delta, and for averages the missing members,
    for benchmarks the input protocol."""
    header = ["model", "base"]
    for column in table.columns:
        header += [column.key, f"{column.key}_delta"] + [f"{column.key}_missing" if column.members else f"{column.key}_protocol"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for model, base, cells in table.rows:
        row = [model, base or ""]
        for column in table.columns:
            cell = cells[column.key]
            row.append("" if cell.value is None else f"{cell.value:.1f}")
            row.append("" if cell.delta is None else f"{cell.delta:+.1f}")
            if column.members:
                row.append(";".join(cell.missing))
            else:
                protocol = table.protocols.get(model, {}).get(column.key)
                row.append(protocol.name if protocol else "")
        writer.writerow(row)
    return buffer.getvalue()


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _latex_text(text: str) -> str:
    return _latex_escape(text).replace(MIXED_MARK, "$^{\\ddagger}$")


def to_latex(table: Table3) -> str:
    """A tabular (needs the booktabs package) with the notes as full-width rows under it."""
    lines = [
        f"\\begin{{tabular}}{{l{'r' * len(table.columns)}}}",
        "\\toprule",
        "Model & " + " & ".join(_latex_text(table.header(c)) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for model, _, cells in table.rows:
        values = " & ".join(_text(cells[c.key], latex=True) for c in table.columns)
        lines.append(f"{_latex_escape(model)} & {values} \\\\")
    lines.append("\\bottomrule")
    for note in table.notes():
        lines.append(f"\\multicolumn{{{len(table.columns) + 1}}}{{l}}{{\\footnotesize {_latex_text(note)}}} \\\\")
    lines.append("\\end{tabular}")
    return "\n".join(lines) + "\n"


def plot_table3(table: Table3, path: str | Path) -> Path:
    """Grouped bars, one group per column and one bar per model; missing values have no bar."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on cluster nodes
    import matplotlib.pyplot as plt

    n_models = max(len(table.rows), 1)
    width = 0.8 / n_models
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(table.columns)), 4.5), layout="constrained")
    for i, (model, _, cells) in enumerate(table.rows):
        xs = [j + (i - (n_models - 1) / 2) * width for j in range(len(table.columns))]
        present = [(x, cells[c.key].value) for x, c in zip(xs, table.columns) if cells[c.key].value is not None]
        ax.bar([x for x, _ in present], [v for _, v in present], width, label=model)
    ax.set_xticks(range(len(table.columns)), [table.header(c) for c in table.columns], rotation=30, ha="right")
    ax.set_ylabel(f"accuracy (%), {table.score_column}")
    ax.set_ylim(0, 100)
    fig.legend(loc="outside upper center", fontsize="small", ncols=min(n_models, 4))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_formats(table, out_dir: str | Path, stem: str, renderers: dict, plot) -> dict[str, Path]:
    """Write `<stem>.<format>` for each text renderer and `<stem>.png` with `plot`; returns them by format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt, render in renderers.items():
        paths[fmt] = out_dir / f"{stem}.{fmt}"
        paths[fmt].write_text(render(table), encoding="utf-8")
    paths["png"] = plot(table, out_dir / f"{stem}.png")
    return paths


def write_table3(table: Table3, out_dir: str | Path, stem: str = "table3") -> dict[str, Path]:
    """Write `<stem>.md`, `.csv`, `.tex` and `.png` into `out_dir`; returns them by format."""
    return write_formats(table, out_dir, stem, {"md": to_markdown, "csv": to_csv, "tex": to_latex}, plot_table3)
