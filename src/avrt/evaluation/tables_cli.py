"""Result tables of an evaluation run: per benchmark, the paper's Tables 3, 4, 8 and 9.

    avrt eval-tables --results base:omnibench:both=result.json ... --base base --out-dir tables/ \
        [--teacher-results visual=teacher.result.json audio=... --difficulty-benchmark omnibench]

Writes `per_benchmark.csv` (every model x benchmark x mask with its accuracies and error
rates), `table3.{md,csv,tex,png}` (unmasked runs, deltas against --base), `table4.md`
(accuracy per modality mask, the paper's modality-removal experiment), `table9.{md,csv}` (error
analysis on --error-benchmark) and, with --teacher-results, `table8.{md,csv}` (accuracy on the
difficulty subsets of --difficulty-benchmark). Every table names the input protocol of each
number (the one its result file records): per_benchmark.csv in its own columns, the others in
notes, with a mark where one column mixes protocols.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from avrt.evaluation.analysis_tables import (
    build_table8,
    build_table9,
    table8_csv,
    table8_markdown,
    table9_csv,
    table9_markdown,
    write_table,
)
from avrt.evaluation.scoring import BenchmarkResult
from avrt.evaluation.tables import (
    build_table3,
    protocol_notes,
    protocols_from_results,
    scores_from_results,
    write_table3,
)
from avrt.core.io import atomic_path

ERROR_BENCHMARK = "omnibench"  # Table 9's benchmark in the paper
METRICS = ("n", "accuracy", "official_accuracy", "ife_rate", "logic_error_rate", "missing_media_rate",
           "no_prediction_rate")


def parse_results(items: list[str]) -> list[tuple[str, str, str, Path]]:
    out = []
    for item in items:
        key, sep, path = item.partition("=")
        parts = key.split(":")
        if not sep or len(parts) != 3:
            raise SystemExit(f"--results expects MODEL:BENCHMARK:MASK=PATH, got {item!r}")
        out.append((*parts, Path(path)))
    return out


def parse_teacher_results(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or name in out:
            raise SystemExit(f"--teacher-results expects distinct TEACHER=PATH, got {item!r}")
        out[name] = Path(path)
    return out


def _load(path: Path) -> BenchmarkResult:
    return BenchmarkResult.from_dict(json.loads(Path(path).read_text()))


def write_tables(results: list[tuple[str, str, str, Path]], base: str | None, out_dir: str | Path,
                 error_benchmark: str = ERROR_BENCHMARK, teacher_results: dict[str, Path] | None = None,
                 difficulty_benchmark: str | None = None) -> dict:
    """Write the tables; Table 8 when `teacher_results` (on `difficulty_benchmark`) are given."""
    if teacher_results and not difficulty_benchmark:
        raise ValueError("teacher results for Table 8 need the benchmark they answered (evaluation.difficulty.benchmark)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = [(m, b, mask, _load(p)) for m, b, mask, p in results]
    with atomic_path(out_dir / "per_benchmark.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "benchmark", "mask", "protocol", "protocol_digest", "protocol_summary",
                         "official_rule", *METRICS])
        for model, bench, mask, result in loaded:
            m, p = result.metrics, result.protocol
            writer.writerow([model, bench, mask, p.name if p else "", p.digest if p else "", p.summary if p else "",
                             result.official_rule, *(m[k] for k in METRICS)])
    unmasked: dict[str, list[BenchmarkResult]] = defaultdict(list)
    for model, _, mask, result in loaded:
        if mask == "both":
            unmasked[model].append(result)
    scores = scores_from_results(unmasked)
    base_of = {m: base for m in scores if base and m != base and base in scores}
    paths = write_table3(build_table3(scores, base_of, protocols=protocols_from_results(unmasked)), out_dir)
    masked = [(m, b, mask, r) for m, b, mask, r in loaded if any(x[1] == b and x[2] != "both" for x in loaded)]
    table4 = out_dir / "table4.md"
    lines = ["| model | benchmark | both | video only (silent audio) | audio only (blank frames) |", "|---|---|---|---|---|"]
    by_key = {(m, b, mask): r.accuracy() for m, b, mask, r in masked}
    for model, bench in sorted({(m, b) for m, b, _, _ in masked}):
        cells = [by_key.get((model, bench, k)) for k in ("both", "video_only", "audio_only")]
        lines.append(f"| {model} | {bench} | " + " | ".join("–" if c is None else f"{100 * c:.1f}" for c in cells) + " |")
    # the masked runs of a benchmark are compared with its unmasked one: all under one protocol
    notes, _ = protocol_notes({b: {f"{m} {mask}": r.protocol for m, bb, mask, r in masked if bb == b}
                               for b in sorted({b for _, b, _, _ in masked})})
    table4.write_text("\n".join(lines + ([""] + notes if notes else [])) + "\n")
    written = {**{k: str(v) for k, v in paths.items()}, "table4": str(table4),
               "per_benchmark": str(out_dir / "per_benchmark.csv")}

    def unmasked_on(bench: str) -> dict[str, BenchmarkResult]:
        return {m: r for m, b, mask, r in loaded if b == bench and mask == "both"}

    table9 = build_table9(unmasked_on(error_benchmark), error_benchmark)
    paths9 = write_table(table9_markdown(table9), table9_csv(table9), out_dir, "table9")
    written.update(table9=str(paths9["md"]), table9_csv=str(paths9["csv"]))
    if teacher_results:
        teachers = {t: _load(p) for t, p in teacher_results.items()}
        table8 = build_table8(unmasked_on(difficulty_benchmark), teachers, difficulty_benchmark)
        paths8 = write_table(table8_markdown(table8), table8_csv(table8), out_dir, "table8")
        written.update(table8=str(paths8["md"]), table8_csv=str(paths8["csv"]))
    return written


def add_arguments(parser) -> None:
    parser.add_argument("--results", nargs="+", required=True, metavar="MODEL:BENCHMARK:MASK=PATH")
    parser.add_argument("--base", default=None, help="model the deltas are taken against")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--error-benchmark", default=ERROR_BENCHMARK, help="benchmark of Table 9 (the paper: OmniBench)")
    parser.add_argument("--teacher-results", nargs="+", default=[], metavar="TEACHER=PATH",
                        help="each teacher's result on --difficulty-benchmark: writes Table 8")
    parser.add_argument("--difficulty-benchmark",
                        help="benchmark the --teacher-results answered (evaluation.difficulty.benchmark); Table 8's")


def run(args) -> int:
    if args.teacher_results and not args.difficulty_benchmark:
        raise SystemExit("--teacher-results needs --difficulty-benchmark (the benchmark the teachers answered)")
    write_tables(parse_results(args.results), args.base, args.out_dir, args.error_benchmark,
                 parse_teacher_results(args.teacher_results), args.difficulty_benchmark)
    return 0
