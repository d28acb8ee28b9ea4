"""transformers backend on the tiny zoo models, with real synthetic frames and audio."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace

import pytest
from models_fixtures import make_clip, tiny_zoo  # noqa: F401  (tiny_zoo is a fixture)

from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model, sample_seed
from avrt.models.spec import ModelSpec

MODALITIES = {
    "qwen2_5_omni": ("frames", "audio"),
    "qwen2_5_vl": ("frames",),
    "qwen2_audio": ("audio",),
    "audio_flamingo3": ("audio",),
    "text_llm": (),
}
MAX_NEW = 6


def tiny_spec(zoo, family, *, batch_size=2, **sampling) -> ModelSpec:
    entry = json.loads((zoo / "zoo.json").read_text())["families"][family]
    cfg = {"family": family, "checkpoint": entry["checkpoint"], "dtype": "float32", "batch_size": batch_size,
           "sampling": {"max_new_tokens": MAX_NEW, **sampling}}
    if "adapter" in entry:
        cfg.update(adapter=entry["adapter"], adapter_subfolder=entry["adapter_subfolder"])
    return ModelSpec.from_config(family, cfg)


def requests_for(family, count=3):
    modalities = MODALITIES[family]
    return [
        GenerationRequest(
            f"{family}-{i}",
            "Which object makes the sound?" + " Answer briefly." * i,  # different lengths: left padding matters
            make_clip(f"clip{i}", tone_hz=300 + 150 * i, seed=i) if modalities else None,
            modalities,
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def backends(tiny_zoo):  # noqa: F811
    loaded = {}

    def get(family):
        if family not in loaded:
            loaded[family] = load_model(tiny_spec(tiny_zoo, family))
        return loaded[family]

    return get


@pytest.mark.parametrize("family", list(MODALITIES))
def test_greedy_batched_generation_equals_one_at_a_time(backends, family):
    backend = backends(family)
    requests = requests_for(family)
    batched = backend.generate(requests)  # batch_size 2: one full batch and one of a single prompt
    sequential = [backend.generate([r])[0] for r in requests]
    assert [c.request_id for c in batched] == [r.request_id for r in requests]
    assert [c.text for c in batched] == [c.text for c in sequential]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in sequential]
    for completion in batched:
        assert 1 <= completion.completion_tokens <= MAX_NEW
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert completion.completion_tokens == MAX_NEW
        if completion.completion_tokens < MAX_NEW:
            assert completion.finish_reason == "stop"


# Placeholder tokens one clip expands to. 8 frames of 56x56: 4 temporal steps of 4x4 patches merged
# 2x2 (16 tokens), except that Qwen2.5-Omni's processor imposes its own floor of 128 tokens' worth of
# pixels per frame (56 -> 336 px: 24x24 patches, 144 tokens a step, 576). 10 s of audio: 1000 mel
# frames, halved by the conv and by pooling (250 tokens).
MEDIA_TOKENS = {
    "qwen2_5_omni": {"<|VIDEO|>": 576, "<|AUDIO|>": 250},
    "qwen2_5_vl": {"<|video_pad|>": 16},
    "qwen2_audio": {"<|AUDIO|>": 250},
    "audio_flamingo3": {"<sound>": 250},
}


@pytest.mark.parametrize("family", list(MEDIA_TOKENS))
def test_media_expands_to_the_placeholder_tokens_the_model_embeds(backends, family):
    backend = backends(family)
    prepared = backend.adapter.prepare(requests_for(family, 1)[0], backend.spec, backend.chat_template)
    ids = backend.processor(**backend.adapter.hf_processor_kwargs([prepared]), return_tensors="pt")["input_ids"][0]
    ids = ids.tolist()
    counts = {token: ids.count(backend.tokenizer.convert_tokens_to_ids(token)) for token in MEDIA_TOKENS[family]}
    assert counts == MEDIA_TOKENS[family]


def test_omni_prompt_interleaves_audio_with_video_at_the_clip_frame_rate(backends):
    backend = backends("qwen2_5_omni")
    prepared = backend.adapter.prepare(requests_for("qwen2_5_omni", 1)[0], backend.spec, backend.chat_template)
    inputs = backend.processor(**backend.adapter.hf_processor_kwargs([prepared]), return_tensors="pt")
    # temporal_patch_size 2 / 0.8 fps = 2.5 s per temporal grid step (the default 2.0 fps would give 1.0)
    assert inputs["video_second_per_grid"].tolist() == pytest.approx([2.5])
    ids = inputs["input_ids"][0].tolist()
    tokenizer = backend.tokenizer
    audio_id, video_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>"), tokenizer.convert_tokens_to_ids("<|VIDEO|>")
    runs = [t for i, t in enumerate(ids) if t in (audio_id, video_id) and (i == 0 or ids[i - 1] != t)]
    assert runs[:4] == [video_id, audio_id, video_id, audio_id]  # chunks alternate, video first


def test_sampling_draws_each_sample_with_its_own_seed_whatever_the_batch(tiny_zoo):  # noqa: F811
    spec = tiny_spec(tiny_zoo, "qwen2_5_vl", batch_size=4, temperature=1.0, top_p=0.95, top_k=50, n=3, seed=7)
    backend = load_model(spec)
    requests = requests_for("qwen2_5_vl", 2)
    together = backend.generate(requests)
    alone = backend.generate(requests[1:])
    assert [(c.request_id, c.sample_index) for c in together] == [(r.request_id, k) for r in requests for k in range(3)]
    assert [c.seed for c in together] == [sample_seed(7, r.request_id, k) for r in requests for k in range(3)]
    assert [c.text for c in together[3:]] == [c.text for c in alone]
    assert len({c.text for c in together[:3]}) > 1  # three different draws for one prompt


def test_greedy_with_n_samples_repeats_the_one_answer(tiny_zoo):  # noqa: F811
    backend = load_model(tiny_spec(tiny_zoo, "text_llm", n=2))
    first, second = backend.generate(requests_for("text_llm", 1))
    assert (first.sample_index, second.sample_index) == (0, 1)
    assert first.text == second.text and first.seed != second.seed


def test_think_adapter_is_merged_into_the_language_model_only(tiny_zoo, backends):  # noqa: F811
    spec = tiny_spec(tiny_zoo, "audio_flamingo3")
    plain = load_model(replace(spec, adapter=None, adapter_subfolder=None)).model.state_dict()
    adapted = backends("audio_flamingo3").model.state_dict()
    assert plain.keys() == adapted.keys()  # merged: no LoRA modules left behind
    changed = {k for k in plain if not plain[k].equal(adapted[k])}
    # the LoRA on the decoder's linear layers, the non-LoRA embeddings and head; audio tower and projector stay
    assert {"model.language_model.embed_tokens.weight", "lm_head.weight"} < changed
    assert all(re.fullmatch(r"model\.language_model\.(layers\.\d+\..*_proj|embed_tokens)\.weight|lm_head\.weight", k)
               for k in changed)


def test_kimi_vl_on_transformers_is_refused_clearly():
    spec = ModelSpec.from_config(
        "visual_teacher", {"family": "kimi_vl", "checkpoint": "moonshotai/Kimi-VL-A3B-Thinking"}
    )
    with pytest.raises(ValueError, match="'visual_teacher'.*no transformers class; use `backend: vllm`"):
        load_model(spec)


def test_duplicate_request_ids_are_refused(backends):
    with pytest.raises(ValueError, match=r"duplicate request ids \['x'\]"):
        backends("text_llm").generate([GenerationRequest("x", "a"), GenerationRequest("x", "b")])


def test_too_long_prompt_is_refused_naming_it(tiny_zoo):  # noqa: F811
    spec = tiny_spec(tiny_zoo, "qwen2_5_omni")
    backend = load_model(replace(spec, max_model_len=256))
    with pytest.raises(ValueError, match=r"'qwen2_5_omni-0': \d+\}? exceed max_model_len 256"):
        backend.generate(requests_for("qwen2_5_omni", 1))


def test_the_transformers_path_never_imports_vllm(tiny_zoo, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "vllm", None)  # any `import vllm` now raises ImportError
    backend = load_model(tiny_spec(tiny_zoo, "qwen2_audio"))
    assert backend.generate(requests_for("qwen2_audio", 1))[0].completion_tokens >= 1
