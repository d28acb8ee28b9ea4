"""The Trainer both training stages run on: its arguments from a config block, and a resume that
restores the weights of every student family.

transformers 5 saves a model in its hub key layout (`save_pretrained(save_original_format=True)`:
Qwen2.5-Omni's thinker as ``thinker.model.layers...``) but `Trainer._load_from_checkpoint` loads
a checkpoint with a plain `load_state_dict(strict=False)`, so on resume no key matches and
training silently continues from the base weights. Here the weights are read back through
`from_pretrained`, which applies the key conversion, and loaded strictly. DeepSpeed restores its
own module states and PEFT its adapters, so those paths are left to the Trainer.

Two more things make a resumed run match an uninterrupted one:
- Resumed from the run's last checkpoint (a job killed before publishing its final checkpoint),
  the Trainer would train one step past `max_steps` whenever `max_steps` ends inside an epoch:
  it finds the epoch unfinished and checks for the end only after a step. Here it trains none.
- The loss summed since the last log is not in a checkpoint, so a logging window cut by a
  resume would log the mean of its resumed steps only. Every checkpoint ends a logging window.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from avrt.training.launch import deepspeed_config

log = logging.getLogger(__name__)


class LogAtCheckpoints(TrainerCallback):
    """Logs at every step that saves a checkpoint (runs after the Trainer's own flow callback)."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            control.should_log = True
        return control


class ResumableTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(LogAtCheckpoints())

    def compute_loss(self, model, inputs, *args, **kwargs):
        # No KV cache in a training forward: the model would otherwise keep one for the whole sequence.
        return super().compute_loss(model, {**inputs, "use_cache": False}, *args, **kwargs)

    def _init_training_state(self, max_steps: int, num_update_steps_per_epoch: int, num_train_epochs: int,
                             resume_from_checkpoint: str | None, trial) -> tuple[int, int]:
        epochs_trained, steps_trained_in_epoch = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial)
        if self.state.global_step >= max_steps:  # resumed from the last checkpoint: no epoch left to run
            return num_train_epochs, 0
        return epochs_trained, steps_trained_in_epoch

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        from peft import PeftModel

        model = model if model is not None else self.model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or isinstance(model, PeftModel):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        restored = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype)
        model.load_state_dict(restored.state_dict(), strict=True)
        log.info("restored the weights of %s", resume_from_checkpoint)


def training_arguments(block: dict, stage: str, output_dir: Path, **stage_specific):
    """transformers TrainingArguments from the config's `sft` or `grpo` block (`stage`); the
    stage's own settings (epochs, evaluation, Adam betas) come in `stage_specific`."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=block["max_steps"],
        per_device_train_batch_size=block["per_device_batch_size"],
        gradient_accumulation_steps=block["gradient_accumulation_steps"],
        learning_rate=block["learning_rate"],
        lr_scheduler_type=block["lr_scheduler"],
        warmup_steps=block["warmup_steps"],
        optim="adamw_torch",
        weight_decay=block["weight_decay"],
        max_grad_norm=block["max_grad_norm"],
        bf16=block["bf16"],
        # Each decoder layer is recomputed in the backward pass. Non-reentrant: gradients reach the
        # trained layers although no input requires grad (frozen embeddings and encoders, LoRA).
        gradient_checkpointing=block["gradient_checkpointing"],
        gradient_checkpointing_kwargs={"use_reentrant": False} if block["gradient_checkpointing"] else None,
        deepspeed=deepspeed_config(block["deepspeed"], stage) if block["deepspeed"] else None,
        save_strategy="steps",
        save_steps=block["save_steps"],
        save_total_limit=block["save_total_limit"],
        logging_steps=block["logging_steps"],
        logging_first_step=True,
        report_to=list(block["report_to"]) or "none",
        seed=block["seed"],
        dataloader_num_workers=block["dataloader_num_workers"],
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,  # the collators' output is exactly what the model / loss reads
        disable_tqdm=True,  # job logs get the trainer's periodic log lines instead of a bar
        **stage_specific,
    )
