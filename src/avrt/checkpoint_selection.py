"""Pick a training stage's checkpoint by validation accuracy and publish it as `<stage>/best/`.

    avrt select-checkpoint --config results/<run>/config.yaml --stage sft \\
        --records results/<run>/eval/records/avqa_val.jsonl --final results/<run>/checkpoints/sft/final \\
        --out results/<run>/checkpoints/sft/best --scores results/<run>/checkpoints/sft/checkpoint_scores.json \\
        --table results/<run>/checkpoints/sft/checkpoint_scores.md

SightSound-R1 (Sec. 4.1): "Best checkpoints are selected by validation accuracy for both stages".
The candidates are every complete `checkpoint-<step>/` next to `final/` (one whose
`trainer_state.json` is missing was cut short and is skipped) and `final/` itself, at the step its
summary records; `final/` stands in for the checkpoint of its own step (the same weights, in the
published form). Each candidate answers the records as evaluation answers them (`run_inference`:
the student's reasoning prompt, greedy, both modalities, the run's audio-text setting, and the
input protocol evaluation gives that benchmark) and is scored by `score` (strict
accuracy). Its predictions are cached under
`<checkpoints>/selection/<candidate>.predictions.jsonl` (model outputs in `.progress/`), so a
rerun asks no model again. The highest accuracy wins; a tie goes to the later step, the model
trained longest among equals (so `final/` wins a tie with any earlier checkpoint).

A Trainer checkpoint holds weights and optimizer state, not necessarily the processor: candidates
load the processor from `final/`. `best/` holds what `final/` holds: the winner's weights and
config (a LoRA checkpoint's adapters merged into their base, as SFT merges `final/`), `final/`'s
processor files, and `selection.json` instead of the stage summary. Unchanged files are hard links
where the file system allows.

This step reads both a training stage's checkpoints and the evaluation code, so it sits above the
stages, with the other entry points.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from avrt.core.config import add_config_argument, audio_text_questions, load_config
from avrt.core.io import InputFileError, read_json, write_json
from avrt.core.rows import Row
from avrt.models.saved_layout import save_checkpoint, to_hub_layout
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

STAGES = ("sft", "grpo")
PROMPT_MODE = "reasoning"  # the prompt the trained student answers, as evaluation asks it
SELECTION = "selection.json"
# The files of a saved model (weights and config); the rest of a checkpoint directory is the
# processor, the summary, or (intermediate checkpoints) the trainer's optimizer and RNG state.
MODEL_FILES = re.compile(r"^(config\.json|generation_config\.json|(pytorch_)?model.*\.(safetensors|bin)(\.index\.json)?)$")
LORA_MARKER = "adapter_config.json"  # a PEFT checkpoint: adapters only, no base weights


@dataclass(frozen=True)
class Candidate:
    name: str  # "checkpoint-<step>" or "final"
    step: int
    path: Path

    @property
    def is_lora(self) -> bool:
        return (self.path / LORA_MARKER).is_file()


@dataclass(frozen=True)
class CheckpointScore(Row):
    """One candidate's result on the validation records."""

    name: str
    step: int
    accuracy: float  # strict accuracy, as the result tables report it
    n: int  # records scored (missing media count as wrong, as in evaluation)


def summary_name(stage: str) -> str:
    if stage == "sft":
        from avrt.training.sft import SUMMARY
    elif stage == "grpo":
        from avrt.training.grpo import SUMMARY
    else:
        raise ValueError(f"unknown training stage {stage!r} (known: {', '.join(STAGES)})")
    return SUMMARY


def candidates(checkpoints_dir: Path, final: Path, summary: str) -> list[Candidate]:
    """Every complete checkpoint of the run and final/, oldest first; final/ replaces the checkpoint
    of the step it was published at."""
    from avrt.training.checkpoints import COMPLETE_MARKER, checkpoint_dirs

    summary_path = final / summary
    if not summary_path.is_file():
        raise InputFileError(f"{final}: no {summary}: not a final checkpoint the {summary.split('_')[0]} stage published")
    final_step = read_json(summary_path)["global_steps"]
    found = []
    for step, path in checkpoint_dirs(checkpoints_dir):
        if not (path / COMPLETE_MARKER).is_file():
            log.warning("%s is incomplete (no %s): not a candidate", path, COMPLETE_MARKER)
        elif step != final_step:
            found.append(Candidate(path.name, step, path))
    return sorted([*found, Candidate("final", final_step, final)], key=lambda c: c.step)


def best_of(scores: list[CheckpointScore]) -> CheckpointScore:
    """The highest accuracy; among equals, the later step."""
    if not scores:
        raise ValueError("no checkpoint to choose from")
    return max(scores, key=lambda s: (s.accuracy, s.step))


def run_record(checkpoints_dir: Path) -> dict:
    """What the stage trained from (its `run.json`): the base a LoRA checkpoint's adapters belong to."""
    from avrt.training.checkpoints import RUN_RECORD

    path = checkpoints_dir / RUN_RECORD
    if not path.is_file():
        raise InputFileError(f"{checkpoints_dir}: no {RUN_RECORD}: these checkpoints were not written by a training run")
    return read_json(path)


def candidate_spec(candidate: Candidate, student: ModelSpec, final: Path, record: dict) -> ModelSpec:
    """How to load a candidate through the model layer: final/ as it is; a checkpoint's weights with
    final/'s processor; a LoRA checkpoint as adapters on the base the stage trained from."""
    if candidate.name == "final":
        return replace(student, checkpoint=str(final), revision=None)  # as `avrt evaluate --checkpoint` loads it
    if candidate.is_lora:
        base = record["student"]
        return replace(student, checkpoint=base["checkpoint"], revision=base["revision"], dtype=base["dtype"],
                       adapter=str(candidate.path), adapter_subfolder=None, processor=str(final))
    return replace(student, checkpoint=str(candidate.path), revision=None, processor=str(final))


def score_candidate(candidate: Candidate, spec: ModelSpec, records: Path, benchmark: str, cache_dir: Path,
                    config: dict, backend=None) -> CheckpointScore:
    """Answer the records with one candidate (from the cache where it has answered) and score it."""
    from avrt.evaluation.inference import run_inference
    from avrt.evaluation.records import read_records
    from avrt.evaluation.scoring import read_predictions, score

    from avrt.evaluation.protocols import resolve

    predictions = cache_dir / f"{candidate.name}.predictions.jsonl"
    protocol, params = resolve(config, benchmark)  # the cut evaluation gives this benchmark
    run_inference(records, spec, PROMPT_MODE, params, "both", predictions, config["evaluation"]["chunk_size"],
                  backend=backend, audio_text=audio_text_questions(config), protocol=protocol)
    result = score(read_records(records), read_predictions(predictions))
    write_json(cache_dir / f"{candidate.name}.result.json", result.to_dict())
    metrics = result.metrics
    log.info("%s (step %d): accuracy %.4f on %d records", candidate.name, candidate.step, metrics["accuracy"],
             metrics["n"])
    return CheckpointScore(candidate.name, candidate.step, metrics["accuracy"], metrics["n"])


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links there
        shutil.copy2(src, dst)


def merge_lora(candidate: Candidate, spec: ModelSpec, into: Path) -> None:
    """Save a LoRA checkpoint merged into its base, as SFT saves its final checkpoint."""
    from peft import PeftModel

    from avrt.models.adapters import get_adapter
    from avrt.training.student import load_student, merged_for_saving

    base = load_student(replace(spec, adapter=None, processor=None), get_adapter(spec.family))
    save_checkpoint(merged_for_saving(PeftModel.from_pretrained(base, str(candidate.path))), into)


def write_in_final_form(candidate: Candidate, spec: ModelSpec, final: Path, out: Path, summary: str,
                        selection: dict | None = None) -> None:
    """Write `out` in final/'s form (merged weights, final/'s processor) from a candidate, whole or
    not at all."""
    from avrt.training.checkpoints import move_into_place, staging_dir

    staging = staging_dir(out)
    staging.mkdir(parents=True)
    if candidate.is_lora:
        merge_lora(candidate, spec, staging)
    else:
        for path in candidate.path.iterdir():
            if path.is_file() and MODEL_FILES.match(path.name):
                _link_or_copy(path, staging / path.name)
    for path in final.iterdir():  # the processor files, from the checkpoint evaluation and GRPO load
        if path.is_file() and not MODEL_FILES.match(path.name) and path.name != summary:
            _link_or_copy(path, staging / path.name)
    to_hub_layout(staging)  # a full checkpoint's files are linked as the trainer wrote them
    if selection is not None:
        write_json(staging / SELECTION, selection)
    move_into_place(staging, out)


def score_lora_on_vllm(candidate: Candidate, spec: ModelSpec, final: Path, summary: str, records: Path,
                      benchmark: str, cache_dir: Path, config: dict) -> CheckpointScore:
    """Score a LoRA candidate on vLLM, which cannot apply a LoRA to every family (Qwen2-Audio: "does
    not support LoRA yet"): from the candidate merged as final/ is, in the selection's cache, removed
    once scored (a 7B model per candidate)."""
    merged = cache_dir / "merged" / candidate.name
    if not merged.is_dir():  # a run stopped after merging finds it done
        write_in_final_form(candidate, spec, final, merged, summary)
    merged_spec = replace(spec, checkpoint=str(merged), revision=None, adapter=None, processor=None)
    result = score_candidate(candidate, merged_spec, records, benchmark, cache_dir, config)
    shutil.rmtree(merged)
    with contextlib.suppress(OSError):  # the last one takes the folder with it
        merged.parent.rmdir()
    return result


def markdown_table(stage: str, benchmark: str, scores: list[CheckpointScore], best: CheckpointScore) -> str:
    lines = [f"# {stage}: checkpoints by accuracy on {benchmark}", "",
             "| step | checkpoint | accuracy | n | |", "|---:|---|---:|---:|---|"]
    lines += [f"| {s.step} | {s.name} | {s.accuracy:.4f} | {s.n} | {'best' if s == best else ''} |" for s in scores]
    lines += ["", f"Published as `best/`: {best.name} (step {best.step}). A tie goes to the later step."]
    return "\n".join(lines) + "\n"


def select_checkpoint(config: dict, stage: str, records: str | Path, final: str | Path, out: str | Path,
                      checkpoints_dir: str | Path | None = None, backend=None) -> dict:
    """Score every checkpoint of `stage` on `records`, publish the best to `out`; returns the table."""
    records, final, out = Path(records), Path(final), Path(out)
    checkpoints_dir = Path(checkpoints_dir) if checkpoints_dir else final.parent
    limit = config[stage]["save_total_limit"]
    if limit is not None:
        log.warning("%s.save_total_limit is %d: the trainer kept only its last %d checkpoints, so only those and "
                    "final/ compete", stage, limit, limit)
    summary = summary_name(stage)
    found = candidates(checkpoints_dir, final, summary)
    record = run_record(checkpoints_dir)
    student = model_spec(config, config["student"]["model"])
    cache_dir = checkpoints_dir / "selection"
    specs = {c.name: candidate_spec(c, student, final, record) for c in found}
    from avrt.evaluation.records import read_records

    benchmark = next(iter(read_records(records))).benchmark
    scores = [score_lora_on_vllm(c, specs[c.name], final, summary, records, benchmark, cache_dir, config)
              if c.is_lora and student.backend == "vllm" and backend is None
              else score_candidate(c, specs[c.name], records, benchmark, cache_dir, config, backend) for c in found]
    best = best_of(scores)
    table = {"stage": stage, "benchmark": benchmark, "records": str(records), "metric": "strict accuracy",
             "tie_rule": "later step", "checkpoints": [s.to_dict() for s in scores], "best": best.to_dict()}
    winner = next(c for c in found if c.name == best.name)
    write_in_final_form(winner, specs[winner.name], final, out, summary,
                        {"stage": stage, "benchmark": benchmark, "records": str(records), **best.to_dict(),
                         "source": str(winner.path)})
    log.info("%s: best checkpoint %s (step %d, accuracy %.4f) published to %s", stage, best.name, best.step,
             best.accuracy, out)
    return table


# ---- command line -----------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_config_argument(parser)  # reads the stage's block, `student`, its `models` entry, `media`, `evaluation`
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--records", required=True, help="validation records JSONL (avrt eval-records)")
    parser.add_argument("--final", required=True, help="the stage's final checkpoint directory")
    parser.add_argument("--checkpoints", help="directory of the intermediate checkpoints (default: the parent of --final)")
    parser.add_argument("--out", required=True, help="directory to publish the best checkpoint to")
    parser.add_argument("--scores", required=True, help="table of every checkpoint's accuracy (JSON)")
    parser.add_argument("--table", required=True, help="the same table (Markdown)")


def run(args) -> int:
    config = load_config(*args.config)
    table = select_checkpoint(config, args.stage, args.records, args.final, args.out, args.checkpoints)
    write_json(args.scores, table)
    best = CheckpointScore.from_dict(table["best"])
    scores = [CheckpointScore.from_dict(s) for s in table["checkpoints"]]
    Path(args.table).write_text(markdown_table(args.stage, table["benchmark"], scores, best))
    return 0
