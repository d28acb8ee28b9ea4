"""PEFT adapters that carry weights besides their LoRA: applied whole, then merged into the model.

Audio Flamingo 3's think mode is such an adapter. What this module relies on:

- nvidia/audio-flamingo-3-hf keeps it in `think/`: a PEFT LoRA adapter (`adapter_config.json`,
  `adapter_model.safetensors`) and `non_lora_trainables.bin`, the other weights trained with it
  (file links in foldl/chatllm.cpp#118). The model card loads it as
  `model.load_state_dict(torch.load("think/non_lora_trainables.bin"), strict=False)`, then
  `PeftModel.from_pretrained(model, repo, subfolder="think")`.
- The file comes from AF3's trainer (NVIDIA/audio-flamingo, scripts/stage35_af3.sh with
  llava/train/train.py): LoRA on the LLM, and `get_peft_state_non_lora_maybe_zero_3` saves every
  other parameter still trainable, named as in the PEFT-wrapped model. So a name may start with
  `base_model.model.`, which the trainer's own loader strips (llava/model/builder.py, quoted in
  NVIDIA/audio-flamingo#82). The same trainer lists LoRA targets by full module name
  (`find_all_linear_names`: every nn.Linear of the LLM but lm_head).
- Names follow AF3's checkpoint layout: `language_model.model.*`, `language_model.lm_head.*`,
  `audio_tower.*`, `multi_modal_projector.*`. transformers 5 keeps the modules under
  `model.language_model` (the decoder without its head), `model.audio_tower`,
  `model.multi_modal_projector` and `lm_head` (huggingface/transformers#45534), and renames
  checkpoint keys while loading (conversion_mapping.py: audioflamingo3 uses qwen2_audio's renames),
  in reverse while saving. `nn.Module.load_state_dict` renames nothing: on transformers 5 the model
  card's call matches no key and says nothing. Keys are therefore renamed here with transformers'
  own renames for the model, and a file that names no weight of the model is an error.
- PEFT >= 0.18 renames the adapter's LoRA weight keys the same way
  (peft/utils/transformers_weight_conversion.py) but not `target_modules`; full module names in
  the checkpoint layout are renamed here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NON_LORA_FILE = "non_lora_trainables.bin"
PEFT_PREFIX = "base_model.model."  # names of a PEFT-wrapped model's parameters


class AdapterError(ValueError):
    """An adapter that does not fit its model; the message names the file."""


@dataclass(frozen=True)
class NonLoraWeights:
    """What `load_non_lora_weights` wrote into the model."""

    path: Path
    loaded: tuple[str, ...]  # the model's state-dict keys written
    unmatched: tuple[str, ...]  # keys of the file that name no weight of the model


def checkpoint_key_renamer(model) -> Callable[[str], str]:
    """A checkpoint key (or module name) -> the model's own name, by the renames transformers
    applies when it loads the model's checkpoints; identity where it has none."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming, rename_source_key
    except ImportError:  # transformers 4: checkpoint keys are the model's own names
        return lambda key: key
    renamings = [t for t in get_model_conversion_mapping(model) if isinstance(t, WeightRenaming)]
    return lambda key: rename_source_key(key, renamings, [])[0]


def _model_key(key: str, own: dict, rename: Callable[[str], str]) -> str | None:
    key = key.removeprefix(PEFT_PREFIX)
    for candidate in (key, rename(key)):
        if candidate in own:
            return candidate
    return None


def load_non_lora_weights(model, adapter_dir: str | Path) -> NonLoraWeights | None:
    """Write the adapter's `non_lora_trainables.bin` into `model` (None when it has none).

    AdapterError naming the file when none of its keys, or a key of another shape, fits the model.
    """
    import torch

    path = Path(adapter_dir) / NON_LORA_FILE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not state:
        raise AdapterError(f"{path}: expected a non-empty mapping of parameter names to tensors")
    own = model.state_dict()
    rename = checkpoint_key_renamer(model)
    mapped, unmatched = {}, []
    for key, tensor in state.items():
        name = _model_key(key, own, rename)
        if name is None:
            unmatched.append(key)
        elif tuple(tensor.shape) != tuple(own[name].shape):
            raise AdapterError(
                f"{path}: {key!r} has shape {tuple(tensor.shape)}, the model's {name!r} {tuple(own[name].shape)}"
            )
        else:
            mapped[name] = tensor
    if not mapped:
        raise AdapterError(
            f"{path}: none of its {len(state)} tensors names a weight of {type(model).__name__}"
            f" (its keys: {sorted(state)[:3]}; the model's: {sorted(own)[:3]})"
        )
    if unmatched:
        log.warning("%s: %d of %d tensors name no weight of %s, left out: %s", path, len(unmatched), len(state),
                    type(model).__name__, unmatched[:5])
    model.load_state_dict(mapped, strict=False)
    log.info("%s: loaded %d tensors into %s", path, len(mapped), type(model).__name__)
    return NonLoraWeights(path=path, loaded=tuple(sorted(mapped)), unmatched=tuple(unmatched))


def model_target_modules(model, targets):
    """The adapter's `target_modules` as the model names its modules: a full name in the checkpoint
    layout is renamed; short names (`q_proj`) and regular expressions are PEFT's to match."""
    if targets is None or isinstance(targets, str):
        return targets
    names = [name for name, _ in model.named_modules()]
    rename = checkpoint_key_renamer(model)

    def found(target: str) -> bool:  # PEFT's rule for a listed name: the module's name or its suffix
        return any(name == target or name.endswith(f".{target}") for name in names)

    return type(targets)(t if found(t) or not found(rename(t)) else rename(t) for t in targets)


def merge_lora(model, adapter_dir: str | Path):
    """Apply the adapter's LoRA to `model` and merge it: a plain model with no PEFT modules left.

    AdapterError naming the folder when a LoRA weight of the model is missing from the adapter or
    one of the adapter's fits no module (PEFT would leave the first at its initial value).
    """
    from peft import PeftConfig, PeftModel

    adapter_dir = Path(adapter_dir)
    config = PeftConfig.from_pretrained(str(adapter_dir))
    config.target_modules = model_target_modules(model, config.target_modules)
    peft_model = PeftModel(model, config)
    result = peft_model.load_adapter(str(adapter_dir), adapter_name="default")
    unexpected = [k for k in result.unexpected_keys if "lora_" in k]
    if result.missing_keys or unexpected:
        raise AdapterError(
            f"{adapter_dir}: the LoRA does not fit {type(model).__name__}: missing {result.missing_keys[:3]}"
            f" ({len(result.missing_keys)}), not used {unexpected[:3]} ({len(unexpected)})"
        )
    log.info("%s: merged a rank-%s LoRA into %d modules", adapter_dir, getattr(config, "r", "?"),
             len(peft_model.base_model.targeted_module_names))
    return peft_model.merge_and_unload()


def apply_adapter(model, adapter_dir: str | Path):
    """The adapted model, plain: the adapter's non-LoRA weights (if any) written in, then its LoRA
    merged, in the model card's order."""
    load_non_lora_weights(model, adapter_dir)
    return merge_lora(model, adapter_dir)
