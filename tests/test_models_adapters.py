"""Family adapters: exact prompts and media structures (golden files), and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from models_fixtures import check_golden, describe, make_clip

from avrt.core.config import SCHEMA_PATH
from avrt.models import chat_templates
from avrt.models.adapters import ADAPTERS, GenerationRequest, get_adapter
from avrt.models.spec import ModelSpec

PROMPT = "What makes the sound? Choose one: (A) a dog (B) a car"

# family -> (golden case, modalities, extra spec keys)
CASES = [
    ("kimi_vl", "frames", ("frames",),
     {"backend": "vllm", "trust_remote_code": True, "revision": "16681d8ac24e505088698e4e34ea494dd6e24400"}),
    ("audio_flamingo3", "audio_think", ("audio",),
     {"prompt_suffix": " Please think and reason about the input audio before you respond."}),
    ("qwen2_5_vl", "frames", ("frames",), {}),
    ("qwen2_audio", "audio", ("audio",), {}),
    ("qwen2_5_omni", "frames_audio", ("frames", "audio"), {}),
    ("qwen2_5_omni", "frames", ("frames",), {}),
    ("qwen2_5_omni", "audio", ("audio",), {}),
    ("text_llm", "text", (), {}),
]


def spec_for(family: str, **extra) -> ModelSpec:
    return ModelSpec.from_config(family, {"family": family, "checkpoint": f"tiny/{family}", **extra})


def rendered(family, modalities, extra, requests=None):
    adapter = get_adapter(family)
    spec = spec_for(family, **extra)
    template = chat_templates.QWEN2_5_INSTRUCT if family == "text_llm" else None
    requests = requests or [
        GenerationRequest("q1", PROMPT, make_clip("a", tone_hz=440, seed=1) if modalities else None, modalities),
        GenerationRequest("q2", PROMPT + " ?", make_clip("b", tone_hz=660, seed=2) if modalities else None, modalities),
    ]
    prepared = [adapter.prepare(r, spec, template) for r in requests]
    return adapter, spec, prepared


@pytest.mark.parametrize(("family", "case", "modalities", "extra"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_adapter_renders_golden_prompt_and_media(family, case, modalities, extra):
    adapter, spec, prepared = rendered(family, modalities, extra)
    actual = {
        "messages": adapter.messages(PROMPT, prepared[0].media, spec),
        "prompt": prepared[0].text,
        "vllm_request": describe(adapter.vllm_request(prepared[0])),
    }
    if adapter.hf_model_class is not None:
        actual["hf_processor_kwargs"] = describe(adapter.hf_processor_kwargs(prepared))
        actual["hf_generate_kwargs"] = adapter.hf_generate_kwargs(prepared)
    check_golden(f"{family}__{case}", actual)


def test_registry_covers_exactly_the_families_the_schema_allows():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    assert set(ADAPTERS) == set(schema["$defs"]["model_spec"]["properties"]["family"]["enum"])
    for family, adapter in ADAPTERS.items():
        assert adapter.family == family


def test_unknown_family_error_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model family 'whisper'.*qwen2_5_omni"):
        get_adapter("whisper")


def test_omni_interleaves_audio_in_video_at_the_frames_own_rate():
    adapter, _, prepared = rendered("qwen2_5_omni", ("frames", "audio"), {})
    kwargs = adapter.hf_processor_kwargs(prepared)
    assert kwargs["fps"] == pytest.approx(0.8)  # 8 frames over 10 s, not the processor's 2.0
    assert kwargs["use_audio_in_video"] is True and len(kwargs["audio"]) == 2
    assert adapter.hf_generate_kwargs(prepared) == {"use_audio_in_video": True}
    request = adapter.vllm_request(prepared[0])
    assert request["mm_processor_kwargs"] == {"fps": pytest.approx(0.8), "use_audio_in_video": True,
                                              "second_per_grid_ts": [pytest.approx(2.5)]}
    # One video placeholder; the audio rides in the video, so no separate audio placeholder.
    assert prepared[0].text.count("<|VIDEO|>") == 1 and "<|AUDIO|>" not in prepared[0].text


def test_kimi_vl_gets_every_frame_as_an_image_in_order():
    adapter, _, prepared = rendered("kimi_vl", ("frames",), {"backend": "vllm"})
    images = adapter.vllm_request(prepared[0])["multi_modal_data"]["image"]
    frames = prepared[0].media.frames
    assert len(images) == 8 == prepared[0].text.count("<|media_pad|>")
    assert all(np.array_equal(np.asarray(img), frame) for img, frame in zip(images, frames))


def test_kimi_vl_has_no_transformers_path():
    assert get_adapter("kimi_vl").hf_model_class is None


def test_prompt_suffix_and_system_prompt_come_from_the_spec():
    adapter = get_adapter("audio_flamingo3")
    spec = spec_for("audio_flamingo3", prompt_suffix=" Think first.", system_prompt="Be brief.")
    prepared = adapter.prepare(GenerationRequest("q", "Q?", make_clip(), ("audio",)), spec)
    assert prepared.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<sound>Q? Think first.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_modality_the_family_cannot_take_is_refused_naming_the_request():
    adapter = get_adapter("qwen2_audio")
    request = GenerationRequest("sample-7", PROMPT, make_clip(), ("frames", "audio"))
    with pytest.raises(ValueError, match=r"request 'sample-7'.*cannot take \['frames'\]"):
        adapter.prepare(request, spec_for("qwen2_audio"))


def test_masked_modality_keeps_its_placeholder_with_blank_content():
    adapter = get_adapter("qwen2_5_omni")
    clip = make_clip()
    spec = spec_for("qwen2_5_omni")
    plain = adapter.prepare(GenerationRequest("q", PROMPT, clip, ("frames", "audio")), spec)
    masked = adapter.prepare(GenerationRequest("q", PROMPT, clip, ("frames", "audio"), mask=("audio",)), spec)
    assert masked.text == plain.text
    assert np.array_equal(masked.media.frames, clip.frames)
    assert masked.media.audio.shape == clip.audio.shape and not masked.media.audio.any()


def test_text_llm_needs_the_checkpoint_template():
    adapter = get_adapter("text_llm")
    with pytest.raises(ValueError, match="checkpoint's chat template"):
        adapter.prepare(GenerationRequest("q", PROMPT), spec_for("text_llm"))


def test_template_mismatch_reports_a_checkpoint_template_that_renders_differently():
    adapter = get_adapter("qwen2_5_vl")
    assert adapter.template_mismatch(chat_templates.QWEN2_5_VL) is None
    other = chat_templates.QWEN2_5_VL.replace("You are a helpful assistant.", "You are terse.")
    assert "You are terse." in adapter.template_mismatch(other)


def test_template_mismatch_reports_a_checkpoint_template_that_cannot_render_media():
    text_only = chat_templates.QWEN2_5_INSTRUCT  # concatenates content as a string: fails on media lists
    assert "fails on it" in get_adapter("kimi_vl").template_mismatch(text_only)
