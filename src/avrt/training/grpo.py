"""Stage 2: GRPO of the student on AVQA with format, accuracy and length rewards (AVRT Sec. 3.2, 4.3).

    avrt grpo --config results/<run>/config.yaml --checkpoint results/<run>/checkpoints/sft/final \\
        --shards results/<run>/data/shards/000.jsonl ... --media results/<run>/media/000.jsonl ... \\
        --out results/<run>/checkpoints/grpo/final

One process per GPU (`avrt.training.launch`). Each micro-step takes `per_device_batch_size` AVQA
train questions and, for each, samples G completions with the clip's audio and video
(`avrt.training.rollout`), scores them (`avrt.training.rewards`: Eq. 3-6), normalises the rewards
within each group (Eq. 2) and takes the clipped, KL-regularised GRPO loss against a frozen copy of
the starting checkpoint (`avrt.training.grpo_math`: eps 0.2, beta 0.01, k3, per-sequence token
averaging). Encoders stay frozen (`student.freeze`). The final checkpoint (weights, processor,
`grpo_summary.json`) loads through the model layer like the SFT one.

Trainer choice: our own `transformers.Trainer` subclass, not TRL's GRPOTrainer. TRL 1.16 carries
no audio features (`input_features`, `feature_attention_mask`) through generation, log-probs or
loss, and handles video only in part; a subclass would replace its generation, log-prob and loss
methods, i.e. most of what it does, and track its internals from release to release. Here
`compute_loss` is one GRPO micro-step on top of the Trainer that SFT uses (`ResumableTrainer`),
which already gives DeepSpeed ZeRO-2, gradient accumulation, the schedule, checkpoints with
optimizer, RNG and data position, automatic resume and TensorBoard.

Choices the paper leaves open, made as TRL's GRPOTrainer makes them (the first author's earlier GRPO
code subclasses it):
- One update per rollout batch (TRL's ``num_iterations=1``): the old policy is the current one,
  so the ratio is 1 in value and the clip never binds; the gradient is A * grad log pi plus the
  KL term. The clip fraction is logged all the same, and is 0.
- Every completion keeps its stop token (the model learns to stop); truncated completions count.
- Log-probs come from logits divided by the sampling temperature.
A prompt's G completions are sampled on one process, so group normalisation needs no
communication; each completion has its own seed (prompt id, optimizer step, index), so a resumed
run draws the completions the interrupted one would have drawn.

Logs: at every optimizer step one JSONL row in `<checkpoints>/grpo_metrics.jsonl` (means over
the step's micro-batches and processes: total reward and its within-group std, each reward
component, accuracy against the ground truth, completion length and the truncated share, KL,
clip fraction, ratio, loss, learning rate); the loggers (`report_to`) get their means every
`logging_steps`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback

from avrt.core.answers import strict_answer_letter
from avrt.core.config import add_config_argument, audio_text_questions, load_config
from avrt.core.io import JsonlAppender, read_jsonl, read_partial_jsonl
from avrt.core.prompts import audio_text_question
from avrt.core.rows import ManifestRow, TrainingExample, read_rows
from avrt.models.adapters import get_adapter
from avrt.models.backends import sample_seed
from avrt.models.hf_backend import stop_token_ids
from avrt.models.spec import ModelSpec, model_spec
from avrt.training.checkpoints import (
    CHECKPOINT_DIR,
    finished_summary,
    last_complete_checkpoint,
    prepare_run_dir,
    publish_final,
)
from avrt.training.batches import group_batch
from avrt.training.data import STUDENT_PROMPT, MediaLookup, StudentInputs, attach_media
from avrt.training.grpo_math import grpo_loss, group_advantages
from avrt.training.launch import require_deepspeed
from avrt.training.rewards import RewardFunction, build_rewards, score_completions
from avrt.training.rollout import (
    HFRollout,
    VLLMColocateRollout,
    completion_logps,
    media_token_ids,
    require_rollout_backend,
)
from avrt.training.student import freeze_modules, load_student, parameter_counts, student_record
from avrt.training.trainer import ResumableTrainer, training_arguments

log = logging.getLogger(__name__)

SUMMARY = "grpo_summary.json"
METRICS = "grpo_metrics.jsonl"
GROUND_TRUTH = "answer"  # the reward column of the AVQA ground-truth letter (grpo.label_column's name for it)
LABEL_KEY = "sample_id"  # label files name the QA by this key, as the trace stages do
# Settings that change neither what the checkpoints hold nor the data order: they may change on resume
# (gradient checkpointing trades memory for compute; the gradients are the same).
# Which checkpoint later stages load is chosen after training (`avrt select-checkpoint`).
RESUMABLE_KEYS = ("save_steps", "save_total_limit", "logging_steps", "report_to", "dataloader_num_workers",
                  "rollout_backend", "vllm_gpu_memory_utilization", "select_checkpoint", "select_benchmark",
                  "gradient_checkpointing")


# ---- prompts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GRPOPrompt:
    """One question to roll out, and the columns its rewards read (one value each)."""

    example: TrainingExample
    columns: dict = field(default_factory=dict)


def read_labels(paths: list[str | Path], label_column: str) -> dict[str, str]:
    """sample_id -> label from JSONL rows (several rows of one sample must agree).

    Rows are read by column name, so any JSONL with `sample_id` and the label column serves: this
    run's SightSound-R1 consensus rows (`ConsensusTrace`: a teacher trace plus `teacher_label`,
    one row per trace) or a file of the config's `grpo.label_files`.
    """
    labels: dict[str, str] = {}
    for path in paths:
        for i, row in enumerate(read_jsonl(path)):
            if LABEL_KEY not in row or label_column not in row:
                raise ValueError(f"{path}: row {i} lacks {LABEL_KEY!r} or the label column {label_column!r}")
            key, label = str(row[LABEL_KEY]), str(row[label_column]).strip()
            if labels.setdefault(key, label) != label:
                raise ValueError(f"{path}: sample {key!r} has labels {labels[key]!r} and {label!r} in {label_column!r}")
    return labels


def read_prompts(manifests: list[str | Path], label_column: str, label_files: list[str | Path] = (),
                 split: str = "train", audio_text: bool = False) -> tuple[list[GRPOPrompt], Counter]:
    """The `split` questions of the shard manifests with their reward columns; those without a label are counted.

    Columns: ``answer`` (ground truth), ``n_options`` and, when `label_column` (grpo.label_column)
    names another column, that column from `label_files`. With `audio_text` the questions are in
    the audio-text variant ("video" -> "audio"), as SightSound-R1's audio student reads them.
    """
    labels = read_labels(list(label_files), label_column) if label_column != GROUND_TRUTH else None
    if labels is not None and not labels:
        raise ValueError(f"config key 'grpo.label_column' is {label_column!r}, but no label file holds any label "
                         f"(grpo.label_files: {list(label_files)})")
    prompts, skipped = [], Counter()
    for path in manifests:
        for row in read_rows(path, ManifestRow):
            if row.split != split:
                continue
            columns = {GROUND_TRUTH: row.gold_letter, "n_options": len(row.choices)}
            if labels is not None:
                if row.sample_id not in labels:
                    skipped["no_label"] += 1
                    continue
                columns[label_column] = labels[row.sample_id]
            question = audio_text_question(row.question) if audio_text else row.question
            example = TrainingExample(sample_id=row.sample_id, video_name=row.video_name, question=question,
                                      choices=row.choices, gold_letter=row.gold_letter)
            prompts.append(GRPOPrompt(example, columns))
    return prompts, skipped


def prompts_digest(prompts: list[GRPOPrompt]) -> str:
    """Identity of the prompt set in order, labels included."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(json.dumps([p.example.sample_id, p.example.video_name, sorted(p.columns.items())]).encode())
    return h.hexdigest()[:16]


class GRPODataset(torch.utils.data.Dataset):
    """Prompts encoded lazily, as evaluation encodes them (media read in the data loader's workers)."""

    def __init__(self, prompts: list[GRPOPrompt], inputs: StudentInputs):
        self.prompts, self.inputs = prompts, inputs

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> dict:
        prompt = self.prompts[index]
        try:
            encoded, forward_kwargs = self.inputs.encode_prompt(prompt.example)
        except ValueError as err:
            example = prompt.example
            raise ValueError(f"prompt {example.sample_id!r} (clip {example.video_name!r}): {err}") from None
        return {"prompt": prompt, "encoded": encoded, "forward_kwargs": forward_kwargs}


class GRPOCollator:
    """A micro-batch of prompts -> their group batch (each prompt G times) and the prompts themselves."""

    def __init__(self, group_size: int, pad_token_id: int, feature_dtype: torch.dtype | None = None):
        self.group_size, self.pad_token_id, self.feature_dtype = group_size, pad_token_id, feature_dtype

    def __call__(self, items: list[dict]) -> dict:
        kwargs = [item["forward_kwargs"] for item in items]
        if any(k != kwargs[0] for k in kwargs):
            raise ValueError(f"a batch mixes clips the model reads differently: {kwargs}")
        batch = group_batch([item["encoded"] for item in items], self.group_size, self.pad_token_id,
                            self.feature_dtype)
        return {"prompts": [item["prompt"] for item in items], "batch": batch, "forward_kwargs": kwargs[0]}


# ---- trainer ----------------------------------------------------------------------------------
class GRPOTrainer(ResumableTrainer):
    """`compute_loss` is one GRPO micro-step: rollouts, rewards, advantages, reference and policy log-probs, loss."""

    loss_is_scaled_for_ga = False  # the Trainer divides our per-micro-batch loss by the accumulation steps

    def __init__(self, *, grpo: dict, ref_model, rollout, rewards: dict[str, RewardFunction], metrics_path: Path,
                 resume_step: int, **kwargs):
        super().__init__(**kwargs)
        self.grpo, self.ref_model, self.rollout, self.rewards = grpo, ref_model, rollout, rewards
        self.tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self.step_metrics: dict[str, list[float]] = defaultdict(list)  # micro-batches of the current step
        self.logged_metrics: dict[str, list[float]] = defaultdict(list)  # steps since the last log
        self.add_callback(StepMetrics(self, metrics_path, resume_step))

    def _reference(self, like: torch.nn.Module):
        """The frozen reference, placed on the policy's device and dtype at first use (DeepSpeed casts late)."""
        param = next(like.parameters())
        first = next(self.ref_model.parameters())
        if first.device != param.device or first.dtype != param.dtype:
            self.ref_model.to(device=param.device, dtype=param.dtype)
        return self.ref_model

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        grpo, group = self.grpo, self.grpo["num_generations"]
        prompts, batch, forward_kwargs = inputs["prompts"], inputs["batch"], inputs["forward_kwargs"]
        policy = self.accelerator.unwrap_model(model)
        step = self.state.global_step
        seeds = [sample_seed(grpo["seed"], f"{p.example.sample_id}@{step}", k) for p in prompts for k in range(group)]
        completion_ids, completion_mask = self.rollout.generate(
            policy, batch, forward_kwargs, [p.example for p in prompts], seeds, step)
        texts = [self.tokenizer.decode(ids[:n], skip_special_tokens=True)
                 for ids, n in zip(completion_ids.tolist(), completion_mask.sum(dim=1).tolist(), strict=True)]

        columns = {name: [p.columns[name] for p in prompts for _ in range(group)] for name in prompts[0].columns}
        scores = score_completions(self.rewards, texts, **columns)
        advantages = group_advantages(torch.tensor(scores.total), group).to(completion_ids.device)

        ref_logps = None
        if grpo["beta"] > 0:
            with torch.no_grad():
                ref_logps = completion_logps(self._reference(policy), batch, forward_kwargs, completion_ids,
                                             completion_mask, grpo["temperature"])
        policy_logps = completion_logps(model, batch, forward_kwargs, completion_ids, completion_mask,
                                        grpo["temperature"])
        result = grpo_loss(policy_logps, advantages, completion_mask, ref_logps=ref_logps,
                           epsilon=grpo["epsilon"], beta=grpo["beta"])
        self._record(result, scores, texts, columns, completion_ids, completion_mask)
        return (result.loss, {"advantages": advantages}) if return_outputs else result.loss

    def _record(self, result, scores, texts: list[str], columns: dict, completion_ids: torch.Tensor,
                completion_mask: torch.Tensor) -> None:
        group = self.grpo["num_generations"]
        lengths = completion_mask.sum(dim=1)
        last = completion_ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        stopped = torch.isin(last, torch.tensor(self.rollout.stop_ids, device=last.device)) & (lengths > 0)
        correct = [strict_answer_letter(text, int(n)) == truth
                   for text, n, truth in zip(texts, columns["n_options"], columns[GROUND_TRUTH], strict=True)]
        values = {
            **scores.means(),
            "reward_std": torch.tensor(scores.total).view(-1, group).std(dim=1, correction=1).mean().item(),
            "accuracy": sum(correct) / len(correct),
            "completion_length": lengths.float().mean().item(),
            "completion_truncated": 1.0 - stopped.float().mean().item(),
            **result.metrics(),
            "loss": result.loss.item(),
        }
        if not self.step_metrics:  # the first micro-batch of a step: the rate this step's update uses
            values["learning_rate"] = self._get_learning_rate()
        for key, value in values.items():
            self.step_metrics[key].append(float(value))

    def finish_step(self) -> dict[str, float]:
        """Means of the finished step's micro-batch metrics over all processes; moved to the log buffer."""
        keys = sorted(self.step_metrics)
        local = torch.tensor([sum(v) / len(v) for v in (self.step_metrics[k] for k in keys)], dtype=torch.float64,
                             device=self.args.device)
        means = self.accelerator.reduce(local, reduction="mean") if self.accelerator.num_processes > 1 else local
        self.step_metrics.clear()
        out = dict(zip(keys, means.tolist()))
        for key, value in out.items():
            if key not in ("loss", "learning_rate"):  # the Trainer logs its own loss and learning rate
                self.logged_metrics[key].append(value)
        return out

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for key, values in self.logged_metrics.items():
            if values:
                logs[key] = sum(values) / len(values)
        self.logged_metrics.clear()
        super().log(logs, start_time)


class StepMetrics(TrainerCallback):
    """Writes one metrics row per optimizer step to the run's JSONL (main process), resume-safe.

    On start, rows of steps after the checkpoint being resumed from (written by the interrupted
    attempt, and about to be redone) are dropped.
    """

    def __init__(self, trainer: GRPOTrainer, path: Path, resume_step: int):
        self.trainer, self.path, self.resume_step = trainer, Path(path), resume_step
        self.appender: JsonlAppender | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            rows = read_partial_jsonl(self.path) if self.path.exists() else []
            kept = [r for r in rows if r["step"] <= self.resume_step]
            self.appender = JsonlAppender(self.path, rewrite=kept)

    def on_step_end(self, args, state, control, **kwargs):
        row = {"step": state.global_step, **self.trainer.finish_step()}
        if self.appender is not None:
            self.appender.append(row)

    def on_train_end(self, args, state, control, **kwargs):
        if self.appender is not None:
            self.appender.close()
            self.appender = None


def make_rollout(grpo: dict, spec: ModelSpec, inputs: StudentInputs, model, pad_id: int, args):
    """The configured sampler, stopping where evaluation stops and never sampling media tokens."""
    stop_ids = stop_token_ids(model.generation_config, inputs.tokenizer, inputs.adapter, spec.name)
    suppressed = media_token_ids(model.config)
    if grpo["rollout_backend"] == "hf":
        return HFRollout(stop_ids, pad_id, grpo["temperature"], grpo["max_completion_length"], suppressed)
    return VLLMColocateRollout(spec, inputs, stop_ids, pad_id, grpo["temperature"], grpo["max_completion_length"],
                               suppressed, grpo["vllm_gpu_memory_utilization"], args.process_index,
                               args.local_process_index, args.world_size)


@dataclass
class GRPOInputs:
    """Files one GRPO run reads: the shard manifests, the media indexes of all shards, label files."""

    manifests: list[str]
    media_indexes: list[str]
    label_files: list[str] = field(default_factory=list)


def train_grpo(grpo: dict, student: dict, spec: ModelSpec, inputs: GRPOInputs, out: str | Path,
               checkpoints_dir: str | Path | None = None, callbacks=(),
               rewards: dict[str, RewardFunction] | None = None, audio_text: bool = False) -> dict:
    """Run GRPO from `spec.checkpoint` and write the final checkpoint to `out`; returns the run summary.

    With `audio_text` the prompts ask their questions in the audio-text variant (SightSound-R1).
    Checkpoints, `grpo_metrics.jsonl` and `tensorboard/` go to `checkpoints_dir` (default: the
    parent of `out`). `rewards` replaces the config's reward set (named functions with the
    `avrt.training.rewards` signature); `callbacks` are extra `transformers.TrainerCallback`s.
    """
    require_deepspeed(grpo["deepspeed"], "grpo")
    require_rollout_backend(grpo["rollout_backend"])
    out = Path(out)
    output_dir = Path(checkpoints_dir) if checkpoints_dir else out.parent
    media = MediaLookup(inputs.media_indexes)
    prompts, skipped = read_prompts(inputs.manifests, grpo["label_column"], inputs.label_files, audio_text=audio_text)
    kept_examples, no_media = attach_media([p.example for p in prompts], media)
    with_clip = {e.sample_id: e for e in kept_examples}  # a question appears once in the manifests
    prompts = [dataclasses.replace(p, example=with_clip[p.example.sample_id]) for p in prompts
               if p.example.sample_id in with_clip]
    skipped.update(no_media)
    if not prompts:
        raise ValueError(f"no GRPO prompt is usable (manifests {inputs.manifests}; left out: {dict(skipped)})")
    reward_functions = rewards if rewards is not None else build_rewards(grpo, label_column=grpo["label_column"])

    record = {
        "grpo": {k: v for k, v in grpo.items() if k not in RESUMABLE_KEYS},
        "student": student_record(spec, student),
        "rewards": sorted(reward_functions),
        "prompt": STUDENT_PROMPT,
        "prompts_digest": prompts_digest(prompts),
        **({"audio_text_questions": True} if audio_text else {}),
    }
    finished = finished_summary(out, SUMMARY, record)
    if finished is not None:
        log.info("%s is already this run's final checkpoint: nothing to do", out)
        return finished

    args = training_arguments(grpo, "grpo", output_dir, num_train_epochs=1.0)  # max_steps -1: one pass
    with args.main_process_first(local=False, desc="checkpoint directory"):  # one shared directory
        main = args.process_index == 0
        resume = prepare_run_dir(output_dir, record) if main else last_complete_checkpoint(output_dir)
    resume_step = int(CHECKPOINT_DIR.match(resume.name).group(1)) if resume else 0
    if resume:
        log.info("resuming from %s", resume)

    from avrt.models.hf_backend import load_processor

    adapter = get_adapter(spec.family)
    processor = load_processor(spec)
    model = load_student(spec, adapter)
    frozen = freeze_modules(model, list(student["freeze"]))
    ref_model = None
    if grpo["beta"] > 0:
        ref_model = load_student(spec, adapter).eval().requires_grad_(False)
    counts = parameter_counts(model)
    log.info("student %s: %d parameters, %d trainable; frozen per module: %s; %d prompts (left out: %s)",
             spec.name, counts["total"], counts["trainable"], frozen, len(prompts), dict(skipped))

    student_inputs = StudentInputs(spec, adapter, processor, media)
    tokenizer = student_inputs.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rollout = make_rollout(grpo, spec, student_inputs, model, pad_id, args)

    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(output_dir / "tensorboard"))
    trainer = GRPOTrainer(
        grpo=grpo,
        ref_model=ref_model,
        rollout=rollout,
        rewards=reward_functions,
        metrics_path=output_dir / METRICS,
        resume_step=resume_step,
        model=model,
        args=args,
        train_dataset=GRPODataset(prompts, student_inputs),
        data_collator=GRPOCollator(grpo["num_generations"], pad_id, feature_dtype=next(model.parameters()).dtype),
        processing_class=processor,
        callbacks=list(callbacks),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    curve = read_partial_jsonl(output_dir / METRICS) if trainer.is_world_process_zero() else []
    summary = {
        "prompts": len(prompts),
        "left_out": dict(skipped),
        "resumed_from": str(resume) if resume else None,
        "global_steps": trainer.state.global_step,
        "reward_curve": [{k: r[k] for k in ("step", "reward", "accuracy") if k in r} for r in curve],
        "parameters": counts,
        "frozen_parameters": frozen,
        "world_size": args.world_size,
        "run": record,
    }
    publish_final(trainer, out, SUMMARY, summary)
    last = summary["reward_curve"][-1] if summary["reward_curve"] else {}
    log.info("final checkpoint: %s (%d steps, last mean reward %s)", out, summary["global_steps"],
             last.get("reward", math.nan))
    return summary


# ---- command line -----------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_config_argument(parser)  # reads `grpo`, `student` and the student's `models` entry
    parser.add_argument("--checkpoint", help="starting checkpoint (the SFT stage's); without it, the student's "
                                             "own `models` entry at its revision (grpo.init base)")
    parser.add_argument("--shards", nargs="+", required=True, help="shard manifests (the prompts: their train split)")
    parser.add_argument("--media", nargs="+", required=True, help="media indexes of all shards")
    parser.add_argument("--labels", nargs="*", default=[], help="label files (grpo.label_files)")
    parser.add_argument("--out", required=True, help="final checkpoint directory")
    parser.add_argument("--checkpoints", help="directory of intermediate checkpoints (default: the parent of --out)")


def run(args) -> int:
    config = load_config(*args.config)
    spec = model_spec(config, config["student"]["model"])
    if args.checkpoint:  # a trained stage's directory: the spec's hub revision does not apply to it
        spec = dataclasses.replace(spec, checkpoint=args.checkpoint, revision=None)
    elif config["grpo"]["init"] != "base":
        raise SystemExit("avrt grpo: --checkpoint (the SFT stage's) is required unless config key 'grpo.init' is base")
    inputs = GRPOInputs(manifests=args.shards, media_indexes=args.media, label_files=args.labels)
    train_grpo(config["grpo"], config["student"], spec, inputs, args.out, args.checkpoints,
               audio_text=audio_text_questions(config))
    return 0
