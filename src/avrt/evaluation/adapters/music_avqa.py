"""MUSIC-AVQA test split: `data/json_update/avqa-test.json` of the official repository.

Rows: `video_id`, `question_id`, `type` (a JSON string such as '["Audio", "Counting"]'),
`question_content` with slots (`<Object>`, `<LR>`, `<FL>`, ...) filled in order from
`templ_values` (also a JSON string), and `anser` (sic): one of 42 answer words. The items are
open-ended: records have no options, and `gold_text` is the answer. Videos are
`<media_dir>/<video_id>.mp4`. How these items are scored is described in `scoring.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from avrt.evaluation.adapters.common import (
    MediaRoot,
    RowError,
    id_field,
    parse_rows,
    read_json_list,
    require,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

_SLOT = re.compile(r"<[A-Za-z]+>")


def _json_list(value, name: str) -> list:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as err:
        raise RowError(f"{name!r} is not a JSON list: {err.msg}") from None
    if not isinstance(parsed, list):
        raise RowError(f"{name!r} must be a list, got {parsed!r}")
    return parsed


def fill_template(question: str, values: list) -> str:
    """Fill the question's slots left to right; their count must match the values'."""
    slots = _SLOT.findall(question)
    if len(slots) != len(values):
        raise RowError(f"question has {len(slots)} slot(s) {slots} but {len(values)} template value(s)")
    parts = iter(str(v) for v in values)
    return _SLOT.sub(lambda _: next(parts), question)


def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        video_id, template, answer = require(row, "video_id", "question_content", "anser")
        kind = _json_list(row.get("type", "[]"), "type")
        question = fill_template(template, _json_list(row.get("templ_values", "[]"), "templ_values"))
        return BenchmarkRecord(
            id=rid,
            benchmark="music_avqa",
            # The official questions use a full-width question mark in some templates.
            question=question.replace("？", "?").strip(),
            options=(),
            gold_letter=None,
            gold_text=str(answer).strip(),
            video=media.path(f"{video_id}.mp4"),
            categories={
                "modality": str(kind[0]) if kind else "",
                "question_type": str(kind[1]) if len(kind) > 1 else "",
            },
        )

    return parse_rows(read_json_list(annotations), id_field("question_id"), parse)
