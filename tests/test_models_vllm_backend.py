"""vLLM backend: engine and sampling arguments, and its glue around a stand-in engine (fast, no
engine start). The real engine runs in test_vllm_engine.py, side by side with transformers.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from models_fixtures import make_clip, tiny_zoo  # noqa: F401  (fixture)
from transformers import AutoTokenizer

from avrt.models.adapters import GenerationRequest
from avrt.models.backends import sample_seed
from avrt.models.peft_adapter import NON_LORA_FILE
from avrt.models.spec import ModelSpec
from avrt.models.vllm_backend import VLLMBackend, engine_kwargs, sampling_kwargs


KIMI_REVISION = "16681d8ac24e505088698e4e34ea494dd6e24400"  # remote code runs only at a pinned commit


def spec(**extra) -> ModelSpec:
    return ModelSpec.from_config("visual_teacher", {
        "family": "kimi_vl", "checkpoint": "moonshotai/Kimi-VL-A3B-Thinking", "backend": "vllm",
        "revision": KIMI_REVISION, "trust_remote_code": True, "tensor_parallel_size": 2, "max_num_seqs": 16, "limit_mm_per_prompt": {"image": 8},
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 4096, "n": 2, "seed": 5}, **extra,
    })


def test_engine_arguments_come_from_the_spec():
    kwargs = engine_kwargs(spec())
    assert kwargs == {
        "model": "moonshotai/Kimi-VL-A3B-Thinking", "tokenizer": "moonshotai/Kimi-VL-A3B-Thinking",
        "revision": KIMI_REVISION, "trust_remote_code": True, "dtype": "bfloat16", "tensor_parallel_size": 2,
        "max_model_len": 32768, "max_num_seqs": 16, "gpu_memory_utilization": 0.9, "enforce_eager": False,
        "skip_mm_profiling": False, "seed": 5, "limit_mm_per_prompt": {"image": 8},
    }
    assert "enable_lora" not in kwargs


def test_the_cpu_demo_s_start_up_savings_reach_the_engine_only_when_set():
    assert engine_kwargs(spec(skip_mm_profiling=True))["skip_mm_profiling"] is True
    assert ModelSpec.from_config("m", {"family": "text_llm", "checkpoint": "x"}).engine_in_process is False


def test_trust_remote_code_is_off_unless_the_spec_sets_it():
    assert engine_kwargs(spec(trust_remote_code=False))["trust_remote_code"] is False
    plain = ModelSpec.from_config("m", {"family": "text_llm", "checkpoint": "Qwen/Qwen2.5-14B-Instruct"})
    assert engine_kwargs(plain)["trust_remote_code"] is False


@pytest.mark.parametrize(("rank", "max_rank"), [(8, 8), (12, 16), (64, 64)])
def test_lora_rank_is_rounded_up_to_a_supported_one(rank, max_rank):
    kwargs = engine_kwargs(spec(), lora_rank=rank)
    assert kwargs["enable_lora"] is True and kwargs["max_lora_rank"] == max_rank


def test_sampling_arguments_are_one_sample_with_its_seed():
    assert sampling_kwargs(spec().sampling, seed=123) == {
        "n": 1, "temperature": 0.8, "top_p": 0.95, "top_k": -1, "max_tokens": 4096, "repetition_penalty": 1.0,
        "seed": 123,
    }


class StandInEngine:
    """Fakes `vllm.LLM`: a tokenizer, and outputs shaped like vLLM's RequestOutput."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def get_tokenizer(self):
        return self.tokenizer


class FakeEngineBackend(VLLMBackend):
    def run(self, prompts, params):
        self.submitted = (prompts, params)
        return [
            SimpleNamespace(prompt_token_ids=[0] * 11,
                            outputs=[SimpleNamespace(text=f"answer {p['seed']}", token_ids=[1, 2, 3],
                                                     finish_reason="length" if i % 2 else "stop")])
            for i, p in enumerate(params)
        ]


def test_fake_engine_each_sample_is_its_own_prompt_with_its_own_seed(tiny_zoo):  # noqa: F811
    tokenizer = AutoTokenizer.from_pretrained(tiny_zoo / "text_llm")
    backend = FakeEngineBackend(spec(), engine=StandInEngine(tokenizer))
    requests = [GenerationRequest(f"q{i}", "Which animal?", make_clip(seed=i), ("frames",)) for i in range(2)]
    completions = backend.generate(requests)
    prompts, params = backend.submitted
    assert len(prompts) == 4 and prompts[0] is prompts[1]  # n=2 copies of each rendered request
    assert len(prompts[0]["multi_modal_data"]["image"]) == 8
    seeds = [sample_seed(5, r.request_id, k) for r in requests for k in range(2)]
    assert [p["seed"] for p in params] == seeds
    assert [(c.request_id, c.sample_index, c.seed) for c in completions] == [
        (r.request_id, k, sample_seed(5, r.request_id, k)) for r in requests for k in range(2)]
    assert completions[0].text == f"answer {seeds[0]}"
    assert [c.finish_reason for c in completions] == ["stop", "length", "stop", "length"]
    assert completions[0].prompt_tokens == 11 and completions[0].completion_tokens == 3


def test_fake_engine_text_model_uses_the_checkpoint_template(tiny_zoo):  # noqa: F811
    tokenizer = AutoTokenizer.from_pretrained(tiny_zoo / "text_llm")
    merger = ModelSpec.from_config("merger", {"family": "text_llm", "checkpoint": "Qwen/Qwen2.5-14B-Instruct",
                                              "backend": "vllm"})
    backend = FakeEngineBackend(merger, engine=StandInEngine(tokenizer))
    backend.generate([GenerationRequest("m1", "Merge these.")])
    prompt = backend.submitted[0][0]["prompt"]
    assert prompt == tokenizer.apply_chat_template(
        [{"role": "user", "content": "Merge these."}], tokenize=False, add_generation_prompt=True)


def af3_vllm_spec(checkpoint, adapter) -> ModelSpec:
    return ModelSpec.from_config("audio_teacher", {"family": "audio_flamingo3", "checkpoint": str(checkpoint),
                                                   "backend": "vllm", "adapter": str(adapter),
                                                   "adapter_subfolder": "think"})


def test_fake_engine_lora_only_adapter_directory_is_resolved_from_the_spec(tiny_zoo, tmp_path):  # noqa: F811
    shutil.copytree(tiny_zoo / "audio_flamingo3" / "think", tmp_path / "think",
                    ignore=shutil.ignore_patterns(NON_LORA_FILE))  # a LoRA and nothing else
    tokenizer = AutoTokenizer.from_pretrained(tiny_zoo / "audio_flamingo3")
    backend = FakeEngineBackend(af3_vllm_spec(tiny_zoo / "audio_flamingo3", tmp_path),
                                engine=StandInEngine(tokenizer))
    assert backend.adapter_dir == tmp_path / "think"


def test_an_adapter_with_non_lora_weights_is_refused_pointing_at_the_merged_checkpoint(tiny_zoo):  # noqa: F811
    """AF3 think's non-LoRA weights cannot ride a vLLM LoRARequest; loading without them is refused."""
    entry = json.loads((tiny_zoo / "zoo.json").read_text())["families"]["audio_flamingo3"]
    with pytest.raises(ValueError, match=r"'audio_teacher': the adapter in .*think carries non-LoRA weights "
                                         r"\(non_lora_trainables.bin\).*avrt merge-adapter"):
        FakeEngineBackend(af3_vllm_spec(entry["checkpoint"], entry["adapter"]), engine=StandInEngine(None))


def test_missing_adapter_directory_is_reported(tmp_path):
    af3 = ModelSpec.from_config("audio_teacher", {"family": "audio_flamingo3", "checkpoint": "x", "backend": "vllm",
                                                  "adapter": str(tmp_path), "adapter_subfolder": "think"})
    with pytest.raises(FileNotFoundError, match="'audio_teacher': no PEFT adapter"):
        FakeEngineBackend(af3, engine=StandInEngine(None))


class FakeBosTokenizer:
    """A tokenizer that, like Gemma's, puts <bos> in front of whatever it encodes."""

    bos_token, bos_token_id, chat_template = "<bos>", 2, None

    def __call__(self, text):
        return SimpleNamespace(input_ids=[2, 7])


def test_fake_engine_template_bos_is_dropped_when_the_tokenizer_adds_its_own():
    merger = ModelSpec.from_config("merger", {"family": "text_llm", "checkpoint": "google/gemma-3-12b-it",
                                              "backend": "vllm"})
    backend = FakeEngineBackend(merger, engine=StandInEngine(FakeBosTokenizer()))
    assert backend.prompt_text("<bos><start_of_turn>user\nHi") == "<start_of_turn>user\nHi"
    assert backend.prompt_text("<start_of_turn>user\nHi") == "<start_of_turn>user\nHi"


def test_fake_engine_no_requests_submit_nothing(tiny_zoo):  # noqa: F811
    backend = FakeEngineBackend(spec(), engine=StandInEngine(AutoTokenizer.from_pretrained(tiny_zoo / "text_llm")))
    assert backend.generate([]) == [] and not hasattr(backend, "submitted")
