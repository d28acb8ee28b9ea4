"""Evaluation: official benchmark files -> records, model outputs -> scores -> the paper's tables.

    records, report = load_benchmark("omnibench", annotations, media_dir)
    result = score(records, {"<record id>": "<think>..</think><answer>B</answer>", ...})
    result.accuracy("strict"), result.metrics["ife_rate"], result.by_category()
"""

from avrt.evaluation.records import BenchmarkRecord, LoadReport, MalformedRow, read_records, write_records
from avrt.evaluation.registry import BENCHMARKS, get_benchmark, load_benchmark
from avrt.evaluation.scoring import BenchmarkResult, read_predictions, score

__all__ = [
    "BENCHMARKS",
    "BenchmarkRecord",
    "BenchmarkResult",
    "LoadReport",
    "MalformedRow",
    "get_benchmark",
    "load_benchmark",
    "read_predictions",
    "read_records",
    "score",
    "write_records",
]
