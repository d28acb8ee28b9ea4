"""Daily-Omni `qa.json`: 1,197 questions over 684 YouTube videos of 30 s or 60 s.

Rows: `Question`, `Choice` (4 strings already prefixed "A. "), `Answer` (letter), `video_id`,
`Type`, `video_category`, `video_duration` ("30s" / "60s"). Rows carry no id: a record's id is
`<video_id>_<n>`, n counting that video's questions in file order. Videos follow the official
evaluation script's layout, `<media_dir>/<video_id>/<video_id>_video.mp4`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avrt.evaluation.adapters.common import (
    MediaRoot,
    gold_from_letter,
    occurrence_ids,
    parse_rows,
    read_json_list,
    require,
    string_list,
    strip_letter_prefixes,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    rows = read_json_list(annotations)
    ids = occurrence_ids(rows, lambda row: row.get("video_id"))

    def parse(row: dict, rid: str) -> BenchmarkRecord:
        question, choices, answer, video_id = require(row, "Question", "Choice", "Answer", "video_id")
        options = strip_letter_prefixes(string_list(choices, "Choice"), "Choice")
        gold_letter, gold_text = gold_from_letter(options, answer)
        return BenchmarkRecord(
            id=rid,
            benchmark="dailyomni",
            question=question.strip(),
            options=options,
            gold_letter=gold_letter,
            gold_text=gold_text,
            video=media.path(f"{video_id}/{video_id}_video.mp4"),
            categories={
                "type": str(row.get("Type", "")),
                "video_category": str(row.get("video_category", "")),
                "video_duration": str(row.get("video_duration", "")),
            },
        )

    return parse_rows(rows, lambda row, index: ids[index], parse)
