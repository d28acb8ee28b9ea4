"""OmniBench (image + audio): `dataset/batch-5_1142_20240817.jsonl` of the official repository.

Rows: `index`, `task type`, `audio type` (speech / sound event / music), `question`, `options`
(4 texts; a single "A. .. B. .. C. .. D. .." string is split the way the official scorer does),
`answer` (option text), `audio_path`, `image_path`. Media follow the repository's `mm_data/`
layout: `<media_dir>/audio/<audio_path>` and `<media_dir>/image/<image_path>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from avrt.evaluation.adapters.common import (
    MediaRoot,
    RowError,
    gold_from_text,
    id_field,
    parse_rows,
    read_jsonl_rows,
    require,
    string_list,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

N_OPTIONS = 4
_OPTIONS_STRING = re.compile(r"(A\..*?)(B\..*?)(C\..*?)(D\..*)", re.DOTALL)


def _options(value) -> tuple[str, ...]:
    if isinstance(value, str):
        m = _OPTIONS_STRING.search(value)
        if not m:
            raise RowError(f"'options' string is not 'A. .. B. .. C. .. D. ..': {value!r}")
        return tuple(part.strip()[2:].strip() for part in m.groups())
    options = tuple(string_list(value, "options"))
    if len(options) != N_OPTIONS:
        raise RowError(f"'options' has {len(options)} entries, expected {N_OPTIONS}")
    return options


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        question, audio_path, image_path = require(row, "question", "audio_path", "image_path")
        options = _options(row.get("options"))
        gold_letter, gold_text = gold_from_text(options, row.get("answer"))
        return BenchmarkRecord(
            id=rid,
            benchmark="omnibench",
            question=question.strip(),
            options=options,
            gold_letter=gold_letter,
            gold_text=gold_text,
            image=media.path(f"image/{image_path}"),
            audio=media.path(f"audio/{audio_path}"),
            categories={
                "task_type": str(row.get("task type", "")),
                # The official scorer groups by the stripped, lower-cased audio type.
                "audio_type": str(row.get("audio type", "")).strip().lower(),
            },
        )

    return parse_rows(read_jsonl_rows(annotations), id_field("index"), parse)
