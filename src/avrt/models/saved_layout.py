"""Checkpoints written in the layout of the hub repositories, which vLLM's loaders read.

transformers 5.19 (the version vLLM 0.32 pins) saves two families in layouts vLLM cannot load:
- Qwen2-Audio and Audio Flamingo 3: the language model one `model.` too deep
  (``language_model.model.model.layers...``; the hub repositories and vLLM name it
  ``language_model.model.layers...``). transformers reads both.
- The Qwen2.5-Omni thinker alone, the model SFT and GRPO train: ``qwen2_5_omni_thinker`` with its
  own names (``model.layers...``). vLLM's registry knows the whole model only
  (``Qwen2_5OmniForConditionalGeneration``: weights under ``thinker.``, settings in
  ``thinker_config``), so the thinker is written as the whole model without its speech head
  (``enable_audio_output: false``), as the hub checkpoint is laid out; the thinker class loads it
  as it loads the hub checkpoint.
`save_checkpoint` is how every stage here writes a model: the trained students, merged adapters,
the tiny zoo.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from avrt.core.io import atomic_path

INDEX = "model.safetensors.index.json"
DEEP_LANGUAGE_MODEL = ("language_model.model.model.", "language_model.model.")
OMNI_THINKER = "qwen2_5_omni_thinker"
TALKER_TOKEN_KEYS = ("audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id",
                     "audio_end_token_id", "vision_start_token_id", "vision_end_token_id")
TALKER_SPEECH_KEYS = ("tts_text_start_token_id", "tts_text_end_token_id", "tts_text_pad_token_id",
                      "tts_codec_start_token_id", "tts_codec_end_token_id", "tts_codec_pad_token_id",
                      "tts_codec_mask_token_id")


def save_checkpoint(model, out: str | Path) -> None:
    """`model.save_pretrained(out)`, then the hub layout (`to_hub_layout`)."""
    model.save_pretrained(out)
    to_hub_layout(out)


def to_hub_layout(folder: str | Path) -> None:
    """Rewrite a checkpoint folder transformers saved into the hub layout, in place (a no-op for
    one already in it)."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():  # an adapter, not a model
        return
    model_type = json.loads(config_path.read_text()).get("model_type")
    _rename_weights(folder, hub_key(model_type))
    if model_type == OMNI_THINKER:
        _write_whole_omni_config(folder)


def hub_key(model_type: str | None) -> Callable[[str], str]:
    """A weight's name as transformers saves it (or `revert_weight_conversion` gives it) -> its
    name in the hub layout, for a model of `model_type`."""
    if model_type == OMNI_THINKER:
        return lambda key: f"thinker.{key}"
    old, new = DEEP_LANGUAGE_MODEL
    return lambda key: new + key[len(old):] if key.startswith(old) else key


def _weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX
    if index.is_file():
        return sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def _rename_weights(folder: Path, rename) -> None:
    """Every file is rewritten as a new file moved into place (`atomic_path`): one hard-linked from
    another checkpoint (checkpoint selection publishes that way) is replaced, never written through."""
    from safetensors.torch import load_file, save_file

    for path in _weight_files(folder):  # one shard in memory at a time
        tensors = load_file(path)
        renamed = {rename(key): tensor for key, tensor in tensors.items()}
        if renamed.keys() != tensors.keys():
            with atomic_path(path) as tmp:
                save_file(renamed, tmp, metadata={"format": "pt"})
    index = folder / INDEX
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = {rename(key): shard for key, shard in data["weight_map"].items()}
        with atomic_path(index) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")


def _write_whole_omni_config(folder: Path) -> None:
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniTalkerConfig, Qwen2_5OmniThinkerConfig
    from transformers.utils import logging as hf_logging

    thinker = Qwen2_5OmniThinkerConfig.from_pretrained(folder)
    # The speech head is never built. Its config names the thinker's media tokens, and its own
    # speech tokens where the vocabulary holds them (a small model's falls back to padding).
    vocab, pad = thinker.text_config.vocab_size, thinker.text_config.pad_token_id or 0
    defaults = {f.name: f.default for f in dataclasses.fields(Qwen2_5OmniTalkerConfig)}
    talker = {key: getattr(thinker, key) for key in TALKER_TOKEN_KEYS}
    talker.update({key: defaults[key] if defaults[key] < vocab else pad for key in TALKER_SPEECH_KEYS})
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its field checks print a default (7B) speech head's ids against our vocabulary
    try:
        whole = Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), talker_config=talker, enable_audio_output=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    whole.architectures = ["Qwen2_5OmniForConditionalGeneration"]
    whole.dtype = thinker.dtype
    with atomic_path(folder / "config.json") as tmp:
        whole.to_json_file(tmp, use_diff=False)  # a diff would build a default (7B-sized) config
