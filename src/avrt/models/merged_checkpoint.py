"""A model merged with its PEFT adapter into one plain checkpoint: how vLLM runs Audio Flamingo 3 think.

A vLLM `LoRARequest` carries LoRA weights only. AF3's think adapter also replaces weights of the
base model (`non_lora_trainables.bin`, see `peft_adapter`), so under vLLM it is applied ahead of
time: `avrt merge-adapter` loads the model with the transformers backend's own loader
(`load_hf_model`: non-LoRA weights written in, LoRA merged, in the spec's dtype) and saves model
and processor with `save_pretrained`. transformers 5 saves in the checkpoint layout
(`language_model.model.*`, `audio_tower.*`, `multi_modal_projector.*`), the names vLLM's
AudioFlamingo3ForConditionalGeneration loads. Both backends thus run the same weights.

The folder is stamped (`merge_stamp.json`) with a digest of what the merge reads (`MERGE_KEYS`).
The workflow names the folder `<model>-<digest>` (rule merge_adapter, workflow/rules/models.smk):
a changed input makes a new folder, and a rerun with the same inputs finds the stamp and does
nothing. A local checkpoint or adapter is identified by its path; the workflow re-makes the merge
when such a folder is newer than it.

    avrt merge-adapter --config results/<run>/config.yaml --model audio_teacher --out DIR
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from dataclasses import replace
from pathlib import Path

from avrt.core.config import ConfigError, add_config_argument, load_config
from avrt.core.io import InputFileError
from avrt.models.saved_layout import save_checkpoint
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

# What a merge reads of a spec; its digest names and stamps the merged checkpoint.
MERGE_KEYS = ("family", "checkpoint", "revision", "processor", "adapter", "adapter_subfolder", "dtype")
STAMP = "merge_stamp.json"


def needs_merge(spec: ModelSpec) -> bool:
    """Whether jobs load `spec` from its merged checkpoint: a vLLM model with a PEFT adapter."""
    return spec.backend == "vllm" and bool(spec.adapter)


def merge_inputs(spec: ModelSpec) -> dict:
    return {key: getattr(spec, key) for key in MERGE_KEYS}


def merge_digest(spec: ModelSpec) -> str:
    text = json.dumps(merge_inputs(spec), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def merged_name(spec: ModelSpec) -> str:
    """The folder name the workflow gives the spec's merged checkpoint: `<name>-<digest>`, the name
    reduced to characters safe in a path."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', spec.name)}-{merge_digest(spec)}"


def read_stamp(folder: str | Path) -> dict | None:
    path = Path(folder) / STAMP
    return json.loads(path.read_text()) if path.is_file() else None


def merge_adapter(spec: ModelSpec, out: str | Path) -> bool:
    """Write `spec`'s checkpoint merged with its adapter to `out`; False when `out` already holds
    that merge (its stamp's digest is the spec's). A folder holding anything else is refused."""
    if not spec.adapter:
        raise ConfigError(f"config key 'models.{spec.name}.adapter' is not set: there is no adapter to merge")
    out = Path(out)
    digest = merge_digest(spec)
    stamp = read_stamp(out)
    if stamp is not None and stamp.get("digest") == digest:
        log.info("%s: already holds models.%s merged with its adapter (digest %s)", out, spec.name, digest)
        return False
    if out.exists():
        held = f"the merge of other inputs {stamp.get('inputs')}" if stamp else f"no {STAMP}"
        raise FileExistsError(f"{out}: holds {held}; remove it or choose another --out")

    from avrt.models.adapters import get_adapter
    from avrt.models.hf_backend import load_hf_model, load_processor

    model = load_hf_model(spec, get_adapter(spec.family))
    processor = load_processor(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staging = Path(tmp) / "merged"
        save_checkpoint(model, staging)
        processor.save_pretrained(staging)
        (staging / STAMP).write_text(json.dumps({"digest": digest, "inputs": merge_inputs(spec)}, indent=2) + "\n")
        staging.rename(out)  # moved in whole: a folder with a stamp is a complete merge
    log.info("%s: models.%s merged with its adapter (digest %s)", out, spec.name, digest)
    return True


def merged_spec(spec: ModelSpec, folder: str | Path) -> ModelSpec:
    """`spec` loading from its merged checkpoint `folder` (model and processor), with no adapter.
    InputFileError when the folder's stamp is not of this spec's merge."""
    stamp = read_stamp(folder)
    if stamp is None:
        raise InputFileError(f"{folder}: no {STAMP}, so no merged checkpoint `avrt merge-adapter` wrote")
    if stamp.get("digest") != merge_digest(spec):
        raise InputFileError(f"{folder}: merges {stamp.get('inputs')}, not models.{spec.name}'s {merge_inputs(spec)}")
    return replace(spec, checkpoint=str(folder), revision=None, processor=None, adapter=None, adapter_subfolder=None)


def add_merged_argument(parser) -> None:
    """`--merged-checkpoint DIR` of the stages that load a model (the workflow passes it)."""
    parser.add_argument("--merged-checkpoint", type=Path, default=None, metavar="DIR",
                        help="the model merged with its adapter (`avrt merge-adapter`), loaded instead of its "
                             "checkpoint and adapter: how vLLM runs an adapter with non-LoRA weights")


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", required=True, help="name of one `models` entry: its checkpoint and adapter")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the merged checkpoint (the workflow names it <model>-<digest>)")


def run(args) -> int:
    config = load_config(*args.config)
    merge_adapter(model_spec(config, args.model), args.out)
    return 0
