"""Helpers shared by the benchmark adapters: reading official files, checking rows, media paths.

An adapter is a function `read(annotations, media) -> Iterator[BenchmarkRecord | MalformedRow]`
that turns each official row into a record, or into a `MalformedRow` naming what is wrong
with it. Media existence, duplicate ids and counting are handled once, in the registry.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from avrt.core.answers import option_letter
from avrt.core.io import read_json
from avrt.evaluation.records import BenchmarkRecord, MalformedRow

# "A. text", "A) text", "(A) text" at the start of an option string.
LETTER_PREFIX = re.compile(r"^\s*\(?(?P<letter>[A-Z])[.)]\s*")
# A gold answer given as a letter: "B", "(B)", "B.".
GOLD_LETTER = re.compile(r"^\(?(?P<letter>[A-Z])\)?\.?$")


class RowError(ValueError):
    """One annotation row cannot be used; the message is the reason recorded for it."""


class MediaRoot:
    """Resolves an annotation's media paths against the benchmark's media directory."""

    def __init__(self, media_dir: str | Path):
        self.root = Path(media_dir)

    def path(self, relative: str) -> str:
        # Official files write "./audio/x.wav"; normalise so that paths compare and print cleanly.
        return str(self.root / Path(relative.removeprefix("./")))

    def first_existing(self, candidates: Sequence[str]) -> str:
        """The first candidate layout that exists, else the first (reported as missing later)."""
        paths = [self.path(c) for c in candidates]
        return next((p for p in paths if Path(p).exists()), paths[0])


Adapter = Callable[[Path, MediaRoot], Iterator[BenchmarkRecord | MalformedRow]]


def read_json_list(path: Path) -> list:
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
    return data


def read_jsonl_rows(path: Path) -> list:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                # A broken line is a malformed row, not a reason to lose the whole benchmark.
                rows.append(RowError(f"line {lineno} is not JSON: {err.msg}"))
    return rows


def parse_rows(
    rows: Iterable, row_id: Callable[[dict, int], str], parse: Callable[[dict, str], BenchmarkRecord]
) -> Iterator[BenchmarkRecord | MalformedRow]:
    """Apply `parse` to every row, turning a RowError into a MalformedRow with the row's id."""
    for index, row in enumerate(rows):
        if isinstance(row, RowError):
            yield MalformedRow(f"row {index}", str(row))
            continue
        if not isinstance(row, dict):
            yield MalformedRow(f"row {index}", f"expected an object, got {type(row).__name__}")
            continue
        rid = row_id(row, index)
        try:
            yield parse(row, rid)
        except RowError as err:
            yield MalformedRow(rid, str(err))
        except (TypeError, AttributeError) as err:  # a field of the wrong type, e.g. a number as question
            yield MalformedRow(rid, f"unexpected value type: {err}")


def id_field(key: str) -> Callable[[dict, int], str]:
    """Row id from a field; rows without it are named by their position."""

    def row_id(row: dict, index: int) -> str:
        value = row.get(key)
        return str(value) if value not in (None, "") else f"row {index}"

    return row_id


def occurrence_ids(rows: list, group: Callable[[dict], str | None]) -> list[str]:
    """Ids `<group>_<n>` for files without row ids, n counting the group's rows in file order.

    Grouping by video keeps an id stable when rows of other videos are added or removed.
    """
    seen: Counter[str] = Counter()
    ids = []
    for index, row in enumerate(rows):
        key = group(row) if isinstance(row, dict) else None
        if key:
            ids.append(f"{key}_{seen[key]}")
            seen[key] += 1
        else:
            ids.append(f"row {index}")
    return ids


def require(row: dict, *keys: str) -> list:
    """The values of `keys`, or a RowError naming the first one missing or empty."""
    values = []
    for key in keys:
        value = row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise RowError(f"missing field {key!r}")
        values.append(value)
    return values


def string_list(value, name: str, *, min_len: int = 2) -> list[str]:
    """A list of non-empty strings (numpy arrays from parquet included)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RowError(f"{name!r} must be a list of non-empty strings, got {value!r}")
    if len(value) < min_len:
        raise RowError(f"{name!r} has {len(value)} entries, expected at least {min_len}")
    return value


def strip_letter_prefixes(options: list[str], name: str) -> tuple[str, ...]:
    """["A. x", "B. y"] -> ("x", "y"); the prefixes must run A, B, C, ... in order."""
    texts = []
    for i, option in enumerate(options):
        m = LETTER_PREFIX.match(option)
        if not m or m.group("letter") != option_letter(i):
            raise RowError(f"{name!r} entry {i} should start with {option_letter(i)!r}: {option!r}")
        texts.append(option[m.end() :].strip())
    return tuple(texts)


def gold_from_letter(options: tuple[str, ...], letter) -> tuple[str, str]:
    """(gold letter, gold text) from a letter answer such as "B"."""
    letter = str(letter).strip()
    m = GOLD_LETTER.match(letter)
    idx = ord(m.group("letter")) - ord("A") if m else -1
    if not 0 <= idx < len(options):
        raise RowError(f"answer {letter!r} is not one of the letters A-{option_letter(len(options) - 1)}")
    return option_letter(idx), options[idx]


def gold_from_text(options: tuple[str, ...], answer) -> tuple[str, str]:
    """(gold letter, gold text) from an answer given as option text (first copy if repeated)."""
    if not isinstance(answer, str) or answer not in options:
        raise RowError(f"answer {answer!r} is not among the options {list(options)!r}")
    return option_letter(options.index(answer)), answer
