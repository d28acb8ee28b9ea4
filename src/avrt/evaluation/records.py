"""The one record every benchmark is normalised to, and the report of what loading left out.

A record keeps everything scoring needs (options, gold letter and text, categories) and what
inference needs (question, media paths). Multiple-choice options are stored without their
letter prefixes ("A. ..."); letters are positional (A = first option). Open-ended items
(MUSIC-AVQA) have no options and no gold letter; `gold_text` is then the gold answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from avrt.core.answers import option_letter
from avrt.core.io import read_jsonl, write_jsonl


@dataclass(frozen=True)
class BenchmarkRecord:
    id: str
    benchmark: str
    question: str
    options: tuple[str, ...]
    gold_letter: str | None  # None for open-ended items
    gold_text: str  # the gold option's text, or the gold answer of an open-ended item
    video: str | None = None  # the video's own audio track is its audio unless `audio` is set
    image: str | None = None
    audio: str | None = None
    categories: dict[str, str] = field(default_factory=dict)
    attrition: str | None = None  # why the item cannot be shown to a model (missing media)

    @property
    def is_open_ended(self) -> bool:
        return not self.options

    @property
    def option_letters(self) -> tuple[str, ...]:
        return tuple(option_letter(i) for i in range(len(self.options)))

    @property
    def accepted_letters(self) -> frozenset[str]:
        """Letters whose option text is the gold text.

        More than one when a benchmark repeats the gold option (16 MMAU test-mini items, such as
        ['one', 'six', 'four', 'four'] with gold 'four'); picking either copy is the gold answer.
        """
        if self.is_open_ended:
            return frozenset()
        same = {option_letter(i) for i, text in enumerate(self.options) if text == self.gold_text}
        return frozenset(same | {self.gold_letter})

    def media_paths(self) -> dict[str, str]:
        return {kind: path for kind in ("video", "image", "audio") if (path := getattr(self, kind))}

    def to_dict(self) -> dict:
        row = dataclasses.asdict(self)
        row["options"] = list(self.options)
        return row

    @classmethod
    def from_dict(cls, row: dict) -> BenchmarkRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(row) - names
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = required - set(row)
        if unknown or missing:
            raise ValueError(
                f"record {row.get('id')!r}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
            )
        return cls(**{**row, "options": tuple(row["options"])})


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
    return write_jsonl(path, (r.to_dict() for r in records))


def read_records(path: str | Path) -> list[BenchmarkRecord]:
    return [BenchmarkRecord.from_dict(row) for row in read_jsonl(path)]
