"""Benchmark records on disk, and the report of what loading a benchmark left out.

`BenchmarkRecord` (avrt.core.rows) keeps everything scoring needs (options, gold letter and text,
categories) and what inference needs (question, media paths).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from avrt.core.rows import BenchmarkRecord, read_rows, write_rows

__all__ = ["BenchmarkRecord", "LoadReport", "MalformedRow", "read_records", "write_records"]


@dataclass(frozen=True)
class MalformedRow:
    """An annotation row that cannot become a record (no usable gold answer, broken fields)."""

    id: str  # the row's own id where it has one, else "row <index>"
    reason: str


@dataclass
class LoadReport:
    """What loading one benchmark kept out of inference and why.

    `missing_media` items are still records (scored as wrong); `malformed` rows are not records,
    since they have no gold answer to score against.
    """

    benchmark: str
    annotations: str
    n_rows: int = 0
    n_records: int = 0
    missing_media: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    malformed: list[MalformedRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "annotations": self.annotations,
            "n_rows": self.n_rows,
            "n_records": self.n_records,
            "n_missing_media": len(self.missing_media),
            "n_malformed": len(self.malformed),
            "missing_media": [{"id": i, "reason": r} for i, r in self.missing_media],
            "malformed": [dataclasses.asdict(m) for m in self.malformed],
        }


def write_records(path: str | Path, records: Iterable[BenchmarkRecord]) -> int:
    return write_rows(path, records)


def read_records(path: str | Path) -> list[BenchmarkRecord]:
    return read_rows(path, BenchmarkRecord)
