"""Shard outputs that survive a kill: rows go to a progress file as they are made.

A stage (teacher, merger, checker, evaluation) writes its rows through `ResumableShard`.
Rows made under another fingerprint (model, prompt hash, sampling) are discarded on resume,
so a changed model or prompt never mixes with old rows; rows already present are never asked
for again and never duplicated. The declared output is written atomically at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from avrt.io import JsonlAppender, read_partial_jsonl, write_jsonl

log = logging.getLogger(__name__)


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ResumableShard:
    def __init__(self, out_path: str | Path, fingerprint_of: dict, key: Callable[[dict], str]):
        self.out_path = Path(out_path)
        self.progress_path = self.out_path.parent / ".progress" / self.out_path.name
        self.fp = fingerprint(fingerprint_of)
        self.key = key
        previous = read_partial_jsonl(self.progress_path)
        kept = [r for r in previous if r.get("fingerprint") == self.fp]
        if len(kept) < len(previous):
            log.info("%s: discarding %d rows made with other settings", self.out_path, len(previous) - len(kept))
        self.rows: dict[str, dict] = {}
        for row in kept:
            self.rows.setdefault(self.key(row), row)
        self._appender = JsonlAppender(self.progress_path, rewrite=list(self.rows.values()))
        if self.rows:
            log.info("%s: resuming with %d rows already made", self.out_path, len(self.rows))

    def done(self, key: str) -> bool:
        return key in self.rows

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            row = {**row, "fingerprint": self.fp}
            k = self.key(row)
            if k in self.rows:
                continue
            self.rows[k] = row
            self._appender.append(row)

    def finish(self, sort_key: Callable[[dict], object] | None = None) -> list[dict]:
        self._appender.close()
        rows = sorted(self.rows.values(), key=sort_key or self.key)
        write_jsonl(self.out_path, rows)
        return rows
