"""transformers backend: batched `generate` on any device, the reference path for tests and demos.

Prompts that can share a processor call (same media kinds and frame rate) are batched, left
padded, `spec.batch_size` at a time. Greedy when the temperature is 0; otherwise every sample is
drawn with its own seeded generator (`PerRowSampler`), so a sample does not depend on which other
prompts shared its batch. Decoding settings come from the spec alone: the checkpoint's
`generation_config.json` contributes its stop tokens, none of its sampling defaults.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
import transformers
from transformers import AutoProcessor, GenerationConfig, LogitsProcessor, LogitsProcessorList

from avrt.models.adapters import FamilyAdapter, GenerationRequest, PreparedPrompt
from avrt.models.backends import (
    Completion,
    GenerationBackend,
    check_unique_ids,
    resolve_adapter_dir,
    sample_seed,
)
from avrt.models.peft_adapter import apply_adapter
from avrt.models.spec import ModelSpec, SamplingParams

log = logging.getLogger(__name__)

# Processor outputs that carry media features: cast to the model's dtype (the rest keep theirs).
FEATURE_KEYS = ("pixel_values", "pixel_values_videos", "input_features")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "auto": "auto"}


def load_processor(spec: ModelSpec):
    """The checkpoint's processor (a tokenizer for text-only models)."""
    return AutoProcessor.from_pretrained(
        spec.processor_source,
        revision=spec.revision if spec.processor is None else None,
        trust_remote_code=spec.trust_remote_code,
    )


def load_hf_model(spec: ModelSpec, adapter: FamilyAdapter):
    """Load the checkpoint with the family's transformers class, the spec's PEFT adapter applied
    whole (non-LoRA weights and LoRA, `peft_adapter.apply_adapter`) and merged."""
    if adapter.hf_model_class is None:
        raise ValueError(
            f"model '{spec.name}': family '{spec.family}' has no transformers class; use `backend: vllm`"
        )
    model_class = getattr(transformers, adapter.hf_model_class)
    kwargs = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code, "dtype": DTYPES[spec.dtype]}
    if torch.cuda.is_available():
        kwargs["device_map"] = "auto"
    model = model_class.from_pretrained(spec.checkpoint, **kwargs)
    adapter_dir = resolve_adapter_dir(spec)
    if adapter_dir is not None:  # its non-LoRA weights too (AF3 think), then its LoRA, merged
        model = apply_adapter(model, adapter_dir)
    return model.eval()


def stop_token_ids(generation_config, tokenizer, adapter: FamilyAdapter, model_name: str) -> list[int]:
    """Tokens that end a completion: the checkpoint's eos ids, the tokenizer's eos and the family's end of turn."""
    ids = generation_config.eos_token_id if generation_config is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    extra = [tokenizer.eos_token_id]
    if adapter.end_of_turn:
        extra.append(tokenizer.convert_tokens_to_ids(adapter.end_of_turn))
    ids += [i for i in extra if i is not None and i != tokenizer.unk_token_id and i not in ids]
    if not ids:
        raise ValueError(f"model '{model_name}': no end-of-sequence token known")
    return ids


class PerRowSampler(LogitsProcessor):
    """Draws each row's next token with that row's own generator and forces it.

    Generation runs greedy on top of it, so the forced token is taken. Temperature, top-k and
    top-p are applied here, after the processors transformers adds (repetition penalty).
    """

    def __init__(self, seeds: list[int], sampling: SamplingParams):
        self.seeds = seeds
        self.sampling = sampling
        self.generators: list[torch.Generator] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.generators is None:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        logits = scores.float() / self.sampling.temperature
        if self.sampling.top_k > 0:
            kth = torch.topk(logits, min(self.sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.sampling.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            sorted_probs = sorted_logits.softmax(-1)
            # Drop a token once the mass before it reaches top_p (the top token always stays).
            drop_sorted = sorted_probs.cumsum(-1) - sorted_probs >= self.sampling.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(-1)
        chosen = torch.stack(
            [torch.multinomial(probs[row], 1, generator=gen) for row, gen in enumerate(self.generators)]
        )
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, chosen, 0.0)


class HFBackend(GenerationBackend):
    def __init__(self, spec: ModelSpec, adapter: FamilyAdapter | None = None):
        super().__init__(spec, adapter)
        self.model = load_hf_model(spec, self.adapter)
        self.processor = load_processor(spec)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.chat_template = getattr(self.processor, "chat_template", None) or self.tokenizer.chat_template
        mismatch = self.adapter.template_mismatch(self.chat_template)
        if mismatch:
            log.warning("model '%s': %s", spec.name, mismatch)
        self.stop_ids = stop_token_ids(self.model.generation_config, self.tokenizer, self.adapter, spec.name)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        # generate() fills unset options from the model's generation config; keep only the stop and
        # pad tokens there, so no sampling default of the checkpoint (temperature, top_p...) leaks in.
        self.model.generation_config = GenerationConfig(eos_token_id=self.stop_ids, pad_token_id=self.pad_id)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        check_unique_ids(requests)
        prepared = [self.adapter.prepare(r, self.spec, self.chat_template) for r in requests]
        sampling = self.spec.sampling
        # Greedy samples are all the same: decode once and copy it n times.
        draws = 1 if sampling.greedy else sampling.n
        groups: dict[tuple, list[tuple[PreparedPrompt, int]]] = {}
        for p in prepared:
            for k in range(draws):
                groups.setdefault(self.adapter.batch_key(p), []).append((p, k))
        done: dict[tuple[str, int], Completion] = {}
        for rows in groups.values():
            for start in range(0, len(rows), self.spec.batch_size):
                for completion in self._generate_batch(rows[start : start + self.spec.batch_size]):
                    done[(completion.request_id, completion.sample_index)] = completion
        return [
            replace(done[(p.request_id, k if draws > 1 else 0)], sample_index=k,
                    seed=sample_seed(sampling.seed, p.request_id, k))
            for p in prepared
            for k in range(sampling.n)
        ]

    @torch.inference_mode()
    def _generate_batch(self, rows: list[tuple[PreparedPrompt, int]]) -> list[Completion]:
        sampling = self.spec.sampling
        batch = [p for p, _ in rows]
        seeds = [sample_seed(sampling.seed, p.request_id, k) for p, k in rows]
        inputs = self.processor(**self.adapter.hf_processor_kwargs(batch), return_tensors="pt")
        prompt_tokens = inputs["attention_mask"].sum(-1).tolist()
        too_long = {p.request_id: n for p, n in zip(batch, prompt_tokens) if n > self.spec.max_model_len}
        if too_long:
            raise ValueError(
                f"model '{self.spec.name}': prompt tokens {too_long} exceed max_model_len {self.spec.max_model_len}"
            )
        inputs = inputs.to(self.model.device)
        for key in FEATURE_KEYS:
            if key in inputs:
                inputs[key] = inputs[key].to(self.model.dtype)
        config = GenerationConfig(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=False,
            repetition_penalty=sampling.repetition_penalty,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
        )
        processors = LogitsProcessorList([] if sampling.greedy else [PerRowSampler(seeds, sampling)])
        output = self.model.generate(
            **inputs,
            **self.adapter.hf_generate_kwargs(batch),
            generation_config=config,
            logits_processor=processors,
        )
        prompt_len = inputs["input_ids"].shape[1]
        completions = []
        for i, (p, k) in enumerate(rows):
            tokens = output[i, prompt_len:].tolist()
            stop_at = next((j for j, t in enumerate(tokens) if t in self.stop_ids), None)
            tokens = tokens if stop_at is None else tokens[: stop_at + 1]
            completions.append(
                Completion(
                    request_id=p.request_id,
                    sample_index=k,
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                    prompt_tokens=int(prompt_tokens[i]),
                    completion_tokens=len(tokens),
                    finish_reason="length" if stop_at is None else "stop",
                    seed=seeds[i],
                )
            )
        return completions
