"""GRPO rollouts: G completions per prompt with the prompt's audio and video, and their log-probabilities.

A group batch holds each prompt G times (row ``i * G + k`` is copy k of prompt i): its token
tensors left padded and repeated, its media tensors (``pixel_values_videos``, ``video_grid_thw``,
``input_features``, ``feature_attention_mask``, ...) concatenated copy after copy, so every copy
sees exactly the media evaluation would give it. The same batch goes to generation, to the
policy's log-prob forward and to the reference model's.

Samplers:
- `HFRollout` (``rollout_backend: hf``): transformers ``generate`` on the policy itself. Every
  completion is drawn with its own seeded generator (`PerRowSampler`, as evaluation samples), so
  a completion depends on its prompt, step and index only, and a resumed run draws the same ones.
- `VLLMColocateRollout` (``vllm_colocate``): a vLLM engine in each training process, fed the
  requests evaluation's vLLM backend builds, with the policy's trainable weights pushed into it
  before the first rollout of each optimizer step (TRL's colocate mode). It needs CUDA and the
  vllm package; its completions' token ids are scored by the trainer's own forward, so a token-id
  mismatch cannot go unnoticed in the KL. tests/test_vllm_colocate.py runs it on vLLM's CPU build,
  which keeps only some tensors loadable after start-up (the README's "vLLM, checked against
  transformers" says which).

Log-probabilities are taken from the logits divided by the sampling temperature, as TRL does, so
that the ratio and KL refer to the distribution the completions were drawn from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

import torch
from transformers import GenerationConfig, LogitsProcessorList

from avrt.core.rows import TrainingExample
from avrt.models.hf_backend import PerRowSampler
from avrt.models.spec import ModelSpec, SamplingParams
from avrt.training.batches import TOKEN_KEYS, pad_completions
from avrt.training.data import StudentInputs

log = logging.getLogger(__name__)

ROLLOUT_BACKENDS = ("hf", "vllm_colocate")
# Config attributes naming media placeholder and boundary tokens (audio_token_index, vision_start_token_id, ...).
MEDIA_TOKEN_ATTRIBUTE = re.compile(r"^(audio|image|video|vision)_\w*token_(id|index)$")


def media_token_ids(config) -> list[int]:
    """Token ids the model reads as media positions: never sampled into a completion.

    The model's forward counts these tokens to place audio and video features (Qwen2.5-Omni's
    rope index), so one sampled at temperature 1 would break the log-prob forward of its batch.
    """
    return sorted({v for k, v in vars(config).items() if MEDIA_TOKEN_ATTRIBUTE.match(k) and isinstance(v, int)})


# ---- log-probabilities ------------------------------------------------------------------------
def completion_logps(model, batch: dict, forward_kwargs: dict, completion_ids: torch.Tensor,
                     completion_mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-token log-probabilities (N, C) of the completions after their prompts, media included.

    Values at padded completion positions are meaningless; the loss masks them.
    """
    prompt_len = batch["input_ids"].shape[1]
    inputs = dict(batch)
    inputs["input_ids"] = torch.cat([batch["input_ids"], completion_ids], dim=1)
    inputs["attention_mask"] = torch.cat([batch["attention_mask"], completion_mask.to(batch["attention_mask"].dtype)],
                                         dim=1)
    for key in TOKEN_KEYS:  # other per-token inputs (token types) extend over the completion as text
        if key in batch and key not in ("input_ids", "attention_mask"):
            inputs[key] = torch.cat([batch[key], torch.zeros_like(completion_ids)], dim=1)
    logits = model(**inputs, **forward_kwargs, use_cache=False).logits
    # The logit at position t predicts token t + 1: the completion's tokens follow the prompt's last position.
    logits = logits[:, prompt_len - 1 : -1, :].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


# ---- samplers ---------------------------------------------------------------------------------
def require_rollout_backend(backend: str) -> None:
    """Fail before any model is loaded when the configured sampler cannot run here."""
    if backend not in ROLLOUT_BACKENDS:
        raise ValueError(f"config key 'grpo.rollout_backend': unknown backend {backend!r} "
                         f"(known: {', '.join(ROLLOUT_BACKENDS)})")
    if backend != "vllm_colocate":
        return
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            "config key 'grpo.rollout_backend' is 'vllm_colocate' but the vllm package is not installed in "
            "the training environment; add it to envs/training.yaml (envs/inference.yaml pins the version, "
            "whose torch pin must match training's) or set grpo.rollout_backend: hf"
        )
    if not torch.cuda.is_available():
        raise RuntimeError("config key 'grpo.rollout_backend': vllm_colocate needs CUDA GPUs; use hf on CPUs")


@contextlib.contextmanager
def generation_mode(model, config: GenerationConfig):
    """Eval mode and our generation config only while sampling (the checkpoint's sampling defaults,
    e.g. a repetition penalty, would otherwise change the rollout distribution)."""
    was_training, saved = model.training, model.generation_config
    model.eval()
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved
        model.train(was_training)


class HFRollout:
    """Samples completions with transformers ``generate`` on the policy being trained."""

    def __init__(self, stop_ids: list[int], pad_token_id: int, temperature: float, max_new_tokens: int,
                 suppressed_ids: list[int] = ()):
        self.stop_ids, self.pad_token_id, self.suppressed_ids = stop_ids, pad_token_id, list(suppressed_ids)
        self.sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens)

    @torch.no_grad()
    def generate(self, model, batch: dict, forward_kwargs: dict, examples: list[TrainingExample],
                 seeds: list[int], step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Completion ids and mask (N, C) for the N = len(seeds) rows of `batch`."""
        if len(seeds) != batch["input_ids"].shape[0]:
            raise ValueError(f"{len(seeds)} seeds for {batch['input_ids'].shape[0]} rollout rows")
        config = GenerationConfig(max_new_tokens=self.sampling.max_new_tokens, do_sample=False,
                                  eos_token_id=self.stop_ids, pad_token_id=self.pad_token_id,
                                  suppress_tokens=self.suppressed_ids or None)
        with generation_mode(model, config):
            # Greedy decoding over a sampler that forces each row's own seeded draw (see PerRowSampler).
            output = model.generate(**batch, **forward_kwargs, generation_config=config,
                                    logits_processor=LogitsProcessorList([PerRowSampler(seeds, self.sampling)]))
        tokens = output[:, batch["input_ids"].shape[1]:].tolist()
        return pad_completions(tokens, self.stop_ids, self.pad_token_id, device=batch["input_ids"].device)


class VLLMColocateRollout:
    """A vLLM engine in this training process, sampling from the policy's current weights.

    The engine starts from the policy's starting checkpoint; the trainable weights are pushed
    into it (in the checkpoint's key layout, which vLLM's loader reads) whenever the optimizer
    has stepped since the last push. Frozen encoders never change and are not pushed.
    """

    def __init__(self, spec: ModelSpec, inputs: StudentInputs, stop_ids: list[int], pad_token_id: int,
                 temperature: float, max_new_tokens: int, suppressed_ids: list[int], gpu_memory_utilization: float,
                 process_index: int, local_process_index: int, num_processes: int):
        from avrt.models.vllm_backend import VLLMBackend, engine_kwargs  # first: it prepares vLLM's import

        from vllm import LLM

        # vLLM's external launcher joins the process group torchrun set up; a single process sets its own.
        os.environ.setdefault("RANK", str(process_index))
        os.environ.setdefault("LOCAL_RANK", str(local_process_index))
        os.environ.setdefault("WORLD_SIZE", str(num_processes))
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29501")
        kwargs = engine_kwargs(spec)
        kwargs.update(gpu_memory_utilization=gpu_memory_utilization, distributed_executor_backend="external_launcher",
                      tensor_parallel_size=1, seed=process_index)
        self.backend = VLLMBackend(spec, inputs.adapter, engine=LLM(**kwargs))
        self.inputs, self.spec = inputs, spec
        self.stop_ids, self.pad_token_id = stop_ids, pad_token_id
        # OpenAI-style bias bounds: -100 leaves a token a probability of about e^-100.
        self.logit_bias = {token: -100.0 for token in suppressed_ids}
        self.sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens)
        self.synced_step: int | None = None

    def sync_weights(self, model) -> None:
        from transformers.core_model_loading import revert_weight_conversion

        from avrt.models.saved_layout import hub_key

        trainable = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
        rename = hub_key(model.config.model_type)  # the names vLLM's loader maps (`thinker.` for the Omni student)
        on_disk = {rename(key): value for key, value in revert_weight_conversion(model, trainable).items()}
        runner = self.backend.engine.llm_engine.model_executor.driver_worker.model_runner
        runner.model.load_weights(list(on_disk.items()))
        self.backend.engine.reset_prefix_cache()

    @torch.no_grad()
    def generate(self, model, batch: dict, forward_kwargs: dict, examples: list[TrainingExample],
                 seeds: list[int], step: int) -> tuple[torch.Tensor, torch.Tensor]:
        from avrt.models.vllm_backend import sampling_kwargs

        if self.synced_step != step:
            self.sync_weights(model)
            self.synced_step = step
        group_size = len(seeds) // len(examples)
        prompts, params = [], []
        for i, example in enumerate(examples):
            prepared = self.inputs.adapter.prepare(self.inputs.request(example), self.spec, self.backend.chat_template)
            request = self.inputs.adapter.vllm_request(prepared)
            request["prompt"] = self.backend.prompt_text(request["prompt"])
            for k in range(group_size):
                prompts.append(request)
                params.append({**sampling_kwargs(self.sampling, seeds[i * group_size + k]),
                               "stop_token_ids": self.stop_ids, "logit_bias": self.logit_bias or None})
        outputs = self.backend.run(prompts, params)
        tokens = [list(output.outputs[0].token_ids) for output in outputs]
        return pad_completions(tokens, self.stop_ids, self.pad_token_id, device=batch["input_ids"].device)
