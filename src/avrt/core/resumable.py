"""Shard outputs that survive a kill: rows go to a progress file as they are made.

The generation driver (`avrt.core.generation`) keeps every model output in a `ResumableShard`
next to the stage's output (`<dir>/.progress/<name>`). Rows made under another fingerprint are
discarded on resume, so a changed model, prompt, sampling, input file or checkpoint never mixes
with old rows; rows already present are never asked for again and never duplicated.

The fingerprint covers the settings the caller passes and the identity of its input files
(`inputs_identity`): file contents, and for a directory (a checkpoint) the name, size and
modification time of every file in it, so a checkpoint retrained under the same path counts as
new without reading gigabytes of weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from avrt.core.io import JsonlAppender, file_sha256, read_partial_jsonl

log = logging.getLogger(__name__)


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def inputs_identity(paths: Iterable[str | Path | None]) -> list:
    """What the rows depend on beyond the settings: a file's sha256, a directory's file listing with
    sizes and modification times, and anything else (a hub model name) as it is."""
    identity = []
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        if p.is_file():
            identity.append([str(path), file_sha256(p)])
        elif p.is_dir():
            listing = []
            for root, _, files in os.walk(p):
                for name in files:
                    st = os.stat(os.path.join(root, name))
                    listing.append([os.path.relpath(os.path.join(root, name), p), st.st_size, st.st_mtime_ns])
            identity.append([str(path), sorted(listing)])
        else:
            identity.append(str(path))
    return identity


class ResumableShard:
    def __init__(self, out_path: str | Path, fingerprint_of: dict, key: Callable[[dict], str],
                 inputs: Iterable[str | Path | None] = ()):
        self.out_path = Path(out_path)
        self.progress_path = self.out_path.parent / ".progress" / self.out_path.name
        self.fp = fingerprint({**fingerprint_of, "inputs": inputs_identity(inputs)})
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

    def close(self) -> list[dict]:
        """Stop appending; the rows kept (each with its `fingerprint`), in the order they were made."""
        self._appender.close()
        return list(self.rows.values())
