"""AVQA validation split (the in-domain benchmark): the official `val_qa.json` of AVQA.

Rows: `id`, `video_name` (VGGSound clip, e.g. `-HG3Omg_89c_000030`), `question_text`,
`multi_choice` (4 option texts), `answer` (0-based index), `question_type`, `question_relation`.
Clips are `<media_dir>/<video_name>.mp4`, the layout the data stage writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avrt.answers import option_letter
from avrt.evaluation.adapters.common import (
    MediaRoot,
    RowError,
    id_field,
    parse_rows,
    read_json_list,
    require,
    string_list,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

N_OPTIONS = 4


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        video_name, question = require(row, "video_name", "question_text")
        options = tuple(string_list(row.get("multi_choice"), "multi_choice"))
        if len(options) != N_OPTIONS:
            raise RowError(f"'multi_choice' has {len(options)} options, expected {N_OPTIONS}")
        answer = row.get("answer")
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < N_OPTIONS:
            raise RowError(f"'answer' must be an option index 0-{N_OPTIONS - 1}, got {answer!r}")
        return BenchmarkRecord(
            id=rid,
            benchmark="avqa_val",
            question=question.strip(),
            options=options,
            gold_letter=option_letter(answer),
            gold_text=options[answer],
            video=media.path(f"{video_name}.mp4"),
            categories={
                "question_type": str(row.get("question_type", "")),
                "question_relation": str(row.get("question_relation", "")),
            },
        )

    return parse_rows(read_json_list(annotations), id_field("id"), parse)
