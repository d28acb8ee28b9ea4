"""vLLM backend: offline batched inference on GPUs (tensor parallel, continuous batching).

`vllm` is imported here only, when a spec with `backend: vllm` is loaded. Each (request, sample)
is submitted as its own prompt with its own seed (`sample_seed`), the same seeds the
transformers backend draws with; vLLM's prefix cache shares the prompt work between copies.
A PEFT adapter of LoRA weights only is applied per request as a LoRA. One that carries other
weights too (Audio Flamingo 3's think mode) cannot be: the model then runs from the checkpoint
`avrt merge-adapter` merges it into (`merged_checkpoint`), which the workflow makes and passes.
"""

from __future__ import annotations

import logging
import os
import sys

from avrt.models.adapters import FamilyAdapter, GenerationRequest, get_adapter
from avrt.models.backends import (
    Completion,
    GenerationBackend,
    adapter_rank,
    check_unique_ids,
    resolve_adapter_dir,
    sample_seed,
)
from avrt.models.peft_adapter import NON_LORA_FILE
from avrt.models.spec import ModelSpec, SamplingParams

log = logging.getLogger(__name__)

# vLLM imports setuptools (through torch.utils.cpp_extension), whose distutils shim asserts when the
# standard library's distutils was imported first in the process (it was, in the test suite's
# process); with the standard library's distutils throughout there is nothing to assert.
os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # ranks vLLM compiles LoRA kernels for


def engine_kwargs(spec: ModelSpec, lora_rank: int | None = None) -> dict:
    """Arguments of `vllm.LLM(...)` for a spec."""
    kwargs = {
        "model": spec.checkpoint,
        "tokenizer": spec.processor_source,
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
        "dtype": spec.dtype,
        "tensor_parallel_size": spec.tensor_parallel_size,
        "max_model_len": spec.max_model_len,
        "max_num_seqs": spec.max_num_seqs,
        "gpu_memory_utilization": spec.gpu_memory_utilization,
        "enforce_eager": spec.enforce_eager,
        "skip_mm_profiling": spec.skip_mm_profiling,
        "seed": spec.sampling.seed,
    }
    if spec.limit_mm_per_prompt:
        kwargs["limit_mm_per_prompt"] = dict(spec.limit_mm_per_prompt)
    kwargs.update(get_adapter(spec.family).vllm_engine_kwargs)
    if lora_rank is not None:
        supported = [r for r in LORA_RANKS if r >= lora_rank]
        if not supported:
            raise ValueError(f"model '{spec.name}': LoRA rank {lora_rank} exceeds vLLM's largest ({LORA_RANKS[-1]})")
        kwargs.update(enable_lora=True, max_lora_rank=supported[0])
    return kwargs


def set_engine_in_process(name: str) -> None:
    """Ask vLLM for an engine core in this process (read when an engine is built, and cached by vLLM
    from then on: it holds for the whole process), unless the process has loaded llvmlite (numba,
    e.g. through librosa): vLLM 0.32's CPU build scans every loaded module's attributes while it
    starts an in-process engine, and llvmlite's library object answers any attribute, which breaks
    that scan ("'_lib_fn_wrapper' object has no attribute 'get'"). A child process has no llvmlite."""
    blocked = "llvmlite.binding" in sys.modules
    if blocked:
        log.warning("model '%s': llvmlite is loaded in this process, so vLLM's engine starts in its own process "
                    "(engine_in_process is ignored)", name)
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1" if blocked else "0"


def sampling_kwargs(sampling: SamplingParams, seed: int) -> dict:
    """Arguments of `vllm.SamplingParams(...)` for one sample (n=1; copies carry the other seeds)."""
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "max_tokens": sampling.max_new_tokens,
        "repetition_penalty": sampling.repetition_penalty,
        "seed": seed,
    }


class VLLMBackend(GenerationBackend):
    def __init__(self, spec: ModelSpec, adapter: FamilyAdapter | None = None, engine=None):
        """`engine`: an already built `vllm.LLM` for this spec (built here when None)."""
        super().__init__(spec, adapter)
        self.adapter_dir = resolve_adapter_dir(spec)
        if self.adapter_dir is not None and (self.adapter_dir / NON_LORA_FILE).is_file():
            raise ValueError(
                f"model '{spec.name}': the adapter in {self.adapter_dir} carries non-LoRA weights ({NON_LORA_FILE}),"
                " which a vLLM LoRA cannot apply; load the checkpoint `avrt merge-adapter` merges it into"
                " (the workflow does: rule merge_adapter)"
            )
        if engine is None:
            from vllm import LLM

            if spec.engine_in_process:
                set_engine_in_process(spec.name)
            rank = adapter_rank(self.adapter_dir) if self.adapter_dir else None
            engine = LLM(**engine_kwargs(spec, rank))
        self.engine = engine
        self.tokenizer = self.engine.get_tokenizer()
        self.chat_template = getattr(self.tokenizer, "chat_template", None)
        mismatch = self.adapter.template_mismatch(self.chat_template)
        if mismatch:
            log.warning("model '%s': %s", spec.name, mismatch)

    def close(self) -> None:
        """Stop the engine's processes (they hold its memory until then)."""
        self.engine.llm_engine.engine_core.shutdown()

    def prompt_text(self, text: str) -> str:
        """Drop a BOS the template wrote when the tokenizer adds its own (Gemma), as vLLM tokenizes."""
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and text.startswith(bos) and self.tokenizer("x").input_ids[:1] == [self.tokenizer.bos_token_id]:
            return text[len(bos) :]
        return text

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        check_unique_ids(requests)
        if not requests:
            return []
        sampling = self.spec.sampling
        prompts, params, keys = [], [], []
        for request in requests:
            prepared = self.adapter.prepare(request, self.spec, self.chat_template)
            vllm_request = self.adapter.vllm_request(prepared)
            vllm_request["prompt"] = self.prompt_text(vllm_request["prompt"])
            for k in range(sampling.n):
                seed = sample_seed(sampling.seed, request.request_id, k)
                prompts.append(vllm_request)
                params.append(sampling_kwargs(sampling, seed))
                keys.append((request.request_id, k, seed))
        outputs = self.run(prompts, params)
        completions = []
        for (request_id, k, seed), output in zip(keys, outputs, strict=True):
            sample = output.outputs[0]
            completions.append(
                Completion(
                    request_id=request_id,
                    sample_index=k,
                    text=sample.text,
                    prompt_tokens=len(output.prompt_token_ids),
                    completion_tokens=len(sample.token_ids),
                    finish_reason=str(sample.finish_reason),
                    seed=seed,
                )
            )
        return completions

    def run(self, prompts: list[dict], params: list[dict]) -> list:
        """One `LLM.generate` call over every prompt; returns vLLM's RequestOutputs in order."""
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("adapter", 1, str(self.adapter_dir)) if self.adapter_dir else None
        return self.engine.generate(
            prompts,
            sampling_params=[VLLMSamplingParams(**p) for p in params],
            lora_request=lora,
            use_tqdm=False,
        )
