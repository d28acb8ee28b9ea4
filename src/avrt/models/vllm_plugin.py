"""vLLM plugin (entry point `vllm.general_plugins`, which vLLM loads in every engine process): the
Qwen2.5-Omni checkpoints' architectures are served by `vllm_omni.Qwen2_5OmniThinkerReferencePositions`,
vLLM's thinker with the M-RoPE positions of the reference implementation (see that module).
The class is registered by name, so vLLM imports it only when it loads an Omni model."""

from __future__ import annotations

OMNI_ARCHITECTURES = ("Qwen2_5OmniModel", "Qwen2_5OmniForConditionalGeneration")
OMNI_CLASS = "avrt.models.vllm_omni:Qwen2_5OmniThinkerReferencePositions"


def register() -> None:
    from vllm import ModelRegistry

    for architecture in OMNI_ARCHITECTURES:
        ModelRegistry.register_model(architecture, OMNI_CLASS)
