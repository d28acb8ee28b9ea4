"""RivaBench (StandUp, Academic): LLaVA-style JSON, one file per scenario.

The release's layout is not documented; this reads the LLaVA conversation format its authors'
tooling uses: a list of rows with `video` (and optionally `audio`) paths relative to the media
directory, an optional `id`, and `conversations`, whose last human turn holds the question
followed by one option per line ("A. ..." to "E. ..."), and whose last gpt turn is the reference
("C. text" or "C"). A row may instead give its options as an `options` list. Media tokens such as
`<video>` are removed from the question. Rows without `id` get `<video stem>_<n>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from avrt.core.answers import option_letter
from avrt.evaluation.adapters.common import (
    GOLD_LETTER,
    LETTER_PREFIX,
    MediaRoot,
    RowError,
    gold_from_letter,
    occurrence_ids,
    parse_rows,
    read_json_list,
    require,
    string_list,
    strip_letter_prefixes,
)
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

_MEDIA_TOKEN = re.compile(r"<(?:video|audio|image)>", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\s*\(?(?P<letter>[A-Z])[.)]\s*(?P<text>\S.*)$")
_OPTIONS_HEADER = re.compile(r"^\s*(?:options|choices)\s*:?\s*$", re.IGNORECASE)


def _last_turn(conversations, speaker: str) -> str:
    if not isinstance(conversations, list):
        raise RowError("'conversations' must be a list of turns")
    turns = [t.get("value") for t in conversations if isinstance(t, dict) and t.get("from") == speaker]
    if not turns or not isinstance(turns[-1], str) or not turns[-1].strip():
        raise RowError(f"'conversations' has no {speaker!r} turn")
    return turns[-1]


def _question_and_options(prompt: str, row: dict) -> tuple[str, tuple[str, ...]]:
    lines = _MEDIA_TOKEN.sub("", prompt).splitlines()
    if row.get("options") is not None:
        options = string_list(row["options"], "options")
        has_prefix = all(LETTER_PREFIX.match(o) for o in options)
        texts = strip_letter_prefixes(options, "options") if has_prefix else tuple(o.strip() for o in options)
        return "\n".join(lines).strip(), texts
    first = next((i for i, line in enumerate(lines) if _OPTION_LINE.match(line)), None)
    if first is None:
        raise RowError("no option lines ('A. ...') in the question turn")
    texts = []
    for line in lines[first:]:
        m = _OPTION_LINE.match(line)
        if not m or m.group("letter") != option_letter(len(texts)):
            break  # options end at the first line that does not continue the A, B, C, ... run
        texts.append(m.group("text").strip())
    if len(texts) < 2:
        raise RowError(f"found {len(texts)} option line(s), expected at least 2")
    question = "\n".join(line for line in lines[:first] if not _OPTIONS_HEADER.match(line)).strip()
    if not question:
        raise RowError("empty question before the options")
    return question, tuple(texts)


def reader(benchmark: str, scenario: str) -> Callable[[Path, MediaRoot], Iterator[BenchmarkRecord | MalformedRow]]:
    def read(annotations: Path, media: MediaRoot) -> Iterator[BenchmarkRecord | MalformedRow]:
        rows = read_json_list(annotations)
        fallback = occurrence_ids(rows, lambda row: Path(str(row.get("video") or "")).stem or None)

        def row_id(row: dict, index: int) -> str:
            return str(row["id"]) if row.get("id") not in (None, "") else fallback[index]

        def parse(row: dict, rid: str) -> BenchmarkRecord:
            (video,) = require(row, "video")
            question, options = _question_and_options(_last_turn(row.get("conversations"), "human"), row)
            reference = _last_turn(row.get("conversations"), "gpt").strip()
            m = LETTER_PREFIX.match(reference) or GOLD_LETTER.match(reference)
            if not m:
                raise RowError(f"reference answer does not start with an option letter: {reference!r}")
            gold_letter, gold_text = gold_from_letter(options, m.group("letter"))
            categories = {"scenario": scenario}
            categories.update({k: str(row[k]) for k in ("category", "type", "task") if row.get(k)})
            return BenchmarkRecord(
                id=rid,
                benchmark=benchmark,
                question=question,
                options=options,
                gold_letter=gold_letter,
                gold_text=gold_text,
                video=media.path(video),
                audio=media.path(row["audio"]) if row.get("audio") else None,
                categories=categories,
            )

        return parse_rows(rows, row_id, parse)

    return read


read_standup = reader("riva_standup", "standup")
read_academic = reader("riva_academic", "academic")
