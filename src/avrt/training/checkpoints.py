"""Checkpoints of a training run: which one to resume from, and when not to resume at all.

The trainer writes `<dir>/checkpoint-<step>/` every `save_steps`, its `trainer_state.json` last,
so a checkpoint without that file was cut short (preemption mid-save) and is never resumed from.
`<dir>/run.json` records what the checkpoints were trained on (settings and data digest): a run
with other settings must not continue them, so their checkpoints are removed and it starts afresh.
The same record goes into the final checkpoint's summary: a rerun that finds it there is finished.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from avrt.core.io import write_json
from avrt.models.saved_layout import to_hub_layout

log = logging.getLogger(__name__)

CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARKER = "trainer_state.json"  # written after the weights, optimizer and RNG states
RUN_RECORD = "run.json"


def checkpoint_dirs(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint directory, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_DIR.match(p.name))]
    return sorted(found)


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint that was written to the end, or None."""
    for step, path in reversed(checkpoint_dirs(output_dir)):
        if (path / COMPLETE_MARKER).is_file():
            return path
        log.warning("checkpoint %s is incomplete (no %s): not resuming from it", path, COMPLETE_MARKER)
    return None


def finished_summary(out: str | Path, summary_name: str, record: dict) -> dict | None:
    """The summary of the final checkpoint `out` when it was published by the run `record` describes, else None."""
    path = Path(out) / summary_name
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("run") == json.loads(json.dumps(record)) else None  # compared as stored


def prepare_run_dir(output_dir: str | Path, record: dict) -> Path | None:
    """Make `output_dir` ready for a run described by `record`; returns the checkpoint to resume from.

    Checkpoints of a run with another record are deleted; incomplete checkpoints newer than the
    last complete one are deleted too (the resumed run writes them again). Call on the main
    process only, before the other ranks look for the checkpoint to resume from.
    """
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    record_path = root / RUN_RECORD
    previous = json.loads(record_path.read_text()) if record_path.is_file() else None
    if previous is not None and previous != record:
        changed = sorted(k for k in set(previous) | set(record) if previous.get(k) != record.get(k))
        stale = checkpoint_dirs(root)
        if stale:
            log.warning("settings changed since the checkpoints in %s were written (%s): deleting %d checkpoint(s) "
                        "and starting afresh", root, ", ".join(changed), len(stale))
        for _, path in stale:
            shutil.rmtree(path)
    write_json(record_path, record)
    resume = last_complete_checkpoint(root)
    resume_step = int(CHECKPOINT_DIR.match(resume.name).group(1)) if resume else -1
    for step, path in checkpoint_dirs(root):
        if step > resume_step:
            shutil.rmtree(path)
    return resume


def publish_final(trainer, out: Path, summary_name: str, summary: dict,
                  write_weights: Callable[[Path, bool], None] | None = None) -> None:
    """Write the final checkpoint (weights, processor, summary) to `out`, whole or not at all.

    Everything goes to a staging directory next to `out`, renamed onto it at the end, so a job
    killed mid-save leaves no `final/` that looks complete. `write_weights(staging, is_main)` runs
    on every rank; by default `trainer.save_model`, in which DeepSpeed gathers the weights.
    """
    main = trainer.is_world_process_zero()
    staging = staging_dir(out, clear=main)
    if write_weights is None:
        trainer.save_model(str(staging))
    else:
        write_weights(staging, main)
    if main:
        to_hub_layout(staging)
        (staging / summary_name).write_text(json.dumps(summary, indent=2) + "\n")
        move_into_place(staging, out)
    trainer.accelerator.wait_for_everyone()


def staging_dir(out: Path, clear: bool = True) -> Path:
    """Where a checkpoint directory `out` is written before it is moved onto `out`; `clear` removes
    what a killed attempt left there."""
    staging = out.with_name(f".{out.name}.partial")
    if clear and staging.exists():
        shutil.rmtree(staging)
    return staging


def move_into_place(staging: Path, out: Path) -> None:
    """Replace `out` by the finished `staging` directory."""
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
