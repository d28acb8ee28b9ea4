"""Audio-only multiple choice with text answers: MMAR (`MMAR-meta.jsonl`) and MMAU test-mini
(`mmau-test-mini.json`).

Both give `id`, `question`, `choices` (MMAR 2-6, MMAU 2-8 texts) and `answer` as the option's
text. MMAR's `audio_path` and MMAU's `audio_id` ("./test-mini-audios/<id>.wav") are relative to
the media directory. 27 MMAU items repeat an option, 16 of them the gold one; the record's gold
letter is then the first copy and `accepted_letters` holds all of them. MMAR ends the choices of 4 items with an
empty string; trailing empty choices are dropped (an empty choice elsewhere is malformed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avrt.evaluation.adapters.common import (
    MediaRoot,
    gold_from_text,
    id_field,
    parse_rows,
    read_json_list,
    read_jsonl_rows,
    require,
    string_list,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow


def _record(benchmark: str, row: dict, rid: str, audio: str, categories: dict) -> BenchmarkRecord:
    (question,) = require(row, "question")
    choices = row.get("choices")
    while isinstance(choices, list) and choices and choices[-1] == "":
        choices = choices[:-1]
    options = tuple(string_list(choices, "choices"))
    gold_letter, gold_text = gold_from_text(options, row.get("answer"))
    return BenchmarkRecord(
        id=rid,
        benchmark=benchmark,
        question=question.strip(),
        options=options,
        gold_letter=gold_letter,
        gold_text=gold_text,
        audio=audio,
        categories={k: str(v) for k, v in categories.items()},
    )


def read_mmar(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        (audio,) = require(row, "audio_path")
        categories = {
            "modality": row.get("modality", ""),
            "category": row.get("category", ""),
            "sub_category": row.get("sub-category", ""),
        }
        return _record("mmar", row, rid, media.path(audio), categories)

    return parse_rows(read_jsonl_rows(annotations), id_field("id"), parse)


def read_mmau(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
    def parse(row: dict, rid: str) -> BenchmarkRecord:
        (audio,) = require(row, "audio_id")
        categories = {
            "task": row.get("task", ""),
            "difficulty": row.get("difficulty", ""),
            "category": row.get("category", ""),
            "sub_category": row.get("sub-category", ""),
        }
        return _record("mmau_test_mini", row, rid, media.path(audio), categories)

    return parse_rows(read_json_list(annotations), id_field("id"), parse)
