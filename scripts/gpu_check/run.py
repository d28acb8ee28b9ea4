"""Measured throughput, MFU and peak memory of the student's training and rollout steps on one GPU.

    PYTHONPATH=src python scripts/gpu_check/run.py --out gpu_check.json   # one H100 / H200, < 8 min
    PYTHONPATH=src python scripts/gpu_check/run.py --tiny --out tiny.json  # same code path, CPU, seconds

The Qwen2.5-Omni thinker is built at full size from the config bundled in the package (no hub
access, random bf16 weights, directly on the GPU) and frozen as training freezes it
(`student.freeze`). Its inputs have the shapes the processor gives a training example (8 frames
at the student's frame size, 10 s of 16 kHz audio, interleaved as `use_audio_in_video` lays them
out), built from the processor's arithmetic without a processor, then batched by
`avrt.training.batches` as SFT and GRPO batch them. Measured, each with its peak memory:

- sft_<preset>: forward, backward and optimizer step of one SFT micro-batch under DeepSpeed ZeRO-2
  with the config's preset and DeepSpeed's own AdamW, as `avrt sft` runs it (one process: it holds
  every shard). Without DeepSpeed (or when it fails): sft_torch_adamw, bf16 weights, gradients and
  torch AdamW states, no ZeRO; a different optimizer, labelled as such.
- grpo_no_ckpt / grpo_ckpt: one GRPO micro-step after the rollout: the reference model's log-prob
  forward and the policy's forward and backward on G completions per prompt, without and with
  (non-reentrant) gradient checkpointing. No optimizer step (that is the SFT row's).
- generate: transformers `generate` of G sampled completions per prompt (num_return_sequences).

A measurement that runs out of GPU memory is reported as `oom`; one that fails otherwise as
`error`; measurements left when the time budget (--budget-s) is spent as `skipped`.

Imports: torch, transformers, peft, numpy, the standard library, PyYAML (a transformers
requirement, for the config), DeepSpeed when installed, and the torch-only modules of avrt.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
import yaml

REPO = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("avrt") is None:
    sys.path.insert(0, str(REPO / "src"))

from avrt.training.batches import SFTCollator, group_batch, sft_item  # noqa: E402
from avrt.training.grpo_math import group_advantages, grpo_loss  # noqa: E402
from avrt.training.launch import deepspeed_config  # noqa: E402

BUNDLED_CONFIGS = REPO / "src" / "avrt" / "models" / "configs"
GB = 1e9

# ---- what the processor does (transformers' Qwen2.5-Omni processor, Qwen2-VL video processor,
# Whisper feature extractor), as arithmetic --------------------------------------------------------
VIDEO_PIXELS = (128 * 28 * 28, 768 * 28 * 28)  # Qwen2_5OmniProcessor's per-frame video budget
WHISPER_HOP = 160  # samples per log-mel frame at 16 kHz
WHISPER_CHUNK_S = 30  # the feature extractor pads every clip to 30 s
SOURCE_FRAME = (1280, 720)  # AVQA's clips are mostly 1280x720, cut to media.frame_max_side
TEXT_BEFORE_MEDIA = 40  # system turn and user header, in front of the video
# Peak dense bf16 FLOP/s by GPU name (NVIDIA data sheets, without sparsity); first match wins. The NVL
# cards run at lower clocks than their SXM siblings: unknown here (MFU left out unless --peak-tflops).
PEAK_BF16 = (("NVL", None), ("H200", 989e12), ("H100 PCIe", 756e12), ("H100 80GB HBM3", 989e12),
             ("H100 SXM", 989e12))

FLOPS_FORMULA = (
    "model FLOPs, per row of S tokens: training 6*T*S + 6*L*h*S^2, a no-grad forward 2*D*S + 2*L*h*S^2, plus the "
    "frozen encoders' forward 2*sum(P_enc * positions) (visual: video patches; audio: mel frames / 2); "
    "T trainable and D decoder parameters that multiply (the input embedding, a lookup, excluded; lm_head "
    "included), L layers, h hidden size (causal attention: half of QK^T and AV; backward 2x forward). A decode "
    "step at context c: 2*D + 4*L*h*c. Recomputation under gradient checkpointing is not counted (MFU, not "
    "HFU). MFU = model FLOPs / step time / peak dense bf16 FLOP/s of the GPU."
)

# A thinker small enough for a CPU, with the real patch, merge, mel and chunk arithmetic.
TINY_THINKER = {
    "model_type": "qwen2_5_omni_thinker",
    "audio_token_index": 500, "image_token_index": 501, "video_token_index": 502, "vision_start_token_id": 503,
    "vision_end_token_id": 504, "audio_start_token_id": 505, "audio_end_token_id": 506,
    "position_id_per_seconds": 25, "seconds_per_chunk": 2,
    "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 32, "num_heads": 4, "out_hidden_size": 32,
                      "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                      "fullatt_block_indexes": [0], "window_size": 112},
    "audio_config": {"num_mel_bins": 128, "max_source_positions": 1500, "d_model": 32, "encoder_layers": 2,
                     "encoder_attention_heads": 4, "encoder_ffn_dim": 32, "n_window": 100, "output_dim": 32},
    "text_config": {"vocab_size": 512, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
                    "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0}},
}
SFT_TORCH = "sft_torch_adamw"
NAMES = ("sft", "grpo_no_ckpt", "grpo_ckpt", "generate")


@dataclass
class Measurement:
    """One measured step (means over the timed steps) or why there is none."""

    name: str
    status: str = "ok"  # ok | oom | error | skipped
    note: str = ""
    step_s: float | None = None
    tokens_per_step: int | None = None  # tokens through the decoder per step (generate: tokens generated)
    tokens_per_s: float | None = None
    model_tflops_per_step: float | None = None
    achieved_tflops: float | None = None
    mfu: float | None = None
    peak_memory_gb: float | None = None  # torch.cuda.max_memory_allocated during this measurement
    start_memory_gb: float | None = None  # allocated when it started (models kept from earlier rows)
    timed_steps: int = 0
    parts_s: dict = field(default_factory=dict)  # mean seconds of each part of a step
    derived: dict = field(default_factory=dict)  # figures computed from the parts
    settings: dict = field(default_factory=dict)

    def finish(self, parts: list[dict], tokens: int, flops: float, peak_flops: float | None) -> "Measurement":
        self.timed_steps = len(parts)
        if not parts:
            return self
        self.parts_s = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
        self.step_s = sum(self.parts_s.values())
        self.tokens_per_step, self.tokens_per_s = tokens, tokens / self.step_s
        self.model_tflops_per_step = flops / 1e12
        self.achieved_tflops = flops / self.step_s / 1e12
        self.mfu = flops / self.step_s / peak_flops if peak_flops else None
        return self


# ---- the model --------------------------------------------------------------------------------
def thinker_config(path: Path | None):
    """The thinker config from a Qwen2.5-Omni config.json (its `thinker_config`), or the tiny one."""
    cls = transformers.Qwen2_5OmniThinkerConfig
    data = TINY_THINKER if path is None else json.loads(Path(path).read_text())
    if data.get("model_type") != cls.model_type:
        data = next(v for v in data.values() if isinstance(v, dict) and v.get("model_type") == cls.model_type)
    return cls(**{k: v for k, v in data.items() if k != "model_type"})


def freeze(model, names: list[str]) -> dict[str, int]:
    """Freeze parameters under the named modules, as `avrt.training.student.freeze_modules` does."""
    counts = {name: 0 for name in names}
    for param_name, param in model.named_parameters():
        for name in names:
            if re.search(rf"(?:^|\.){re.escape(name)}\.", param_name):
                param.requires_grad_(False)
                counts[name] += param.numel()
    return counts


def build_thinker(config, device: torch.device, freeze_names: list[str]):
    """Random bf16 weights, allocated and initialised on `device`; encoders frozen."""
    with torch.device(device):
        model = transformers.Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    freeze(model, freeze_names)
    return model.train()


def set_checkpointing(model, on: bool):
    """Non-reentrant gradient checkpointing of every layer, as training turns it on."""
    if on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()
    return model


@dataclass(frozen=True)
class FlopModel:
    """Parameter counts and sizes the FLOPs formula (FLOPS_FORMULA) needs."""

    trainable: int  # trainable parameters that multiply
    decoder: int  # decoder parameters that multiply
    encoders: dict  # frozen module name -> parameters
    layers: int
    hidden: int

    @classmethod
    def of(cls, model, frozen: dict) -> "FlopModel":
        embed = model.get_input_embeddings().weight
        text = model.config.get_text_config()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        decoder = sum(p.numel() for n, p in model.named_parameters() if not any(f".{k}." in f".{n}" for k in frozen))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        trained_embed = embed.numel() if embed.requires_grad else 0
        return cls(trainable=trainable - trained_embed, decoder=decoder - embed.numel(), encoders=dict(frozen),
                   layers=text.num_hidden_layers, hidden=text.num_attention_heads * head_dim)

    def train(self, seq: int) -> float:
        return 6 * self.trainable * seq + 6 * self.layers * self.hidden * seq * seq

    def forward(self, seq: int) -> float:
        return 2 * self.decoder * seq + 2 * self.layers * self.hidden * seq * seq

    def encode(self, positions: dict) -> float:
        return 2 * sum(params * positions.get(name, 0) for name, params in self.encoders.items())

    def decode(self, context: int, new_tokens: int) -> float:
        steps = range(context, context + new_tokens)
        return sum(2 * self.decoder + 4 * self.layers * self.hidden * c for c in steps)


# ---- inputs -----------------------------------------------------------------------------------
def frame_size(max_side: int, source: tuple[int, int] = SOURCE_FRAME) -> tuple[int, int]:
    """(height, width) of a frame cut to `max_side`, as `avrt.core.media.resized_dims` cuts it."""
    width, height = source
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(height * scale / 2)) * 2), max(2, int(round(width * scale / 2)) * 2)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen2-VL video processor's resize: both sides multiples of `factor`, pixels within budget."""
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


def audio_token_count(mel_frames: int) -> int:
    """Audio tokens of `mel_frames` log-mel frames: the encoder's stride-2 conv, then 2x pooling."""
    return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1


def chunk_bounds(positions: np.ndarray, per_chunk: int) -> list[tuple[int, int]]:
    """(start, end) slices of `positions` per time chunk, as the processor's `get_chunked_index`."""
    bounds, start, chunk = [], 0, 1
    for i, value in enumerate(positions):
        if value >= chunk * per_chunk:
            bounds.append((start, i))
            start, chunk = i, chunk + 1
    return bounds + [(start, len(positions))]


def media_layout(config, frames: int, height: int, width: int, seconds: float, sample_rate: int) -> dict:
    """Sizes of one clip's processor outputs and its placeholder ids (video with its audio track)."""
    vision = config.vision_config
    merge, patch, temporal = vision.spatial_merge_size, vision.patch_size, vision.temporal_patch_size
    rh, rw = smart_resize(height, width, patch * merge, *VIDEO_PIXELS)
    grid = (math.ceil(frames / temporal), rh // patch, rw // patch)
    per_frame_tokens = grid[1] * grid[2] // merge**2
    mel_valid = math.ceil(int(seconds * sample_rate) / WHISPER_HOP)
    audio_tokens = audio_token_count(mel_valid)
    second_per_grid = temporal / (frames / seconds)  # the frames' true rate, as the adapter passes it
    video_pos = np.repeat(np.arange(grid[0]), per_frame_tokens) * second_per_grid * config.position_id_per_seconds
    per_chunk = int(config.position_id_per_seconds * config.seconds_per_chunk)
    video_chunks, audio_chunks = chunk_bounds(video_pos, per_chunk), chunk_bounds(np.arange(audio_tokens), per_chunk)
    ids = [config.vision_start_token_id, config.audio_start_token_id]
    for j in range(max(len(video_chunks), len(audio_chunks))):
        if j < len(video_chunks):
            ids += [config.video_token_index] * (video_chunks[j][1] - video_chunks[j][0])
        if j < len(audio_chunks):
            ids += [config.audio_token_index] * (audio_chunks[j][1] - audio_chunks[j][0])
    ids += [config.audio_end_token_id, config.vision_end_token_id]
    return {
        "frames": frames, "frame_hw": [height, width], "resized_hw": [rh, rw], "video_grid_thw": list(grid),
        "video_patches": math.prod(grid), "patch_dim": vision.in_channels * temporal * patch * patch,
        "video_tokens": math.prod(grid) // merge**2, "video_second_per_grid": second_per_grid,
        "mel_bins": config.audio_config.num_mel_bins, "mel_frames": WHISPER_CHUNK_S * sample_rate // WHISPER_HOP,
        "mel_frames_valid": mel_valid, "audio_tokens": audio_tokens, "media_ids": ids,
    }


def text_vocab(config) -> int:
    """Filler text ids are drawn below the lowest media token id."""
    return min(config.audio_token_index, config.image_token_index, config.video_token_index,
               config.vision_start_token_id, config.audio_start_token_id)


def prompt_inputs(config, layout: dict, text_tokens: int, generator: torch.Generator) -> dict:
    """One prompt as the processor returns it (a batch of one): text around the clip's placeholders."""
    before = min(TEXT_BEFORE_MEDIA, text_tokens // 2)
    text = torch.randint(0, text_vocab(config), (text_tokens,), generator=generator)
    ids = torch.cat([text[:before], torch.tensor(layout["media_ids"]), text[before:]]).unsqueeze(0)
    mask = torch.zeros(1, layout["mel_frames"], dtype=torch.long)
    mask[:, : layout["mel_frames_valid"]] = 1
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values_videos": torch.randn(layout["video_patches"], layout["patch_dim"], generator=generator),
        "video_grid_thw": torch.tensor([layout["video_grid_thw"]]),
        "video_second_per_grid": torch.tensor([layout["video_second_per_grid"]]),
        "input_features": torch.randn(1, layout["mel_bins"], layout["mel_frames"], generator=generator),
        "feature_attention_mask": mask,
    }


def encoder_positions(layout: dict, rows: int) -> dict:
    return {"visual": rows * layout["video_patches"], "audio_tower": rows * layout["mel_frames_valid"] // 2}


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ---- timing -----------------------------------------------------------------------------------
class Clock:
    """The global time budget and synchronised timing of the parts of a step."""

    def __init__(self, budget_s: float, device: torch.device):
        self.start, self.budget_s, self.device = time.perf_counter(), budget_s, device

    def remaining(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def part(self, parts: dict, name: str):
        self.sync()
        t0 = time.perf_counter()
        yield
        self.sync()
        parts[name] = parts.get(name, 0.0) + time.perf_counter() - t0


def run_steps(step, clock: Clock, warmup: int, steps: int) -> list[dict]:
    """Warm-up steps, then timed ones while the budget lasts; each step returns its parts' seconds."""
    for _ in range(warmup):
        step()
    timed = []
    while len(timed) < steps and (not timed or clock.remaining() > 0):
        timed.append(step())
    return timed


# ---- SFT --------------------------------------------------------------------------------------
def sft_batch(ctx: "Context") -> dict:
    completion = torch.randint(0, text_vocab(ctx.config), (ctx.completion_tokens,), generator=ctx.generator)
    item = sft_item(ctx.prompt, completion, {"use_audio_in_video": True})
    batch = SFTCollator(pad_token_id=0, feature_dtype=torch.bfloat16)([item] * ctx.sft["per_device_batch_size"])
    return to_device(batch, ctx.device)


def filled_deepspeed_config(preset: str, sft: dict, rows: int, hidden: int) -> dict:
    """`avrt.training.launch.deepspeed_config` with the values transformers fills for "auto"."""
    ds = deepspeed_config(preset, "sft")
    ds["bf16"], ds["fp16"] = {"enabled": bool(sft["bf16"])}, {"enabled": False}
    ds["optimizer"]["params"] = {"lr": sft["learning_rate"], "betas": [sft["adam_beta1"], sft["adam_beta2"]],
                                 "eps": sft["adam_epsilon"], "weight_decay": sft["weight_decay"]}
    ds["zero_optimization"]["reduce_bucket_size"] = hidden * hidden
    ds.update(gradient_accumulation_steps=1, gradient_clipping=sft["max_grad_norm"], train_batch_size=rows,
              train_micro_batch_size_per_gpu=rows)
    if '"auto"' in json.dumps(ds):
        raise ValueError(f"DeepSpeed config values left at auto: {ds}")
    return ds


def single_process_group() -> None:
    """A world of one for DeepSpeed (ZeRO needs torch.distributed even on one GPU)."""
    import deepspeed

    if torch.distributed.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", str(port))):
        os.environ.setdefault(key, value)
    deepspeed.init_distributed(dist_backend="nccl", auto_mpi_discovery=False, verbose=False)


def measure_sft_deepspeed(ctx: "Context", preset: str) -> Measurement:
    import deepspeed

    single_process_group()
    model = ctx.student(checkpointing=ctx.sft["gradient_checkpointing"])
    rows = ctx.sft["per_device_batch_size"]
    config = filled_deepspeed_config(preset, ctx.sft, rows, ctx.config.get_text_config().hidden_size)
    trainable = [p for p in model.parameters() if p.requires_grad]
    engine, *_ = deepspeed.initialize(model=model, model_parameters=trainable, config=config)
    batch = sft_batch(ctx)

    def step() -> dict:
        parts: dict = {}
        with ctx.clock.part(parts, "forward_backward_s"):
            engine.backward(engine(**batch).loss)
        with ctx.clock.part(parts, "optimizer_s"):
            engine.step()
        return parts

    try:
        timed = run_steps(step, ctx.clock, ctx.warmup, ctx.steps)
    finally:
        if hasattr(engine, "destroy"):  # DeepSpeed >= 0.14: drops its hooks and buffers
            engine.destroy()
    settings = {"optimizer": f"DeepSpeed ZeRO-2 ({preset}), DeepSpeed AdamW", "deepspeed_config": config}
    return ctx.finish_sft(Measurement(f"sft_{preset}"), timed, settings)


def measure_sft_torch(ctx: "Context") -> Measurement:
    model = ctx.student(checkpointing=ctx.sft["gradient_checkpointing"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=ctx.sft["learning_rate"], weight_decay=ctx.sft["weight_decay"],
                                  betas=(ctx.sft["adam_beta1"], ctx.sft["adam_beta2"]), eps=ctx.sft["adam_epsilon"],
                                  fused=ctx.device.type == "cuda")
    batch = sft_batch(ctx)

    def step() -> dict:
        parts: dict = {}
        with ctx.clock.part(parts, "forward_backward_s"):
            model(**batch).loss.backward()
        with ctx.clock.part(parts, "optimizer_s"):
            torch.nn.utils.clip_grad_norm_(trainable, ctx.sft["max_grad_norm"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return parts

    timed = run_steps(step, ctx.clock, ctx.warmup, ctx.steps)
    why = ctx.deepspeed_reason or "the DeepSpeed row failed"
    note = f"{why}; no ZeRO: bf16 weights, gradients and AdamW states on one device, not the configured run"
    settings = {"optimizer": "torch AdamW (fused on CUDA), bf16 states"}
    return ctx.finish_sft(Measurement(SFT_TORCH, note=note), timed, settings)


# ---- GRPO -------------------------------------------------------------------------------------
def completion_logps(model, batch: dict, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """Per-token log-probs of the completions after their prompts (avrt.training.rollout.completion_logps)."""
    prompt_len = batch["input_ids"].shape[1]
    inputs = dict(batch)
    inputs["input_ids"] = torch.cat([batch["input_ids"], completion_ids], dim=1)
    inputs["attention_mask"] = torch.cat([batch["attention_mask"], completion_mask], dim=1)
    logits = model(**inputs, use_audio_in_video=True, use_cache=False).logits
    logits = logits[:, prompt_len - 1 : -1, :].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def grpo_step(policy, ref, batch: dict, completion_ids: torch.Tensor, grpo: dict, clock: Clock) -> dict:
    """Reference log-probs, policy log-probs, GRPO loss and its backward; seconds of each part."""
    mask = torch.ones_like(completion_ids)
    rewards = torch.rand(completion_ids.shape[0])
    advantages = group_advantages(rewards, grpo["num_generations"]).to(completion_ids.device)
    parts: dict = {}
    with clock.part(parts, "reference_forward_s"), torch.no_grad():
        ref_logps = completion_logps(ref, batch, completion_ids, mask, grpo["temperature"])
    with clock.part(parts, "policy_forward_backward_s"):
        logps = completion_logps(policy, batch, completion_ids, mask, grpo["temperature"])
        loss = grpo_loss(logps, advantages, mask, ref_logps=ref_logps, epsilon=grpo["epsilon"], beta=grpo["beta"])
        loss.loss.backward()
    policy.zero_grad(set_to_none=True)
    return parts


def measure_grpo(ctx: "Context", checkpointing: bool) -> Measurement:
    policy, ref = ctx.student(checkpointing=checkpointing), ctx.reference()
    group, rows = ctx.grpo["num_generations"], ctx.grpo["per_device_batch_size"]
    batch = group_batch([ctx.prompt] * rows, group, pad_token_id=0, feature_dtype=torch.bfloat16)
    batch, n = to_device(batch, ctx.device), rows * group
    completion_ids = torch.randint(0, text_vocab(ctx.config), (n, ctx.completion_tokens), generator=ctx.generator)
    completion_ids = completion_ids.to(ctx.device)
    timed = run_steps(lambda: grpo_step(policy, ref, batch, completion_ids, ctx.grpo, ctx.clock), ctx.clock,
                      ctx.warmup, ctx.steps)
    seq = ctx.prompt_len + ctx.completion_tokens
    fm = ctx.flop_model
    flops = n * (fm.train(seq) + fm.forward(seq)) + 2 * fm.encode(encoder_positions(ctx.layout, n))
    name = "grpo_ckpt" if checkpointing else "grpo_no_ckpt"
    result = Measurement(name, note="no optimizer step; reference forward included")
    result.settings = {"rows": n, "prompts": rows, "group_size": group, "sequence_tokens": seq,
                       "completion_tokens": ctx.completion_tokens, "gradient_checkpointing": checkpointing,
                       "beta": ctx.grpo["beta"], "temperature": ctx.grpo["temperature"]}
    return result.finish(timed, n * seq, flops, ctx.peak_flops)


# ---- generation -------------------------------------------------------------------------------
def measure_generate(ctx: "Context") -> Measurement:
    ctx.release("reference")
    policy = ctx.student(checkpointing=False).eval()
    group, rows = ctx.grpo["num_generations"], ctx.grpo["per_device_batch_size"]
    batch = to_device(group_batch([ctx.prompt] * rows, 1, pad_token_id=0, feature_dtype=torch.bfloat16), ctx.device)
    cfg = ctx.config
    media_ids = [cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index, cfg.vision_start_token_id,
                 cfg.vision_end_token_id, cfg.audio_start_token_id, cfg.audio_end_token_id]

    def generate(new_tokens: int) -> None:
        config = transformers.GenerationConfig(
            do_sample=True, temperature=ctx.grpo["temperature"], top_k=None, top_p=None, num_return_sequences=group,
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, suppress_tokens=media_ids, pad_token_id=0,
            eos_token_id=None)
        with torch.no_grad():
            out = policy.generate(**batch, use_audio_in_video=True, generation_config=config)
        assert out.shape == (rows * group, ctx.prompt_len + new_tokens), out.shape

    def step() -> dict:
        parts: dict = {}
        with ctx.clock.part(parts, "prefill_s"):
            generate(1)
        with ctx.clock.part(parts, "generate_s"):
            generate(ctx.max_new_tokens)
        return {"prefill_s": parts["prefill_s"], "decode_s": parts["generate_s"] - parts["prefill_s"]}

    generate(2)  # warm-up
    timed = run_steps(step, ctx.clock, 0, 1)
    n, fm = rows * group, ctx.flop_model
    flops = n * (fm.forward(ctx.prompt_len) + fm.decode(ctx.prompt_len, ctx.max_new_tokens - 1))
    flops += fm.encode(encoder_positions(ctx.layout, n))
    result = Measurement("generate", note="tokens/s: generated tokens over prefill + decode time")
    result.settings = {"prompts": rows, "num_return_sequences": group, "max_new_tokens": ctx.max_new_tokens,
                       "do_sample": True, "temperature": ctx.grpo["temperature"], "kv_cache": True}
    result = result.finish(timed, n * ctx.max_new_tokens, flops, ctx.peak_flops)
    if timed:  # None where decoding took less than the noise of the two timings (a tiny model on a CPU)
        decode_s = result.parts_s["decode_s"]
        result.derived["decode_tokens_per_s"] = n * (ctx.max_new_tokens - 1) / decode_s if decode_s > 0 else None
    return result


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class Context:
    """What every measurement shares: config blocks, model config, inputs, settings, clock."""

    config: object
    freeze_names: list
    sft: dict
    grpo: dict
    layout: dict
    prompt: dict
    completion_tokens: int
    max_new_tokens: int
    warmup: int
    steps: int
    device: torch.device
    clock: Clock
    peak_flops: float | None
    generator: torch.Generator
    model_config: Path | None = None  # None: the tiny thinker
    flop_model: FlopModel | None = None
    deepspeed_reason: str = ""  # why DeepSpeed is not used, or "" when it is
    models: dict = field(default_factory=dict)

    @property
    def prompt_len(self) -> int:
        return self.prompt["input_ids"].shape[1]

    def _build(self):
        return build_thinker(self.config, self.device, self.freeze_names)

    def student(self, checkpointing: bool):
        """The policy (built once, reused), its gradient checkpointing set as asked."""
        if "policy" not in self.models:
            self.models["policy"] = self._build()
        return set_checkpointing(self.models["policy"].train(), checkpointing)

    def reference(self):
        if "reference" not in self.models:
            self.models["reference"] = self._build().eval().requires_grad_(False)
        return self.models["reference"]

    def release(self, *names: str) -> None:
        """Drop the named models, and give the memory of whatever nothing holds back to the device."""
        for name in names:
            self.models.pop(name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def finish_sft(self, result: Measurement, timed: list[dict], settings: dict) -> Measurement:
        rows = self.sft["per_device_batch_size"]
        seq = self.prompt_len + self.completion_tokens
        flops = rows * self.flop_model.train(seq) + self.flop_model.encode(encoder_positions(self.layout, rows))
        result.settings = {"rows": rows, "sequence_tokens": seq, "completion_tokens": self.completion_tokens,
                           "gradient_checkpointing": self.sft["gradient_checkpointing"], "bf16": self.sft["bf16"],
                           "gradient_accumulation_steps": 1, **settings}
        result.finish(timed, rows * seq, flops, self.peak_flops)
        if timed:  # one optimizer step of the configured run, on one process holding every shard
            accumulation = self.sft["gradient_accumulation_steps"]
            result.derived[f"step_s_at_accumulation_{accumulation}"] = (
                accumulation * result.parts_s["forward_backward_s"] + result.parts_s["optimizer_s"])
        return result


def deepspeed_reason(ctx_device: torch.device, preset: str | None, disabled: bool) -> str:
    """Why the SFT row cannot run under DeepSpeed, or "" when it can."""
    if disabled:
        return "DeepSpeed off (--no-deepspeed)"
    if not preset:
        return "sft.deepspeed is null in the config"
    if ctx_device.type != "cuda":
        return "DeepSpeed ZeRO-2 needs CUDA (tiny run on the CPU)"
    if importlib.util.find_spec("deepspeed") is None:
        return "deepspeed is not installed: ZeRO-2 not measured"
    return ""


def measure(name: str, ctx: Context) -> Measurement:
    if name.startswith("sft_") and name != SFT_TORCH:
        return measure_sft_deepspeed(ctx, name.removeprefix("sft_"))
    if name == SFT_TORCH:
        return measure_sft_torch(ctx)
    if name.startswith("grpo_"):
        return measure_grpo(ctx, checkpointing=name == "grpo_ckpt")
    return measure_generate(ctx)


def guarded(name: str, ctx: Context) -> Measurement:
    """One measurement; running out of memory or failing is a result, not a crash."""
    if ctx.clock.remaining() <= 0:
        return Measurement(name, status="skipped", note=f"time budget of {ctx.clock.budget_s:g} s spent")
    start = None
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
        start = torch.cuda.memory_allocated(ctx.device) / GB
    try:
        result = measure(name, ctx)
    except torch.cuda.OutOfMemoryError as err:
        result = Measurement(name, status="oom", note=str(err).splitlines()[0][:300])
    except Exception as err:  # reported, and the next measurement runs
        traceback.print_exc()
        result = Measurement(name, status="error", note=f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
    if ctx.device.type == "cuda":
        result.peak_memory_gb = torch.cuda.max_memory_allocated(ctx.device) / GB
        result.start_memory_gb = start
    for model in ctx.models.values():
        model.zero_grad(set_to_none=True)
    # the optimizer's (DeepSpeed's) model is not used again: GRPO and generation build a clean one
    ctx.release(*(["policy"] if name.startswith("sft_") else []))
    return result


def plan(only: list[str], ctx: Context, preset: str | None) -> list[str]:
    sft = f"sft_{preset}" if not ctx.deepspeed_reason else SFT_TORCH
    return [sft if n == "sft" else n for n in NAMES if n in only]


def peak_for(gpu_name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16 if key in gpu_name), None)


def peak_bf16_flops(device: torch.device, override_tflops: float | None) -> tuple[str, float | None]:
    """The device's name and its peak dense bf16 FLOP/s (None: unknown, or a CPU)."""
    if device.type != "cuda":
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, override_tflops * 1e12 if override_tflops else peak_for(name)


def versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "transformers": transformers.__version__, "numpy": np.__version__}
    for package in ("peft", "deepspeed"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def load_blocks(path: Path) -> dict:
    """The config blocks the kit reads (PyYAML only: no schema validation, no defaults merged)."""
    data = yaml.safe_load(Path(path).read_text())
    return {key: data[key] for key in ("media", "student", "sft", "grpo", "models")}


def model_config_path(args, blocks: dict) -> Path | None:
    if args.tiny:
        return None
    if args.model_config:
        return Path(args.model_config)
    student = blocks["models"][blocks["student"]["model"]]
    return BUNDLED_CONFIGS / f"{student['checkpoint'].replace('/', '--')}.json"


def build_context(args) -> Context:
    blocks = load_blocks(args.config)
    device = torch.device("cpu" if args.tiny else "cuda")
    _, peak = peak_bf16_flops(device, args.peak_tflops)
    config_path = model_config_path(args, blocks)
    config = thinker_config(config_path)
    media = blocks["media"]
    height, width = frame_size(media["frame_max_side"])
    layout = media_layout(config, media["num_frames"], height, width, media["audio_seconds"], media["sample_rate"])
    generator = torch.Generator().manual_seed(0)
    ctx = Context(
        config=config, freeze_names=list(blocks["student"]["freeze"]), sft=blocks["sft"], grpo=blocks["grpo"],
        layout=layout, prompt=prompt_inputs(config, layout, args.text_tokens, generator),
        completion_tokens=args.completion_tokens or blocks["grpo"]["max_completion_length"],
        max_new_tokens=args.max_new_tokens, warmup=args.warmup, steps=args.steps, device=device,
        clock=Clock(args.budget_s, device), peak_flops=peak, generator=generator, model_config=config_path)
    ctx.deepspeed_reason = deepspeed_reason(device, blocks["sft"]["deepspeed"], args.no_deepspeed)
    if blocks["sft"].get("lora"):
        print("note: sft.lora is set; the kit measures full fine-tuning of the unfrozen modules", flush=True)
    return ctx


def model_summary(ctx: Context) -> dict:
    """Parameter counts from a meta-device copy (nothing allocated), and the FLOPs model."""
    with torch.device("meta"):
        model = transformers.Qwen2_5OmniThinkerForConditionalGeneration._from_config(ctx.config, dtype=torch.bfloat16)
    frozen = freeze(model, ctx.freeze_names)
    ctx.flop_model = FlopModel.of(model, frozen)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), "frozen": frozen,
            "flops_trainable": ctx.flop_model.trainable, "flops_decoder": ctx.flop_model.decoder,
            "layers": ctx.flop_model.layers, "hidden": ctx.flop_model.hidden,
            "attn_implementation": model.config._attn_implementation}


def count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def table(results: list[Measurement]) -> str:
    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'measurement':<22} {'status':<8} {'step s':>8} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>6} "
             f"{'peak GB':>8}  note"]
    for r in results:
        lines.append(f"{r.name:<22} {r.status:<8} {fmt(r.step_s, '.3f'):>8} {fmt(r.tokens_per_s, ',.0f'):>10} "
                     f"{fmt(r.achieved_tflops, '.1f'):>8} {fmt(r.mfu, '.1%'):>6} {fmt(r.peak_memory_gb, '.1f'):>8}"
                     f"  {r.note}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml",
                   help="pipeline config: media, student.freeze, sft, grpo (default: the paper's)")
    p.add_argument("--model-config", type=Path, help="a Qwen2.5-Omni config.json (default: the bundled copy of "
                   "the config's student checkpoint)")
    p.add_argument("--tiny", action="store_true", help="a tiny thinker on the CPU: the same code path, in seconds")
    p.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="measurements to run, in order")
    p.add_argument("--budget-s", type=float, default=420.0, help="measurements left after this are skipped")
    p.add_argument("--warmup", type=int, help="untimed steps first (default 1; tiny 0)")
    p.add_argument("--steps", type=int, help="timed steps (default 3; tiny 1)")
    p.add_argument("--text-tokens", type=int, default=250, help="prompt tokens besides the media (default 250)")
    p.add_argument("--completion-tokens", type=int,
                   help="SFT target and GRPO completion tokens (default: grpo.max_completion_length; tiny 16)")
    p.add_argument("--max-new-tokens", type=int, help="tokens generated per sequence (default 256; tiny 8)")
    p.add_argument("--no-deepspeed", action="store_true", help="SFT with torch AdamW even if DeepSpeed is installed")
    p.add_argument("--peak-tflops", type=float, help="peak dense bf16 TFLOP/s of the GPU, when its name is unknown")
    args = p.parse_args(argv)
    tiny = args.tiny
    args.warmup = (0 if tiny else 1) if args.warmup is None else args.warmup
    args.steps = args.steps or (1 if tiny else 3)
    args.completion_tokens = args.completion_tokens or (16 if tiny else None)
    args.max_new_tokens = args.max_new_tokens or (8 if tiny else 256)
    return args


def report(args, ctx: Context, summary: dict, results: list[Measurement], gpu: str) -> dict:
    layout = {k: v for k, v in ctx.layout.items() if k != "media_ids"}
    cuda = ctx.device.type == "cuda"
    return {
        "mode": "tiny" if args.tiny else "gpu", "gpu": gpu,
        "gpu_memory_gb": torch.cuda.get_device_properties(ctx.device).total_memory / GB if cuda else None,
        "peak_bf16_tflops": ctx.peak_flops / 1e12 if ctx.peak_flops else None, "versions": versions(),
        "deepspeed_used": any(r.name.startswith("sft_") and r.name != SFT_TORCH and r.status == "ok" for r in results),
        "deepspeed_note": ctx.deepspeed_reason, "model": summary,
        "inputs": {**layout, "text_tokens": args.text_tokens, "prompt_tokens": ctx.prompt_len,
                   "completion_tokens": ctx.completion_tokens,
                   "shapes": {k: list(v.shape) for k, v in ctx.prompt.items()}},
        "flops_formula": FLOPS_FORMULA, "budget_s": args.budget_s, "elapsed_s": args.budget_s - ctx.clock.remaining(),
        "settings": {"config": str(args.config), "model_config": str(ctx.model_config or "tiny (built in)"),
                     "warmup_steps": args.warmup, "timed_steps": args.steps, "freeze": ctx.freeze_names,
                     "dtype": "bfloat16", "seed": 0},
        "measurements": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA GPU here; --tiny runs the same code path on the CPU", file=sys.stderr)
        return 2
    if args.tiny:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    ctx = build_context(args)
    gpu, _ = peak_bf16_flops(ctx.device, args.peak_tflops)
    summary = model_summary(ctx)
    print(f"{gpu}: thinker of {count(summary['parameters'])} parameters, {count(summary['trainable'])} trainable; "
          f"prompt {ctx.prompt_len} tokens ({ctx.layout['video_tokens']} video, {ctx.layout['audio_tokens']} audio), "
          f"completion {ctx.completion_tokens}", flush=True)
    if ctx.deepspeed_reason:
        print(f"SFT without DeepSpeed: {ctx.deepspeed_reason}", flush=True)

    queue, results = plan(args.only, ctx, ctx.sft["deepspeed"]), []
    while queue:
        name = queue.pop(0)
        results.append(guarded(name, ctx))
        print(f"{name}: {results[-1].status} {results[-1].note}".rstrip(), flush=True)
        if results[-1].status == "error" and name.startswith("sft_") and name != SFT_TORCH:
            queue.insert(0, SFT_TORCH)
        if args.out:  # after every row: a run cut short still leaves what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report(args, ctx, summary, results, gpu), indent=2, default=str) + "\n")
    print(f"\n{table(results)}\n\n{FLOPS_FORMULA}")
    if args.out:
        print(f"wrote {args.out}")
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
