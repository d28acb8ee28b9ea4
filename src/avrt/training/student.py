"""The trainable student: loaded with its family's transformers class, encoders frozen, optional LoRA.

Shared by SFT and GRPO. Loading differs from `avrt.models.hf_backend.load_hf_model` in two ways
training needs: no `device_map` (the trainer places the model on its rank's device, or DeepSpeed
does) and no `.eval()`. The checkpoint, class and dtype come from the same spec and adapter.

Freezing: a name in `student.freeze` (e.g. ``visual``, ``audio_tower``) freezes every parameter
whose dotted path contains it as a whole component (``model.visual.blocks.0...``), so the rule
holds whatever prefix a transformers version or a PEFT wrapper puts in front.
"""

from __future__ import annotations

import logging
import re

import transformers

from avrt.models.adapters import FamilyAdapter
from avrt.models.hf_backend import DTYPES
from avrt.models.spec import ModelSpec
from avrt.core.resumable import inputs_identity

log = logging.getLogger(__name__)


def load_student(spec: ModelSpec, adapter: FamilyAdapter, dtype: str | None = None):
    """The spec's checkpoint in its family's transformers class, in train mode.

    `dtype` (a key of `DTYPES`) overrides the spec's, e.g. float32 master weights for training
    without DeepSpeed.
    """
    if adapter.hf_model_class is None:
        raise ValueError(f"model '{spec.name}': family '{spec.family}' has no transformers class to train")
    model_class = getattr(transformers, adapter.hf_model_class)
    model = model_class.from_pretrained(
        spec.checkpoint, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
        dtype=DTYPES[dtype or spec.dtype],
    )
    return model.train()


def _component_pattern(names: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?:^|\.)(?:{alternatives})\.")


def freeze_modules(model, names: list[str]) -> dict[str, int]:
    """Freeze the parameters under the named modules; returns frozen parameter counts per name.

    A name that matches nothing is logged (a family without that encoder, e.g. Qwen2-Audio has
    no `visual`); a non-empty list that matches nothing at all is an error (a misspelt name).
    """
    counts = {name: 0 for name in names}
    patterns = {name: _component_pattern([name]) for name in names}
    for param_name, param in model.named_parameters():
        for name, pattern in patterns.items():
            if pattern.search(param_name):
                param.requires_grad_(False)
                counts[name] += param.numel()
    missing = [n for n, c in counts.items() if c == 0]
    if names and len(missing) == len(names):
        raise ValueError(f"config key 'student.freeze': no parameter lies under any of {names}")
    for name in missing:
        log.warning("student.freeze: the model has no module named %r; nothing frozen for it", name)
    return counts


def apply_lora(model, lora: dict, frozen: list[str]):
    """Wrap the model with LoRA adapters on `target_modules`, never inside the frozen modules."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        # Encoders stay as they are: their attention projections share the target names.
        exclude_modules=f".*{_component_pattern(frozen).pattern}.*" if frozen else None,
    )
    model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == 0:
        raise ValueError(f"config key 'sft.lora.target_modules': {lora['target_modules']} matched no module")
    return model


def merged_for_saving(model):
    """The plain transformers model to save: LoRA adapters merged into the base weights."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def parameter_counts(model) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def student_record(spec: ModelSpec, student: dict) -> dict:
    """The starting model of a training run, for its run record. The checkpoint's files are part of
    it: a starting checkpoint retrained under the same path (a rerun of SFT before GRPO) is a new
    run, never resumed into."""
    return {"checkpoint": spec.checkpoint, "files": inputs_identity([spec.checkpoint]), "revision": spec.revision,
            "family": spec.family, "dtype": spec.dtype, "freeze": list(student["freeze"])}
