"""Video-MME: the `test-*.parquet` annotation of the lmms-lab/Video-MME dataset.

Rows: `video_id` ("001"), `videoID` (YouTube id), `duration` (short / medium / long), `domain`,
`sub_category`, `task_type`, `question_id` ("001-1"), `question`, `options` (4 strings "A. .."),
`answer` (letter). Every model gets the frames and the audio track of the video, so `video` is
the only media path. Videos are `<media_dir>/<videoID>.mp4`, or `<media_dir>/data/<videoID>.mp4`
as the dataset's zip archives unpack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from avrt.evaluation.adapters.common import (
    MediaRoot,
    RowError,
    gold_from_letter,
    id_field,
    parse_rows,
    require,
    string_list,
    strip_letter_prefixes,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

N_OPTIONS = 4


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    frame = pd.read_parquet(annotations)

    def parse(row: dict, rid: str) -> BenchmarkRecord:
        question, video = require(row, "question", "videoID")
        options = strip_letter_prefixes(string_list(row.get("options"), "options"), "options")
        if len(options) != N_OPTIONS:
            raise RowError(f"'options' has {len(options)} entries, expected {N_OPTIONS}")
        gold_letter, gold_text = gold_from_letter(options, row.get("answer"))
        return BenchmarkRecord(
            id=rid,
            benchmark="videomme",
            question=question.strip(),
            options=options,
            gold_letter=gold_letter,
            gold_text=gold_text,
            video=media.first_existing([f"{video}.mp4", f"data/{video}.mp4"]),
            categories={
                key: str(row.get(key, "")) for key in ("duration", "domain", "sub_category", "task_type")
            },
        )

    return parse_rows(frame.to_dict(orient="records"), id_field("question_id"), parse)
