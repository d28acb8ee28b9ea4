"""AVQA validation split (the in-domain benchmark): the official `val_qa.json` of AVQA.

Rows: `id`, `video_name` (VGGSound clip, e.g. `-HG3Omg_89c_000030`), `question_text`,
`multi_choice` (4 option texts), `answer` (0-based index), `question_type`, `question_relation`.
Clips are `<media_dir>/<video_name>.mp4`, the layout the data stage writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avrt.core.answers import option_letter
from avrt.core.datasets import check_avqa_row
from avrt.evaluation.adapters.common import (
    MediaRoot,
    RowError,
    id_field,
    parse_rows,
    read_json_list,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        problem = check_avqa_row(row)
        if problem:
            raise RowError(problem)
        video_name, question, answer = row["video_name"], row["question_text"], row["answer"]
        options = tuple(row["multi_choice"])
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
