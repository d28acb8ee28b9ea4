"""The model layer: every teacher, merger, checker and student is a model answering prompts with media.

- `spec`: `ModelSpec` / `SamplingParams` built from a config's `models:` entries.
- `adapters`: per-family chat format and media inputs (`ADAPTERS`, `get_adapter`).
- `media_inputs`: the one place model inputs are cut from a clip (modalities, masks).
- `backends`: `load_model(spec).generate(requests) -> [Completion]`, on transformers
  (`hf_backend`) or vLLM (`vllm_backend`, imported only when used).
- `peft_adapter`: a spec's PEFT adapter applied whole, non-LoRA weights and LoRA, then merged
  (Audio Flamingo 3's think mode).
- `merged_checkpoint`: `avrt merge-adapter`, the model merged with its adapter saved as a plain
  checkpoint, which vLLM loads in its place.
"""
