"""The one generation loop behind every model-facing stage (teachers, merger, AGFV, evaluation).

A stage hands the driver its items, how to turn an item into a request, and how many samples
each request takes; the driver answers what is not cached yet, in chunks, loading the model only
when there is work (and closing it at the end), and keeps every model output in a resumable cache
as it arrives:

    outputs = generate(items, key=..., request=..., samples=n, cache=out, settings=..., inputs=...,
                       load_backend=lambda: load_model(spec), chunk_size=64, desc="teacher visual")
    rows = [make_row(item, o) for item in items for o in outputs.of(key(item))]

The cache holds what the model said (`ModelOutput`: raw text, tokens, seed, time), never fields
derived from it, so the stage's parsing runs afresh on every call and a fix to it reaches rows
already generated without asking the model again. A request counts as done only when all of its
samples are cached. The cache is keyed to `settings` and the identity of `inputs` (see
`avrt.core.resumable`): outputs of another model, prompt, sampling or input never mix in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from avrt.core.resumable import ResumableShard
from avrt.core.rows import Row

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_FORMAT = "ModelOutput/1"  # bump when ModelOutput's fields change


@dataclass(frozen=True)
class ModelOutput(Row):
    """One sampled answer to one request, as the cache keeps it."""

    request_id: str
    sample_index: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seed: int
    seconds: float  # the chunk's generation time shared out over its outputs


@dataclass
class Outputs(Generic[T]):
    """The model outputs of every item, and what it took to make them."""

    by_request: dict[str, list[ModelOutput]]
    stats: dict

    def of(self, request_id: str) -> list[ModelOutput]:
        """The outputs of one request, by sample index (empty when it has none)."""
        return self.by_request.get(request_id, [])


class LazyBackend:
    """A backend loaded on its first request (a pass without work loads no model), for several
    `generate` calls to share; its holder closes it."""

    def __init__(self, load: Callable[[], Any]):
        self.load, self.loaded = load, None

    def generate(self, requests):
        if self.loaded is None:
            self.loaded = self.load()
        return self.loaded.generate(requests)

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.close()


def generate(
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    request: Callable[[T], Any],
    samples: int,
    cache: str | Path,
    settings: dict,
    inputs: Iterable[str | Path | None],
    chunk_size: int,
    desc: str,
    load_backend: Callable[[], Any] | None = None,
    backend: Any = None,
) -> Outputs[T]:
    """Answer every item `samples` times; `request(item)` builds its request (ids must be `key(item)`).

    `cache` is the stage's output path: the outputs live in `<dir>/.progress/<name>` next to it.
    `backend`: one the caller holds; else `load_backend()` loads one on the first work, closed here
    at the end (a vLLM engine's processes and memory go with it).
    """
    # the cache's row format is part of its fingerprint: rows of another format are never read as ours
    store = ResumableShard(cache, {**settings, "cache_format": CACHE_FORMAT},
                           key=lambda r: f"{r['request_id']}/{r['sample_index']}", inputs=inputs)
    todo = [item for item in items if not all(store.done(f"{key(item)}/{i}") for i in range(samples))]
    start, calls, new, loaded = time.perf_counter(), 0, 0, None
    try:
        with tqdm(total=len(todo), desc=desc, unit="req", mininterval=10, disable=not todo) as bar:
            for lo in range(0, len(todo), chunk_size):
                batch = todo[lo : lo + chunk_size]
                if backend is None:  # loaded only when there is work: a finished shard costs no model load
                    backend = loaded = load_backend()
                t0 = time.perf_counter()
                completions = backend.generate([request(item) for item in batch])
                calls += 1
                per_output = round((time.perf_counter() - t0) / max(len(completions), 1), 4)
                wanted = {key(item) for item in batch}
                made = [ModelOutput(**dataclasses.asdict(c), seconds=per_output) for c in completions]
                unexpected = sorted({m.request_id for m in made} - wanted)
                if unexpected:
                    raise RuntimeError(f"{desc}: the backend answered requests it was not sent: {unexpected[:5]}")
                before = len(store.rows)
                store.add(m.to_dict() for m in made if m.sample_index < samples)
                new += len(store.rows) - before
                bar.update(len(batch))
    finally:
        if loaded is not None:
            loaded.close()
    by_request: dict[str, list[ModelOutput]] = {}
    for row in sorted(store.close(), key=lambda r: (r["request_id"], r["sample_index"])):
        fields = {k: v for k, v in row.items() if k != "fingerprint"}
        output = ModelOutput.from_dict(fields, where=str(store.progress_path))
        by_request.setdefault(output.request_id, []).append(output)
    elapsed = time.perf_counter() - start
    stats = {"requests": len(items), "new_requests": len(todo), "new_outputs": new, "model_calls": calls,
             "seconds": round(elapsed, 3), "outputs_per_s": round(new / elapsed, 3) if new else None}
    log.info("%s: %s", desc, json.dumps(stats))
    return Outputs(by_request, stats)
