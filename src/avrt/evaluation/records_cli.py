"""Read one benchmark's official annotation file into records JSONL plus a load report.

    avrt eval-records --benchmark omnibench --annotations batch-5_1142_20240817.jsonl \\
        --media-dir mm_data --output records.jsonl --report load_report.json
"""

from __future__ import annotations

from avrt.evaluation.records import write_records
from avrt.evaluation.registry import BENCHMARKS, load_benchmark
from avrt.core.io import write_json


def add_arguments(parser) -> None:
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--annotations", required=True, help="the benchmark's official annotation file")
    parser.add_argument("--media-dir", required=True, help="directory the annotation's media paths are relative to")
    parser.add_argument("--output", required=True, help="records JSONL to write")
    parser.add_argument("--report", required=True, help="JSON report of missing media and malformed rows")
    parser.add_argument("--no-media-check", action="store_true", help="resolve media paths without checking them")


def run(args) -> int:
    records, report = load_benchmark(
        args.benchmark, args.annotations, args.media_dir, check_media=not args.no_media_check
    )
    write_records(args.output, records)
    write_json(args.report, report.to_dict())
    return 0
