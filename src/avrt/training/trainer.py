"""The Trainer both training stages run on: its arguments from a config block, and a resume that
restores the weights of every student family.

transformers 5 saves a model in its hub key layout (`save_pretrained(save_original_format=True)`:
Qwen2.5-Omni's thinker as ``thinker.model.layers...``) but `Trainer._load_from_checkpoint` loads
a checkpoint with a plain `load_state_dict(strict=False)`, so on resume no key matches and
training silently continues from the base weights. Here the weights are read back through
`from_pretrained`, which applies the key conversion, and loaded strictly. DeepSpeed restores its
own module states and PEFT its adapters, so those paths are left to the Trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import Trainer

from avrt.training.launch import deepspeed_config

log = logging.getLogger(__name__)


class ResumableTrainer(Trainer):
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
