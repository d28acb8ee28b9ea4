"""What the training stages need before they run: per-GPU memory and GPU-hours of SFT and GRPO.

    avrt plan --config config/config.yaml [more configs] [--json]

The student is built from its real config on the meta device (no weights are read or allocated):
the checkpoint's own `config.json` (a local directory, or the Hugging Face cache), else the copy
in `avrt/models/configs/` for the reference checkpoints. The stages' own freeze (`student.freeze`)
and LoRA (`sft.lora`) are applied, so the parameter counts are the ones training logs.

Memory per GPU, in bytes (P: all parameters, T: trainable ones, N: GPUs of the job; ZeRO paper,
Rajbhandari et al. 2020, mixed-precision Adam):
- weights: P x w, w the bytes of the training dtype (bf16 2; float32 4 for SFT without DeepSpeed
  or LoRA, as `avrt.training.sft` trains). GRPO adds the frozen reference model, P x 2, when beta > 0.
- gradients and Adam: ZeRO-2 keeps the 16-bit gradients (2T) and the float32 master weights and
  Adam moments (12T) sharded over the N GPUs: 14T / N on the GPU; `zero2_offload` moves the
  optimizer states and the gradients it steps on to CPU memory (14T / N per GPU, shown apart).
  Without DeepSpeed: gradients T x w and torch AdamW's two moments 2T x w, unsharded.
- activations of one micro-batch of R rows of S tokens (the decoder only: the encoders are frozen
  and run under no grad, so they keep nothing for the backward). Per decoder layer and token, a
  layer keeps its two norm inputs and outputs, q, k, v and their rotated copies, the attention
  output and the four MLP tensors: a = 6h + 3k + 4i values (h hidden, k key/value width, i MLP
  width), 2 bytes each under bf16 (memory-efficient attention: no S x S scores). Without
  checkpointing L x R x S x a; with it each layer keeps only its input (L x R x S x h) plus one layer's
  a during its recompute. The logits come on top either way: SFT keeps them in 16 bits, a float32
  copy and its log-softmax (R x S x V x (2 + 4 + 4)); GRPO keeps 16-bit logits over prompt and
  completion and three float32 tensors over the completion (R x V x (2S + 12C)).
Not counted: the CUDA context and allocator fragmentation (a few GB), DeepSpeed's communication
buckets, the rollout's KV cache (freed before the log-prob forward) and vLLM's share of the GPU.

Time: a training token costs 2 FLOPs per dense decoder parameter forward, 2 more backward (input
gradients) and 2 per trained parameter (weight gradients), plus one more forward under checkpointing;
causal attention adds 2 x L x h x S per token forward (x 3 with the backward). The frozen encoders
run forward once per example: 2 x their parameters x their input positions (4 patches per video
token, 2 audio frames per audio token). GRPO adds the reference forward and the rollout: its prefill
at the same rate, its C decode steps memory-bound, each reading the weights once from HBM
(`--hbm-tbps`). GPU-hours = FLOPs / (peak x MFU) + decode time, summed over every micro-step of
every GPU. Sequence lengths are options (a 10 s AVQA clip: 8 frames at 640 px are 1,196 video
tokens, 10 s of audio 250 tokens).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from avrt.core.config import add_config_argument, load_config
from avrt.models.adapters import get_adapter
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

BUNDLED_CONFIGS = Path(__file__).parent / "models" / "configs"
GB = 1e9
# Paper values where the paper gives them; the rest chosen (see the option help).
AVRT20K_TRAIN = 19_224 - 945  # AVRT-20K: 19,224 kept, 945 of them val
AVQA_TRAIN = 40_127


@dataclass(frozen=True)
class Workload:
    """Token counts of one example, and the hardware the estimate assumes."""

    video_tokens: int = 1196
    audio_tokens: int = 250
    text_tokens: int = 250
    trace_tokens: int = 200
    sft_examples: int = AVRT20K_TRAIN
    grpo_prompts: int = AVQA_TRAIN
    peak_tflops: float = 989.0
    mfu: float = 0.35
    hbm_tbps: float = 3.35
    gpu_memory_gb: float = 80.0

    @property
    def prompt_tokens(self) -> int:
        return self.video_tokens + self.audio_tokens + self.text_tokens


# ---- the model, on the meta device -----------------------------------------------------------
def _config_dict(spec: ModelSpec) -> dict:
    """The checkpoint's config.json as a dict: its own (local or cached), else the bundled copy."""
    bundled = BUNDLED_CONFIGS / f"{spec.checkpoint.replace('/', '--')}.json"
    local = Path(spec.checkpoint) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec.checkpoint, "config.json", revision=spec.revision, local_files_only=True)
        return json.loads(Path(path).read_text())
    except Exception as err:  # not in the cache (or no hub access): the bundled copy, if there is one
        if bundled.is_file():
            return json.loads(bundled.read_text())
        raise ValueError(f"model '{spec.name}': no config.json for {spec.checkpoint!r} in a local directory, the "
                         f"Hugging Face cache or {BUNDLED_CONFIGS} ({err}); run `huggingface-cli download "
                         f"{spec.checkpoint} config.json` first") from None


def _class_config(data: dict, config_class):
    """The part of a config dict that `config_class` describes (Qwen2.5-Omni: its `thinker_config`)."""
    if data.get("model_type") == config_class.model_type:
        return config_class(**data)
    for value in data.values():
        if isinstance(value, dict) and value.get("model_type") == config_class.model_type:
            return config_class(**value)
    raise ValueError(f"config of model_type {data.get('model_type')!r} holds no {config_class.__name__}")


def build_student(spec: ModelSpec, freeze: list[str], lora: dict | None = None):
    """The student as training builds it, on the meta device: returns (model, frozen counts per name)."""
    import torch
    import transformers

    from avrt.training.student import apply_lora, freeze_modules

    adapter = get_adapter(spec.family)
    if adapter.hf_model_class is None:
        raise ValueError(f"model '{spec.name}': family '{spec.family}' has no transformers class to train")
    model_class = getattr(transformers, adapter.hf_model_class)
    data = _config_dict(spec)
    if hasattr(model_class, "config_class"):
        config = _class_config(data, model_class.config_class)
    else:  # an Auto class
        config = transformers.AutoConfig.for_model(**data)
    with torch.device("meta"):
        build = getattr(model_class, "_from_config", None) or model_class.from_config
        model = build(config, dtype=torch.bfloat16)
        frozen = freeze_modules(model, freeze)
        if lora:
            model = apply_lora(model, lora, freeze)
    return model, frozen


@dataclass(frozen=True)
class ModelShape:
    total: int  # all parameters
    trainable: int
    frozen: dict  # frozen parameters per `student.freeze` name
    decoder: int  # decoder parameters that compute per token: all but the encoders and the input embedding
    encoders: int  # parameters of the frozen modules
    layers: int
    hidden: int
    kv_width: int
    intermediate: int
    vocab: int


def model_shape(spec: ModelSpec, freeze: list[str], lora: dict | None = None) -> ModelShape:
    model, frozen = build_student(spec, freeze, lora)
    text = model.config.get_text_config()
    total = sum(p.numel() for p in model.parameters())
    encoders = sum(frozen.values())
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return ModelShape(
        total=total, trainable=sum(p.numel() for p in model.parameters() if p.requires_grad), frozen=frozen,
        decoder=total - encoders - model.get_input_embeddings().weight.numel(), encoders=encoders,
        layers=text.num_hidden_layers, hidden=text.hidden_size, kv_width=text.num_key_value_heads * head_dim,
        intermediate=text.intermediate_size, vocab=text.vocab_size,
    )


# ---- memory and time --------------------------------------------------------------------------
def model_state_bytes(shape: ModelShape, weight_bytes: int, deepspeed: str | None, gpus: int) -> dict:
    """Weights, gradients and Adam states on each GPU, and what ZeRO-Offload puts in CPU memory."""
    states = {"weights": shape.total * weight_bytes, "grads": 0.0, "optimizer": 0.0, "cpu_optimizer": 0.0}
    if deepspeed == "zero2":
        states["grads"] = 2 * shape.trainable / gpus
        states["optimizer"] = 12 * shape.trainable / gpus
    elif deepspeed == "zero2_offload":
        states["cpu_optimizer"] = 14 * shape.trainable / gpus
    else:
        states["grads"] = shape.trainable * weight_bytes
        states["optimizer"] = 2 * shape.trainable * weight_bytes
    return states


def activation_bytes(shape: ModelShape, rows: int, tokens: int, checkpointing: bool, act_bytes: int) -> float:
    """Decoder activations kept for the backward, logits excluded (see the module docstring)."""
    per_layer_token = (6 * shape.hidden + 3 * shape.kv_width + 4 * shape.intermediate) * act_bytes
    if not checkpointing:
        return shape.layers * rows * tokens * per_layer_token
    return shape.layers * rows * tokens * shape.hidden * act_bytes + rows * tokens * per_layer_token


def train_flops(shape: ModelShape, tokens: int, trained: int, checkpointing: bool) -> float:
    """Forward and backward of `tokens` tokens of one sequence through the decoder."""
    dense = 2 * shape.decoder * tokens
    attention = 2 * shape.layers * shape.hidden * tokens * tokens  # causal QK^T and AV
    forward = dense + attention
    backward = dense + 2 * attention + 2 * trained * tokens
    return forward * (2 if checkpointing else 1) + backward


def encoder_flops(shape: ModelShape, work: Workload) -> float:
    """One forward of the frozen encoders over one example's media."""
    # 2x2 patches merge into one video token; two 50 Hz audio frames pool into one audio token
    return 2 * (shape.frozen.get("visual", 0) * 4 * work.video_tokens +
                shape.frozen.get("audio_tower", 0) * 2 * work.audio_tokens)


def _steps(block: dict, examples: int, epochs: float = 1.0) -> int:
    if block["max_steps"] > 0:
        return block["max_steps"]
    per_step = block["per_device_batch_size"] * block["gradient_accumulation_steps"] * block["num_gpus"] * \
        block["num_nodes"]
    return math.ceil(epochs * examples / per_step)


def _stage_row(stage: str, block: dict, shape: ModelShape, rows: int, tokens: int, weight_bytes: int,
               extra_gpu: dict, act_extra: float, flops_micro: dict, decode_s: float, work: Workload,
               examples: int, epochs: float = 1.0) -> dict:
    gpus = block["num_gpus"] * block["num_nodes"]
    states = model_state_bytes(shape, weight_bytes, block["deepspeed"], block["num_gpus"] * block["num_nodes"])
    act_bytes = 2 if block["bf16"] else 4
    fixed = states["weights"] + states["grads"] + states["optimizer"] + sum(extra_gpu.values())
    steps = _steps(block, examples, epochs)
    micro_steps = steps * block["gradient_accumulation_steps"] * gpus
    row = {
        "stage": stage, "gpus": gpus, "parameters": shape.total, "trainable": shape.trainable,
        "weights_gb": states["weights"] / GB, "grads_gb": states["grads"] / GB,
        "optimizer_gb": states["optimizer"] / GB, "cpu_optimizer_gb": states["cpu_optimizer"] / GB,
        **{f"{k}_gb": v / GB for k, v in extra_gpu.items()},
        "rows_per_micro_step": rows, "tokens_per_row": tokens,
        "tokens_per_step": rows * tokens * block["gradient_accumulation_steps"] * gpus, "steps": steps,
    }
    for checkpointing in (False, True):
        tag = "ckpt" if checkpointing else "no_ckpt"
        act = activation_bytes(shape, rows, tokens, checkpointing, act_bytes) + act_extra
        seconds = flops_micro[checkpointing] / (work.peak_tflops * 1e12 * work.mfu) + decode_s
        row[f"activations_{tag}_gb"] = act / GB
        row[f"total_{tag}_gb"] = (fixed + act) / GB
        row[f"gpu_hours_{tag}"] = micro_steps * seconds / 3600
    row["fits_with"] = "either" if row["total_no_ckpt_gb"] <= work.gpu_memory_gb else \
        "checkpointing" if row["total_ckpt_gb"] <= work.gpu_memory_gb else "neither"
    row["configured_checkpointing"] = block["gradient_checkpointing"]
    return row


def plan(config: dict, work: Workload = Workload()) -> list[dict]:
    """One row per training stage: memory per GPU with and without checkpointing, steps and GPU-hours."""
    spec = model_spec(config, config["student"]["model"])
    freeze = list(config["student"]["freeze"])
    rows = []

    sft = config["sft"]
    shape = model_shape(spec, freeze, sft["lora"])
    weight_bytes = 2 if sft["deepspeed"] or sft["lora"] else 4  # as avrt.training.sft loads the student
    rows_sft, seq = sft["per_device_batch_size"], work.prompt_tokens + work.trace_tokens
    act_bytes = 2 if sft["bf16"] else 4
    logits = rows_sft * seq * shape.vocab * (act_bytes + 8)
    flops = {c: rows_sft * (train_flops(shape, seq, shape.trainable, c) + encoder_flops(shape, work))
             for c in (False, True)}
    rows.append(_stage_row("sft", sft, shape, rows_sft, seq, weight_bytes, {}, logits, flops, 0.0, work,
                           work.sft_examples, float(sft["epochs"])))

    grpo = config["grpo"]
    shape = model_shape(spec, freeze)
    group, completion = grpo["num_generations"], grpo["max_completion_length"]
    n_rows, seq = grpo["per_device_batch_size"] * group, work.prompt_tokens + completion
    reference = {"reference": shape.total * 2} if grpo["beta"] > 0 else {}
    logits = n_rows * shape.vocab * ((2 if grpo["bf16"] else 4) * seq + 12 * completion)
    forward_only = 2 * shape.decoder * seq + 2 * shape.layers * shape.hidden * seq * seq
    prefill = 2 * shape.decoder * work.prompt_tokens
    # every row carries its prompt's media: the encoders run per row in the rollout, policy and reference
    forwards = 3 if grpo["beta"] > 0 else 2
    other = n_rows * (prefill + forward_only * (forwards - 2) + encoder_flops(shape, work) * forwards)
    flops = {c: n_rows * train_flops(shape, seq, shape.trainable, c) + other for c in (False, True)}
    decode_s = completion * shape.total * 2 / (work.hbm_tbps * 1e12)
    if grpo["rollout_backend"] != "hf":
        log.info("rollouts by %s: decode time estimated as for hf generate", grpo["rollout_backend"])
    rows.append(_stage_row("grpo", grpo, shape, n_rows, seq, 2, reference, logits, flops, decode_s, work,
                           work.grpo_prompts))
    return rows


# ---- output -----------------------------------------------------------------------------------
TABLE = (("stage", "{}"), ("gpus", "{}"), ("parameters", "{:.3e}"), ("trainable", "{:.3e}"),
         ("weights_gb", "{:.1f}"), ("reference_gb", "{:.1f}"), ("grads_gb", "{:.1f}"), ("optimizer_gb", "{:.1f}"),
         ("cpu_optimizer_gb", "{:.1f}"), ("activations_no_ckpt_gb", "{:.1f}"), ("activations_ckpt_gb", "{:.1f}"),
         ("total_no_ckpt_gb", "{:.1f}"), ("total_ckpt_gb", "{:.1f}"), ("fits_with", "{}"),
         ("configured_checkpointing", "{}"), ("tokens_per_step", "{:,}"), ("steps", "{:,}"),
         ("gpu_hours_no_ckpt", "{:.1f}"), ("gpu_hours_ckpt", "{:.1f}"))


def markdown(rows: list[dict], work: Workload) -> str:
    lines = ["| per GPU | " + " | ".join(r["stage"] for r in rows) + " |", "|---|" + "---:|" * len(rows)]
    for key, fmt in TABLE[1:]:
        lines.append(f"| {key} | " + " | ".join(fmt.format(r.get(key, 0.0)) for r in rows) + " |")
    lines.append(f"\nGB = 1e9 bytes; fits: within {work.gpu_memory_gb:g} GB (CUDA context and fragmentation not "
                 f"counted); GPU-hours at MFU {work.mfu:g} of {work.peak_tflops:g} TFLOP/s, rollout decode at "
                 f"{work.hbm_tbps:g} TB/s. Prompt {work.prompt_tokens} tokens, SFT target {work.trace_tokens}.")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    add_config_argument(parser)
    defaults = Workload()
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--video-tokens", type=int, default=defaults.video_tokens,
                        help="video tokens per example (8 frames of 640x360: 1,196)")
    parser.add_argument("--audio-tokens", type=int, default=defaults.audio_tokens, help="audio tokens (10 s: 250)")
    parser.add_argument("--text-tokens", type=int, default=defaults.text_tokens,
                        help="chat template, question and options (chosen: 250)")
    parser.add_argument("--trace-tokens", type=int, default=defaults.trace_tokens,
                        help="SFT target tokens (chosen: 200; AVRT-20K traces average 165)")
    parser.add_argument("--sft-examples", type=int, default=defaults.sft_examples, help="AVRT-20K train examples")
    parser.add_argument("--grpo-prompts", type=int, default=defaults.grpo_prompts, help="AVQA train questions")
    parser.add_argument("--peak-tflops", type=float, default=defaults.peak_tflops,
                        help="dense bf16 peak per GPU (H100 SXM: 989)")
    parser.add_argument("--mfu", type=float, default=defaults.mfu,
                        help="model FLOPs utilisation of training (chosen: 0.35)")
    parser.add_argument("--hbm-tbps", type=float, default=defaults.hbm_tbps,
                        help="GPU memory bandwidth for rollout decoding (H100 SXM: 3.35)")
    parser.add_argument("--gpu-memory-gb", type=float, default=defaults.gpu_memory_gb, help="memory per GPU")


def run(args) -> int:
    work = Workload(video_tokens=args.video_tokens, audio_tokens=args.audio_tokens, text_tokens=args.text_tokens,
                    trace_tokens=args.trace_tokens, sft_examples=args.sft_examples, grpo_prompts=args.grpo_prompts,
                    peak_tflops=args.peak_tflops, mfu=args.mfu, hbm_tbps=args.hbm_tbps,
                    gpu_memory_gb=args.gpu_memory_gb)
    rows = plan(load_config(*args.config), work)
    print(json.dumps({"workload": asdict(work), "stages": rows}, indent=2) if args.json else markdown(rows, work))
    return 0
