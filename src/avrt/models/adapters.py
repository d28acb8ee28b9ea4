"""Family adapters: a prompt and a clip's media in, the model's own chat format and inputs out.

An adapter renders one request into a `PreparedPrompt` (the full prompt text and the media, cut by
`build_media_inputs`), then turns prepared prompts into what each backend takes: the keyword
arguments of a transformers processor call (a batch) and a vLLM request dict (one prompt)
`{"prompt": str, "multi_modal_data": {...}, "mm_processor_kwargs": {...}}`, empty parts left out.
Backends never look at a family; `ADAPTERS` maps the config's `family` to its adapter, and
`register_adapter` adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
from PIL import Image
from transformers.utils.chat_template_utils import render_jinja_template

from avrt.models import chat_templates
from avrt.models.media_inputs import MediaInputs, build_media_inputs
from avrt.models.spec import ModelSpec


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to answer: `modalities` say which of the clip's media the model sees.

    `mask` lists modalities that stay in the prompt but are blanked (frames) or silenced (audio).
    """

    request_id: str
    prompt: str
    media: Any = None  # avrt.core.clip_media.ClipMedia, or None for text-only prompts
    modalities: tuple[str, ...] = ()
    mask: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedPrompt:
    """A request rendered for one family: the exact prompt text and the media it refers to."""

    request_id: str
    text: str
    media: MediaInputs


class FamilyAdapter:
    """Shared rendering; subclasses say which media a family takes and how it is passed."""

    family: ClassVar[str]
    modalities: ClassVar[frozenset[str]] = frozenset()
    # None: render with the checkpoint's own template (passed to `prepare`).
    chat_template: ClassVar[str | None] = None
    # None: the template's own default system message (or none) applies.
    default_system: ClassVar[str | None] = None
    # transformers class that loads the checkpoint; None: the family has no transformers class.
    hf_model_class: ClassVar[str | None] = None
    # Token that ends an assistant turn, added to the stop tokens of transformers generation.
    end_of_turn: ClassVar[str | None] = "<|im_end|>"
    # Arguments of `vllm.LLM(...)` the family needs whatever the spec says.
    vllm_engine_kwargs: ClassVar[dict[str, Any]] = {}

    # ---- rendering -------------------------------------------------------------------------
    def media_content(self, media: MediaInputs) -> list[dict]:
        """Content items standing for the media, in the order the family expects them."""
        return []

    def system_messages(self, spec: ModelSpec) -> list[dict]:
        system = spec.system_prompt if spec.system_prompt is not None else self.default_system
        return [{"role": "system", "content": system}] if system is not None else []

    def messages(self, prompt: str, media: MediaInputs, spec: ModelSpec) -> list[dict]:
        text = {"type": "text", "text": prompt + spec.prompt_suffix}
        return [*self.system_messages(spec), {"role": "user", "content": [*self.media_content(media), text]}]

    def render(self, messages: list[dict], chat_template: str | None = None) -> str:
        template = self.chat_template or chat_template
        if not template:
            raise ValueError(f"family '{self.family}' renders with the checkpoint's chat template, and none was given")
        rendered, _ = render_jinja_template([messages], chat_template=template, add_generation_prompt=True)
        return rendered[0]

    def template_mismatch(self, checkpoint_template: str | None) -> str | None:
        """Describe how the checkpoint's own template renders a probe chat differently, if it does."""
        if self.chat_template is None or not checkpoint_template:
            return None
        one_of_each = MediaInputs(
            frames=np.zeros((1, 1, 1, 3), np.uint8), frames_fps=1.0, audio=np.zeros(1, np.float32)
        )
        probe = [{"role": "user", "content": [*self.media_content(one_of_each), {"type": "text", "text": "Q?"}]}]
        ours = self.render(probe)
        try:
            theirs = render_jinja_template([probe], chat_template=checkpoint_template, add_generation_prompt=True)[0][0]
        except Exception as err:  # a template that cannot render the probe differs by definition
            return f"family '{self.family}' renders {ours!r}; the checkpoint's template fails on it ({err})"
        if ours == theirs:
            return None
        return f"family '{self.family}' renders {ours!r}; the checkpoint's template renders {theirs!r}"

    def prepare(self, request: GenerationRequest, spec: ModelSpec, chat_template: str | None = None) -> PreparedPrompt:
        """Render `request` for this family; errors name the request."""
        try:
            unsupported = sorted(set(request.modalities) - self.modalities)
            if unsupported:
                raise ValueError(
                    f"family '{self.family}' cannot take {unsupported} "
                    f"(it takes: {', '.join(sorted(self.modalities)) or 'text only'})"
                )
            media = build_media_inputs(
                request.media,
                request.modalities,
                mask=request.mask,
                video_fps=spec.video_fps,
                video_max_frames=spec.video_max_frames,
            )
            text = self.render(self.messages(request.prompt, media, spec), chat_template)
        except ValueError as err:
            raise ValueError(f"request {request.request_id!r}: {err}") from None
        return PreparedPrompt(request_id=request.request_id, text=text, media=media)

    # ---- transformers ----------------------------------------------------------------------
    def batch_key(self, prepared: PreparedPrompt) -> tuple:
        """Prompts with equal keys can share one processor call (same media kinds and frame rate)."""
        media = prepared.media
        fps = round(media.frames_fps, 6) if media.frames_fps is not None else None
        return (media.has_frames, media.has_audio, fps)

    def hf_processor_kwargs(self, batch: list[PreparedPrompt]) -> dict:
        """Keyword arguments of the processor call for a batch sharing one `batch_key`."""
        return {
            "text": [p.text for p in batch],
            # The template renders every special token; the batch is left padded for generation.
            "text_kwargs": {"padding": True, "padding_side": "left", "add_special_tokens": False},
        }

    def hf_generate_kwargs(self, batch: list[PreparedPrompt]) -> dict:
        return {}

    # ---- vLLM ------------------------------------------------------------------------------
    def vllm_multi_modal_data(self, media: MediaInputs) -> dict:
        return {}

    def vllm_processor_kwargs(self, media: MediaInputs) -> dict:
        return {}

    def vllm_request(self, prepared: PreparedPrompt) -> dict:
        request: dict[str, Any] = {"prompt": prepared.text}
        data = self.vllm_multi_modal_data(prepared.media)
        if data:
            request["multi_modal_data"] = data
        kwargs = self.vllm_processor_kwargs(prepared.media)
        if kwargs:
            request["mm_processor_kwargs"] = kwargs
        return request


def _audio_items(media: MediaInputs) -> list[tuple]:
    return [(media.audio, media.sample_rate)]


class KimiVLAdapter(FamilyAdapter):
    """Kimi-VL(-Thinking): vLLM takes it with images only, so the frames go in as images."""

    family = "kimi_vl"
    modalities = frozenset({"frames"})
    chat_template = chat_templates.KIMI_VL

    def media_content(self, media):
        return [{"type": "image"}] * (len(media.frames) if media.has_frames else 0)

    def vllm_multi_modal_data(self, media):
        return {"image": [Image.fromarray(frame) for frame in media.frames]} if media.has_frames else {}


class _AudioAdapter(FamilyAdapter):
    """Audio language models: one audio, placed where the family's template puts it."""

    modalities = frozenset({"audio"})

    def media_content(self, media):
        return [{"type": "audio"}] if media.has_audio else []

    def hf_processor_kwargs(self, batch):
        kwargs = super().hf_processor_kwargs(batch)
        if batch[0].media.has_audio:
            kwargs.update(audio=[p.media.audio for p in batch], sampling_rate=batch[0].media.sample_rate)
        return kwargs

    def vllm_multi_modal_data(self, media):
        return {"audio": _audio_items(media)} if media.has_audio else {}


class AudioFlamingo3Adapter(_AudioAdapter):
    """Audio Flamingo 3; its think mode is the spec's PEFT adapter plus its prompt suffix."""

    family = "audio_flamingo3"
    chat_template = chat_templates.AUDIO_FLAMINGO3
    hf_model_class = "AudioFlamingo3ForConditionalGeneration"


class Qwen2AudioAdapter(_AudioAdapter):
    family = "qwen2_audio"
    chat_template = chat_templates.QWEN2_AUDIO
    hf_model_class = "Qwen2AudioForConditionalGeneration"


class Qwen2_5VLAdapter(FamilyAdapter):
    """Qwen2.5-VL: the frames (or the decoded silent video) as one video at its own frame rate."""

    family = "qwen2_5_vl"
    modalities = frozenset({"frames", "silent_video"})
    chat_template = chat_templates.QWEN2_5_VL
    hf_model_class = "Qwen2_5_VLForConditionalGeneration"

    def media_content(self, media):
        return [{"type": "video"}] if media.has_frames else []

    def hf_processor_kwargs(self, batch):
        kwargs = super().hf_processor_kwargs(batch)
        if batch[0].media.has_frames:
            kwargs.update(videos=[p.media.frames for p in batch], video_metadata=[video_metadata(p.media) for p in batch],
                          cap_pixels_per_frame=True)
        return kwargs

    def vllm_multi_modal_data(self, media):
        # vLLM 0.32 refuses a Qwen2.5-VL video without its metadata
        return {"video": [(media.frames, video_metadata(media))]} if media.has_frames else {}

    def vllm_processor_kwargs(self, media):
        return {"fps": media.frames_fps} if media.has_frames else {}


def video_metadata(media) -> dict:
    """The metadata a Qwen2.5-VL processor takes a video's time step from (its sampled fps): the
    clip's frames, all of them, at their own rate."""
    return {"total_num_frames": len(media.frames), "fps": media.frames_fps,
            "frames_indices": list(range(len(media.frames)))}


OMNI_TEMPORAL_PATCH = 2  # frames per temporal grid step of Qwen2.5-Omni's vision encoder


class Qwen2_5OmniAdapter(FamilyAdapter):
    """Qwen2.5-Omni thinker: frames and audio together are one video with its audio track.

    With both, audio and video tokens interleave in 2-second chunks aligned by time, which needs
    the frames' true rate (`frames_fps`: 8 frames over 10 s is 0.8, not the processor's 2.0).
    """

    family = "qwen2_5_omni"
    modalities = frozenset({"frames", "audio"})
    chat_template = chat_templates.QWEN2_5_OMNI
    # Qwen's model card: the system prompt the model was trained with (chosen over the template's).
    default_system = (
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
        "perceiving auditory and visual inputs, as well as generating text and speech."
    )
    hf_model_class = "Qwen2_5OmniThinkerForConditionalGeneration"
    # vLLM 0.32's media cache breaks audio in video: when a request's audio is cached (another clip
    # had the same track, e.g. silence) but its video is not, the processor sees a video without its
    # audio and refuses the request ("Video doesn't have audio track"); tests/test_vllm_engine.py.
    vllm_engine_kwargs = {"mm_processor_cache_gb": 0}

    def media_content(self, media):
        if media.has_frames:
            return [{"type": "video"}]  # its audio, if any, rides along (audio in video)
        return [{"type": "audio"}] if media.has_audio else []

    def hf_processor_kwargs(self, batch):
        kwargs = super().hf_processor_kwargs(batch)
        first = batch[0].media
        if first.has_frames:
            kwargs.update(videos=[p.media.frames for p in batch], fps=first.frames_fps, cap_pixels_per_frame=True)
        if first.has_audio:
            kwargs.update(audio=[p.media.audio for p in batch], sampling_rate=first.sample_rate)
        if first.has_frames and first.has_audio:
            # Audio i is the track of video i: their tokens interleave in time.
            kwargs.update(use_audio_in_video=True)
        return kwargs

    def hf_generate_kwargs(self, batch):
        media = batch[0].media
        return {"use_audio_in_video": True} if media.has_frames and media.has_audio else {}

    def vllm_multi_modal_data(self, media):
        data = {}
        if media.has_frames:
            data["video"] = [media.frames]
        if media.has_audio:
            data["audio"] = _audio_items(media)
        return data

    def vllm_processor_kwargs(self, media):
        kwargs = {}
        if media.has_frames:
            kwargs["fps"] = media.frames_fps
        if media.has_frames and media.has_audio:
            # vLLM 0.32 lays the interleaved placeholders out by `second_per_grid_ts` from these
            # kwargs (1.0 s when absent), not by the fps the processor is given: without it the
            # prompt differs from the transformers processor's (tests/test_vllm_engine.py).
            kwargs.update(use_audio_in_video=True, second_per_grid_ts=[OMNI_TEMPORAL_PATCH / media.frames_fps])
        return kwargs


class TextLLMAdapter(FamilyAdapter):
    """Text-only chat models (Qwen2.5-Instruct, Gemma 3): the checkpoint's own template."""

    family = "text_llm"
    hf_model_class = "AutoModelForCausalLM"
    end_of_turn = None  # differs per checkpoint; its generation config names it

    def messages(self, prompt, media, spec):
        # Plain string content: text templates (Qwen2.5-Instruct) concatenate it.
        return [*self.system_messages(spec), {"role": "user", "content": prompt + spec.prompt_suffix}]

    def hf_processor_kwargs(self, batch):
        # The processor of a text model is its tokenizer, which takes these directly.
        return {"text": [p.text for p in batch], "padding": True, "padding_side": "left", "add_special_tokens": False}


# family (the config's `models.<name>.family`) -> its adapter
ADAPTERS: dict[str, FamilyAdapter] = {}
AdapterClass = TypeVar("AdapterClass", bound=type[FamilyAdapter])


def register_adapter(cls: AdapterClass) -> AdapterClass:
    """Register one instance of the adapter class under its `family` (usable as a class decorator).

    The config accepts the family once it is also listed in the schema's
    `$defs/model_spec/properties/family/enum` (see CONTRIBUTING.md).
    """
    family = getattr(cls, "family", None)
    if not isinstance(family, str) or not family:
        raise TypeError(f"{cls.__name__} sets no `family` name")
    if family in ADAPTERS:
        raise ValueError(f"model family {family!r} is already registered ({type(ADAPTERS[family]).__name__})")
    ADAPTERS[family] = cls()
    return cls


for _adapter in (KimiVLAdapter, AudioFlamingo3Adapter, Qwen2_5VLAdapter, Qwen2AudioAdapter, Qwen2_5OmniAdapter,
                 TextLLMAdapter):
    register_adapter(_adapter)
del _adapter


def get_adapter(family: str) -> FamilyAdapter:
    try:
        return ADAPTERS[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r} (known: {', '.join(sorted(ADAPTERS))})") from None
