"""Stage 1: supervised fine-tuning of the student on reasoning traces (AVRT Sec. 3.2, 4.3).

    avrt sft --config results/<run>/config.yaml \\
        --train results/<run>/avrt20k/train.jsonl --val results/<run>/avrt20k/val.jsonl \\
        --media results/<run>/media/000.jsonl ... --out results/<run>/checkpoints/sft/final

One process per GPU (see `avrt.training.launch` for torchrun and multi-node srun). Phases: read
the examples and drop those without media; stop there when `--out` already holds this run's final
checkpoint; build the training arguments (this sets up the process group); prepare the checkpoint
directory (resume from the newest complete checkpoint, or start afresh when the settings changed);
load the student, freeze its encoders, add LoRA if configured; train (nothing left to train when
resumed from the run's last checkpoint); measure the validation loss; save the final checkpoint,
merged and with its processor, where evaluation and GRPO load it through the model layer
(`ModelSpec(checkpoint=<out>, family=<student family>)`), plus `sft_summary.json`. Its loss figures
cover the whole run, resumed or not: they come from the log history, which checkpoints carry.

Trainer choice: `transformers.Trainer` with our own collator, not TRL's SFTTrainer. SFTTrainer
refuses `assistant_only_loss` for vision-language models and its multimodal collator neither
knows Qwen2.5-Omni's audio-in-video inputs nor masks the prompt of a chat with media; our
collator builds the prompt through the same adapter and processor call as evaluation and labels
only the assistant's trace. Trainer still gives everything TRL would add here: DeepSpeed,
gradient accumulation, the cosine schedule, checkpoints with optimizer/RNG state and resume,
TensorBoard and W&B.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


from avrt.core.config import add_config_argument, load_config
from avrt.core.prompts import load_prompt
from avrt.models.adapters import get_adapter
from avrt.models.saved_layout import save_checkpoint
from avrt.models.spec import ModelSpec, model_spec
from avrt.training.checkpoints import finished_summary, last_complete_checkpoint, prepare_run_dir, publish_final
from avrt.training.batches import SFTCollator
from avrt.training.data import (
    STUDENT_PROMPT,
    MediaLookup,
    SFTDataset,
    StudentInputs,
    attach_media,
    examples_digest,
    load_examples,
)
from avrt.training.launch import require_deepspeed
from avrt.training.student import (
    apply_lora,
    freeze_modules,
    load_student,
    merged_for_saving,
    parameter_counts,
    student_record,
)

log = logging.getLogger(__name__)

SUMMARY = "sft_summary.json"
# Settings that change what the checkpoints hold; the others (logging, saving) may change on resume.
RUN_KEYS = ("epochs", "per_device_batch_size", "gradient_accumulation_steps", "num_gpus", "num_nodes",
            "learning_rate", "lr_scheduler", "warmup_steps", "adam_beta1", "adam_beta2", "adam_epsilon",
            "weight_decay", "bf16", "deepspeed", "lora", "max_steps", "max_grad_norm", "seed", "data")


@dataclass
class SFTInputs:
    """Files one SFT run reads: examples per split (by source) and the media indexes of all shards."""

    train: list[str]
    media_indexes: list[str]
    val: list[str] = field(default_factory=list)


def sft_training_arguments(sft: dict, output_dir: Path, has_val: bool):
    from avrt.training.trainer import training_arguments

    return training_arguments(
        sft, "sft", output_dir,
        num_train_epochs=float(sft["epochs"]),
        per_device_eval_batch_size=sft["per_device_batch_size"],
        adam_beta1=sft["adam_beta1"],
        adam_beta2=sft["adam_beta2"],
        adam_epsilon=sft["adam_epsilon"],
        eval_strategy="steps" if has_val and sft["eval_steps"] else "no",
        eval_steps=sft["eval_steps"],
        prediction_loss_only=True,
        label_names=["labels"],
    )


def read_split(source: str, paths: list[str], split: str, media: MediaLookup, target: str = "trace"):
    """Examples of one split that have media, and the count of those left out by reason."""
    return attach_media(load_examples(source, paths, split, target), media) if paths else ([], Counter())


def mean_train_loss(log_history: list[dict]) -> float | None:
    """Mean loss per optimizer step over the run, from the log history: each logged loss is the mean
    of its logging window, weighted here by the window's steps. Covers every step because the last
    step is always saved and every checkpoint ends a window (`LogAtCheckpoints`)."""
    total, last_step = 0.0, 0
    for entry in log_history:
        if "loss" in entry:
            total += entry["loss"] * (entry["step"] - last_step)
            last_step = entry["step"]
    return total / last_step if last_step else None


def train_sft(sft: dict, student: dict, spec: ModelSpec, inputs: SFTInputs, out: str | Path,
              checkpoints_dir: str | Path | None = None, callbacks=()) -> dict:
    """Run SFT and write the final checkpoint to `out`; returns the run summary.

    Checkpoints go to `checkpoints_dir` (default: the parent of `out`), with TensorBoard logs in
    its `tensorboard/`. `callbacks` are extra `transformers.TrainerCallback`s.
    """
    require_deepspeed(sft["deepspeed"])
    out = Path(out)
    output_dir = Path(checkpoints_dir) if checkpoints_dir else out.parent
    source = sft["data"]["source"]
    media = MediaLookup(inputs.media_indexes)
    target = sft["data"]["target"]
    train, skipped_train = read_split(source, inputs.train, "train", media, target)
    val, skipped_val = read_split(source, inputs.val, "val", media, target)
    if not train:
        raise ValueError(f"no SFT training example has prepared media (source {source!r}, files {inputs.train}; "
                         f"left out: {dict(skipped_train)})")

    record = {
        "sft": {k: sft[k] for k in RUN_KEYS},
        "student": student_record(spec, student),
        "prompt": {"id": STUDENT_PROMPT, "sha256": load_prompt(STUDENT_PROMPT).sha256},
        "train_digest": examples_digest(train),
    }
    finished = finished_summary(out, SUMMARY, record)
    if finished is not None:
        log.info("%s is already this run's final checkpoint: nothing to do", out)
        return finished

    args = sft_training_arguments(sft, output_dir, has_val=bool(val))
    with args.main_process_first(local=False, desc="checkpoint directory"):  # one shared directory
        resume = prepare_run_dir(output_dir, record) if args.process_index == 0 else last_complete_checkpoint(output_dir)
    if resume:
        log.info("resuming from %s", resume)

    from avrt.models.hf_backend import load_processor

    adapter = get_adapter(spec.family)
    processor = load_processor(spec)
    # Full fine-tuning without DeepSpeed (which keeps float32 master weights itself) trains float32
    # weights under bf16 autocast: in bfloat16, AdamW steps at lr 2e-6 round away. LoRA trains
    # float32 adapters (PEFT's default) over a base in the spec's dtype.
    dtype = spec.dtype if sft["deepspeed"] or sft["lora"] else "float32"
    model = load_student(spec, adapter, dtype)
    frozen = freeze_modules(model, list(student["freeze"]))
    if sft["lora"]:
        from transformers import set_seed

        set_seed(sft["seed"])  # the adapters' initial weights come from `sft.seed`, not from what ran before
        model = apply_lora(model, sft["lora"], list(student["freeze"]))
    counts = parameter_counts(model)
    log.info("student %s: %d parameters, %d trainable; frozen per module: %s", spec.name, counts["total"],
             counts["trainable"], frozen)

    student_inputs = StudentInputs(spec, adapter, processor, media)
    tokenizer = student_inputs.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = SFTCollator(pad_id, feature_dtype=next(model.parameters()).dtype)

    from avrt.training.trainer import ResumableTrainer

    # One TensorBoard directory per run, shared by its resumed attempts (not one per start time).
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(output_dir / "tensorboard")
    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=SFTDataset(train, student_inputs),
        eval_dataset=SFTDataset(val, student_inputs) if val else None,
        data_collator=collator,
        processing_class=processor,
        callbacks=list(callbacks),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    eval_loss = trainer.evaluate()["eval_loss"] if val else None

    summary = {
        "source": source,
        "examples": {"train": len(train), "val": len(val)},
        "left_out_without_media": {"train": dict(skipped_train), "val": dict(skipped_val)},
        "resumed_from": str(resume) if resume else None,
        "global_steps": trainer.state.global_step,
        "train_loss": mean_train_loss(trainer.state.log_history),  # the Trainer's own covers this attempt only
        "eval_loss": eval_loss,
        "loss_curve": [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e],
        "parameters": counts,
        "weights_dtype": dtype,
        "frozen_parameters": frozen,
        "world_size": args.world_size,
        "run": record,
    }
    publish_final(trainer, out, SUMMARY, summary, write_weights(trainer, processor, bool(sft["lora"])))
    log.info("final checkpoint: %s (%d steps, train loss %.4f)", out, summary["global_steps"], summary["train_loss"])
    return summary


def write_weights(trainer, processor, lora: bool):
    """How SFT saves weights: LoRA adapters merged into the base model, else the trainer's own save."""
    if not lora:
        return None  # trainer.save_model on every rank (DeepSpeed gathers the weights)

    def merged(staging: Path, main: bool) -> None:
        if main:  # ZeRO-2 keeps full weights on every rank, so the main one can merge alone
            model = merged_for_saving(trainer.accelerator.unwrap_model(trainer.model))
            save_checkpoint(model, staging)
            processor.save_pretrained(staging)

    return merged


# ---- command line -----------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_config_argument(parser)  # reads `sft`, `student` and the student's `models` entry
    parser.add_argument("--train", nargs="+", required=True,
                        help="training files: AVRT-20K train (avrt20k, released) or the shard manifests (template)")
    parser.add_argument("--val", nargs="*", default=[],
                        help="validation files: AVRT-20K val (avrt20k, released) or the shard manifests (template)")
    parser.add_argument("--media", nargs="+", required=True, help="media indexes of all shards")
    parser.add_argument("--out", required=True, help="final checkpoint directory")
    parser.add_argument("--checkpoints", help="directory of intermediate checkpoints (default: the parent of --out)")


def run(args) -> int:
    config = load_config(*args.config)
    spec = model_spec(config, config["student"]["model"])
    inputs = SFTInputs(train=args.train, val=args.val, media_indexes=args.media)
    train_sft(config["sft"], config["student"], spec, inputs, args.out, args.checkpoints)
    return 0
