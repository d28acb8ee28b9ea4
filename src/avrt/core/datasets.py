"""Data sets shared by the stages: the AVQA annotation rule, AVRT-20K files and the val split.

- `check_avqa_row`: the one rule an official AVQA annotation row must meet (ingest and the
  in-domain benchmark both read AVQA through it);
- `read_avrt20k`: AVRT-20K rows from our export or the released files (JSONL, JSON list or
  parquet), validated on read;
- `in_val`: the stable, shard-order independent val split of a sample id;
- `difficulty_of`: an item's difficulty subset by how many teachers answered it right (paper
  Table 8), shared by the merged traces and the evaluation's difficulty subsets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

from avrt.core.io import read_json, read_jsonl
from avrt.core.rows import Avrt20kRow

log = logging.getLogger(__name__)

DIFFICULTY_SUBSETS = ("easy", "medium", "hard")
AVQA_REQUIRED_FIELDS = ("id", "video_name", "question_text", "multi_choice", "answer")
AVQA_N_OPTIONS = 4  # every AVQA question has four options (the official schema)


def check_avqa_row(row: dict) -> str | None:
    """Why an official AVQA annotation row is malformed, or None when it is usable."""
    missing = [f for f in AVQA_REQUIRED_FIELDS if f not in row]
    if missing:
        return f"missing fields {missing}"
    choices = row["multi_choice"]
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        return f"'multi_choice' must be a list of strings, got {choices!r}"
    if len(choices) != AVQA_N_OPTIONS:
        return f"'multi_choice' has {len(choices)} options, expected {AVQA_N_OPTIONS}"
    answer = row["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        return f"'answer' must be an option index 0-{len(choices) - 1}, got {answer!r}"
    if not str(row["question_text"]).strip():
        return "empty question_text"
    return None


def difficulty_of(n_correct: int, n_teachers: int) -> str:
    """easy: every teacher right; hard: none; medium: in between (paper Table 8)."""
    if not 0 <= n_correct <= n_teachers:
        raise ValueError(f"{n_correct} teachers correct is outside 0..{n_teachers}")
    return "easy" if n_correct == n_teachers else "hard" if n_correct == 0 else "medium"


def in_val(sample_id, fraction: float, seed: int) -> bool:
    """Whether a sample belongs to the val split: a seeded hash of its id, not its position."""
    digest = hashlib.sha256(f"{seed}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def read_avrt20k(path: str | Path) -> list[Avrt20kRow]:
    """AVRT-20K rows from our export or the released files (JSONL, JSON list or parquet).

    The release's own `id` column becomes `sample_id`; other columns that are no Avrt20kRow field
    are left out (and named in a warning). A row lacking one of the six AVRT-20K fields, or with a
    wrong type, raises RowError naming the file and its line (JSONL) or row index (JSON, parquet).
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import pandas as pd

        rows, where = pd.read_parquet(path).to_dict(orient="records"), "row {}"
    elif path.suffix == ".json":
        rows, where = read_json(path), "row {}"
    else:
        rows, where = list(read_jsonl(path)), "line {}"
    fields = {f.name for f in dataclasses.fields(Avrt20kRow)}
    out, ignored = [], set()
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            row = dict(row)
            if "id" in row and "sample_id" not in row:
                row["sample_id"] = str(row.pop("id"))
            ignored |= set(row) - fields
            row = {k: (list(v) if k == "choices" and not isinstance(v, list) else v)  # parquet: arrays
                   for k, v in row.items() if k in fields}
        label = where.format(i + 1 if where.startswith("line") else i)
        out.append(Avrt20kRow.from_dict(row, where=f"{path}: {label}"))
    if ignored:
        log.warning("%s: columns %s are no AVRT-20K fields and were left out", path, sorted(ignored))
    return out
