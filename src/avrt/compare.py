"""Side-by-side ablation table of several runs, in the layout of the paper's Tables 4-7.

    avrt compare results/avrt-3b:base results/rl-only results/avrt-3b --benchmarks omnibench --out DIR

One row per run (`RUN_DIR[:TAG]`: the evaluation tag whose results it shows, `--tag` when left out),
one column per benchmark and modality mask (OmniBench (A) is the audio_only run, (V) video_only),
from each run's result files, `<run>/eval/<tag>/<benchmark>/<mask>.result.json` (`avrt eval-score`).
Accuracies are percentages with one decimal, rounded half up as in Table 3; a delta is the
difference of a row's printed value and the first row's. A run without a result for a column shows
it as missing, never as 0. When runs' numbers for one column come from different input protocols
(a result file's `protocol`), the column is marked and a note names each row's protocol.

Writes <stem>.md, .csv, .tex and .png to --out.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from avrt.core.io import InputFileError, read_json
from avrt.core.rows import InputProtocol
from avrt.evaluation.registry import BENCHMARKS
from avrt.evaluation.tables import MISSING, MIXED_MARK, protocol_notes, round_percent

log = logging.getLogger(__name__)

MASKS = {"both": "", "audio_only": " (A)", "video_only": " (V)"}  # the paper's Mod. A / V; AV unmarked
TAG = re.compile(r"^[a-z0-9_]+$")  # evaluation tags (the schema's pattern)


@dataclass(frozen=True)
class Row:
    label: str
    run_dir: Path
    tag: str
    scores: dict[tuple[str, str], float | None]  # (benchmark, mask) -> percent; None: no accuracy
    protocols: dict[tuple[str, str], InputProtocol | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    columns: tuple[tuple[str, str], ...]  # (benchmark, mask)
    rows: tuple[Row, ...]
    score_column: str

    def header(self, column: tuple[str, str]) -> str:
        benchmark, mask = column
        spec = BENCHMARKS.get(benchmark)
        return (spec.display_name if spec else benchmark) + MASKS[mask]

    def value(self, row: Row, column: tuple[str, str]) -> float | None:
        return row.scores.get(column)

    def delta(self, row: Row, column: tuple[str, str]) -> float | None:
        first, value = self.value(self.rows[0], column), self.value(row, column)
        if row is self.rows[0] or first is None or value is None:
            return None
        return round(value - first, 1)

    def _protocols(self) -> tuple[list[str], set[str]]:
        by_header = {}
        for column in self.columns:
            rows = {r.label: r.protocols.get(column) for r in self.rows if column in r.scores}
            if rows:
                by_header[self.header(column)] = rows
        return protocol_notes(by_header)

    def mixed(self, column: tuple[str, str]) -> bool:
        return self.header(column) in self._protocols()[1]

    def notes(self) -> list[str]:
        first = self.rows[0]
        notes = [f"Accuracy (%), {self.score_column} scoring; deltas against {first.label} ({first.run_dir}, tag {first.tag})."]
        notes += self._protocols()[0]
        for row in self.rows:
            missing = [self.header(c) for c in self.columns if self.value(row, c) is None]
            if not row.scores:
                notes.append(f"{MISSING} {row.label}: no results of tag {row.tag} in {row.run_dir}.")
            elif missing:
                notes.append(f"{MISSING} {row.label}: no result for {', '.join(missing)}.")
        return notes


def parse_run(spec: str, default_tag: str) -> tuple[Path, str]:
    """`RUN_DIR[:TAG]` -> (run directory, tag)."""
    head, sep, tail = spec.rpartition(":")
    if sep and TAG.match(tail) and not Path(spec).exists():
        return Path(head), tail
    return Path(spec), default_tag


def read_row(run_dir: Path, tag: str, label: str, column: str, allow_missing: bool = False) -> Row:
    """The results of one run's tag, from its result files; with `allow_missing`, a run that has none
    (yet) is a row of missing cells."""
    tag_dir = run_dir / "eval" / tag
    if not tag_dir.is_dir():
        if allow_missing:
            log.warning("%s: no results of evaluation tag %r yet; its row shows as missing", run_dir, tag)
            return Row(label, run_dir, tag, {})
        raise InputFileError(f"{tag_dir}: no results of evaluation tag {tag!r} in run {run_dir}")
    scores, protocols = {}, {}
    for path in sorted(tag_dir.glob("*/*.result.json")):
        benchmark, mask = path.parent.name, path.name.removesuffix(".result.json")
        if mask not in MASKS:
            continue
        data = read_json(path)
        try:
            accuracy = data["metrics"]["accuracy" if column == "strict" else "official_accuracy"] if (
                column == "strict" or data["has_official"]) else None
            protocol = data.get("protocol")  # optional: older result files name none
            protocols[(benchmark, mask)] = (InputProtocol.from_dict(protocol, where=str(path)) if protocol else None)
        except (KeyError, TypeError, ValueError) as err:
            raise InputFileError(f"{path}: not a result file of `avrt eval-score` ({err!r})") from None
        scores[(benchmark, mask)] = None if accuracy is None else round_percent(100 * accuracy)
    return Row(label, run_dir, tag, scores, protocols)


def compare(runs: list[str], tag: str = "grpo", benchmarks: list[str] | None = None,
            column: str = "strict", allow_missing: bool = False) -> Comparison:
    if not runs:
        raise ValueError("no runs to compare")
    rows = []
    for spec in runs:
        run_dir, run_tag = parse_run(spec, tag)
        label = run_dir.name if run_tag == tag else f"{run_dir.name} ({run_tag})"
        rows.append(read_row(run_dir, run_tag, label, column, allow_missing))
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two rows would read the same: {labels}")
    unknown = sorted(set(benchmarks or ()) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"--benchmarks: {unknown} not registered benchmarks (known: {sorted(BENCHMARKS)})")
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    found = {c for r in rows for c in r.scores}
    if benchmarks:  # asked for: a column even where no run has it (all missing)
        found = {c for c in found if c[0] in benchmarks} | {(b, "both") for b in benchmarks}
    columns = sorted(found, key=lambda c: (order.get(c[0], len(order)), c[0], list(MASKS).index(c[1])))
    return Comparison(tuple(columns), tuple(rows), column)


# ---- rendering ---------------------------------------------------------------------------------
def _text(table: Comparison, row: Row, column: tuple[str, str], latex: bool = False) -> str:
    value, delta = table.value(row, column), table.delta(row, column)
    if value is None:
        return "--" if latex else MISSING
    if delta is None:
        return f"{value:.1f}"
    return f"{value:.1f}\\,{{\\scriptsize({delta:+.1f})}}" if latex else f"{value:.1f} ({delta:+.1f})"


def _header(table: Comparison, column: tuple[str, str]) -> str:
    return table.header(column) + (MIXED_MARK if table.mixed(column) else "")


def to_markdown(table: Comparison) -> str:
    lines = ["| Run | " + " | ".join(_header(table, c) for c in table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for row in table.rows:
        label = row.label.replace("|", "\\|")  # a bar would split the row
        lines.append(f"| {label} | " + " | ".join(_text(table, row, c) for c in table.columns) + " |")
    return "\n".join(lines + [""] + table.notes()) + "\n"


def _key(column: tuple[str, str]) -> str:
    return column[0] if column[1] == "both" else f"{column[0]}:{column[1]}"


def to_csv(table: Comparison) -> str:
    """One row per run: each column's value, delta and input protocol (empty where missing)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", "run_dir", "tag"] + [f"{_key(c)}{s}" for c in table.columns for s in ("", "_delta", "_protocol")])
    for row in table.rows:
        cells = []
        for c in table.columns:
            value, delta, protocol = table.value(row, c), table.delta(row, c), row.protocols.get(c)
            cells += ["" if value is None else f"{value:.1f}", "" if delta is None else f"{delta:+.1f}",
                      protocol.name if protocol else ""]
        writer.writerow([row.label, str(row.run_dir), row.tag] + cells)
    return buffer.getvalue()


_LATEX = {ch: f"\\{ch}" for ch in "&%$#_{}"} | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text).replace(MIXED_MARK, "$^{\\ddagger}$")


def to_latex(table: Comparison) -> str:
    """A booktabs tabular with the notes as full-width rows under it."""
    n = len(table.columns)
    lines = [f"\\begin{{tabular}}{{l{'r' * n}}}", "\\toprule",
             "Run & " + " & ".join(_latex(_header(table, c)) for c in table.columns) + " \\\\", "\\midrule"]
    for row in table.rows:
        lines.append(f"{_latex(row.label)} & " + " & ".join(_text(table, row, c, latex=True) for c in table.columns) + " \\\\")
    lines.append("\\bottomrule")
    lines += [f"\\multicolumn{{{n + 1}}}{{l}}{{\\footnotesize {_latex(note)}}} \\\\" for note in table.notes()]
    return "\n".join(lines + ["\\end{tabular}"]) + "\n"


def plot(table: Comparison, path: Path) -> Path:
    """Grouped bars, one group per column and one bar per run; a missing cell has no bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(table.rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(table.columns)), 4.5), layout="constrained")
    for i, row in enumerate(table.rows):
        bars = [(j + (i - (len(table.rows) - 1) / 2) * width, table.value(row, c)) for j, c in enumerate(table.columns)]
        present = [(x, v) for x, v in bars if v is not None]
        ax.bar([x for x, _ in present], [v for _, v in present], width, label=row.label)
    ax.set_xticks(range(len(table.columns)), [_header(table, c) for c in table.columns], rotation=30, ha="right")
    ax.set_ylabel(f"accuracy (%), {table.score_column}")
    ax.set_ylim(0, 100)
    fig.legend(loc="outside upper center", fontsize="small", ncols=min(len(table.rows), 4))
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_comparison(table: Comparison, out_dir: str | Path, stem: str = "compare") -> dict[str, Path]:
    from avrt.evaluation.tables import write_formats

    return write_formats(table, out_dir, stem, {"md": to_markdown, "csv": to_csv, "tex": to_latex}, plot)


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[:TAG]",
                        help="run folders (results/<run>), the first one the reference of the deltas; "
                             ":TAG picks that run's evaluation tag (e.g. results/avrt-3b:base)")
    parser.add_argument("--out", required=True, help="folder for <stem>.{md,csv,tex,png}")
    parser.add_argument("--tag", default="grpo", help="evaluation tag of a run given without :TAG (default: grpo)")
    parser.add_argument("--benchmarks", nargs="+", help="columns: these benchmarks only, in the paper's order "
                                                        "(default: every benchmark some run has)")
    parser.add_argument("--column", choices=("strict", "official"), default="strict", help="which scoring")
    parser.add_argument("--stem", default="compare", help="file name stem (default: compare)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a run without results of its tag is a row of missing cells, not an error "
                             "(the workflow's compare_runs: other runs may not have finished)")


def run(args) -> int:
    try:
        table = compare(args.runs, args.tag, args.benchmarks, args.column, args.allow_missing)
    except ValueError as err:
        raise InputFileError(str(err)) from None
    paths = write_comparison(table, args.out, args.stem)
    log.info("%d runs x %d columns: %s", len(table.rows), len(table.columns), paths["md"])
    return 0
