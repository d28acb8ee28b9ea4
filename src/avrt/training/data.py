"""Training data of the student: examples, their clips, and model inputs built as evaluation builds them.

An example is one multiple-choice question about one clip, with the target trace for SFT (GRPO
uses the same examples without a target). Sources:

- ``avrt20k``: the pipeline's own AVRT-20K export (`results/<run>/avrt20k/{train,val}.jsonl`), or
  the SightSound-R1 export; its rows carry their clip's media row (`Avrt20kRow.clip`);
- ``released``: files in the released AVRT-20K schema (JSONL, JSON or parquet), used as given;
- ``template``: a DEMO AND TEST SOURCE. Traces are written from the ground truth by a fixed
  template (`template_trace`) over the AVQA shard manifests (split ``train`` for training, ``val``
  held out). It exists because the demo's tiny random teachers cannot produce correct traces, and
  to check that the training code teaches the format; it is not a reproduction of the paper.

The target (`sft.data.target`) is the row's trace, or one of the paper's controls built from the
same rows (appendix Table 0.A.2): ``answer_only``, the ground-truth letter alone (e.g. "A"), and
``format_only``, the strict format around a fixed filler with no reasoning
(`<think>{FORMAT_ONLY_FILLER}</think><answer>{letter}</answer>`).

An example takes its row's clip where the row carries one (our exports); otherwise its clip is found
by ``video_name`` in the media indexes of all shards. An example whose clip has no prepared media
is counted by reason and left out (`attach_media`), never a crash mid-training.

Model inputs go through the model layer exactly as at evaluation: the student prompt
(`student_reasoning`), `FamilyAdapter.prepare` (which cuts the media with `build_media_inputs`)
and the processor call of `FamilyAdapter.hf_processor_kwargs`. For SFT the assistant's trace plus
its end-of-turn token is tokenised on its own and appended to the processed prompt, and only those
tokens carry labels (`avrt.training.batches`): the prompt, its media placeholders and the padding never do.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from avrt.core.answers import option_letter
from avrt.core.clip_media import ClipMedia, load_clip, read_clip_refs, visible_modalities
from avrt.core.datasets import read_avrt20k
from avrt.core.prompts import load_prompt, render_student_prompt
from avrt.core.rows import ClipRef, ManifestRow, TrainingExample, read_rows
from avrt.models.adapters import FamilyAdapter, GenerationRequest
from avrt.models.spec import ModelSpec
from avrt.training.batches import sft_item

log = logging.getLogger(__name__)

SOURCES = ("avrt20k", "released", "template")
TARGETS = ("trace", "answer_only", "format_only")
# The paper quotes its format-only filler only as "Let me analyze this question carefully..."; chosen:
# that sentence continued generically, the same for every sample, so no target says anything about its clip.
FORMAT_ONLY_FILLER = ("Let me analyze this question carefully. I will consider what the audio and the video "
                      "show, compare them with each option, and choose the option that fits best.")
STUDENT_PROMPT = "student_reasoning"  # the prompt evaluation uses for trained models


# ---- sources --------------------------------------------------------------------------------
def examples_from_avrt20k(paths: list[str | Path]) -> list[TrainingExample]:
    """AVRT-20K rows (our export or the released schema) as examples; the trace is `av_reasoning`.

    A row's `clip` (our exports) becomes the example's; a row without one is found by `video_name`.
    The id is the question's (`sample_id`): a SightSound-R1 export has several traces per question,
    and training needs no unique ids.
    """
    examples = []
    for path in paths:
        for i, row in enumerate(read_avrt20k(path)):
            video_name = row.video_name or (row.clip.media.video_name if row.clip else None)
            if not video_name:
                raise ValueError(f"{path}: row {i} (sample {row.sample_id!r}) has neither a clip nor a video_name "
                                 "to find its clip by")
            examples.append(
                TrainingExample(
                    sample_id=row.sample_id if row.sample_id is not None else f"{Path(path).stem}:{i}",
                    video_name=video_name,
                    question=row.question,
                    choices=row.choices,
                    gold_letter=row.answer.strip(),
                    completion=row.av_reasoning.strip(),
                    clip=row.clip,
                )
            )
    return examples


def template_trace(choices: tuple[str, ...], answer_index: int) -> str:
    """The demo/test trace: names the correct option's text, then its letter, in the strict format."""
    return (
        f"<think>The answer is {choices[answer_index]}.</think>"
        f"<answer>{option_letter(answer_index)}</answer>"
    )


def examples_from_template(manifests: list[str | Path], split: str) -> list[TrainingExample]:
    """Shard-manifest QA rows of `split` with template traces built from their ground truth."""
    examples = []
    for path in manifests:
        for row in read_rows(path, ManifestRow):
            if row.split != split:
                continue
            examples.append(
                TrainingExample(
                    sample_id=row.sample_id,
                    video_name=row.video_name,
                    question=row.question,
                    choices=row.choices,
                    gold_letter=row.gold_letter,
                    completion=template_trace(row.choices, row.answer_index),
                )
            )
    return examples


def sft_target(example: TrainingExample, target: str) -> str:
    """What SFT teaches for `example`: its trace, or a control built from its ground-truth letter."""
    if target == "trace":
        return example.completion
    if target == "answer_only":
        return example.gold_letter
    if target == "format_only":
        return f"<think>{FORMAT_ONLY_FILLER}</think><answer>{example.gold_letter}</answer>"
    raise ValueError(f"config key 'sft.data.target': unknown target {target!r} (known: {', '.join(TARGETS)})")


def load_examples(source: str, paths: list[str | Path], split: str, target: str = "trace") -> list[TrainingExample]:
    """Examples of one split. avrt20k/released: `paths` are that split's files; template: manifests."""
    if source not in SOURCES:
        raise ValueError(f"unknown SFT data source {source!r} (known: {', '.join(SOURCES)})")
    examples = examples_from_template(paths, split) if source == "template" else examples_from_avrt20k(paths)
    return [ex if target == "trace" else ex.replace(completion=sft_target(ex, target)) for ex in examples]


def examples_digest(examples: list[TrainingExample]) -> str:
    """Identity of a training set in order: a changed sample, target or order gives a new digest."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.sample_id, ex.video_name, ex.completion]).encode())
    return h.hexdigest()[:16]


# ---- media ------------------------------------------------------------------------------------
class MediaLookup:
    """video_name -> where its prepared media lie, across the media indexes of all shards."""

    def __init__(self, index_paths: list[str | Path]):
        self.refs: dict[str, ClipRef] = {}
        for path in index_paths:
            for name, ref in read_clip_refs(path).items():
                if name not in self.refs or not self.refs[name].media.ok:
                    self.refs[name] = ref

    def find(self, video_name: str) -> ClipRef | None:
        return self.refs.get(video_name)

    def load(self, video_name: str) -> ClipMedia:
        ref = self.find(video_name)
        if ref is None:
            raise ValueError(f"clip {video_name!r} is in no media index")
        return load_clip(ref)


def clip_missing_reason(ref: ClipRef | None) -> str | None:
    """None when `ref` points to prepared media, else why not."""
    if ref is None:
        return "not_in_media_index"
    return None if ref.media.ok else f"media_{ref.media.reason or 'failed'}"


def attach_media(examples: list[TrainingExample], media: MediaLookup) -> tuple[list[TrainingExample], Counter]:
    """Examples whose clip has prepared media, each holding its clip, and the count of the others by reason.

    An example's own clip (from its row) is used as it is; the others are looked up by video_name.
    """
    kept, skipped = [], Counter()
    for ex in examples:
        ref = ex.clip if ex.clip is not None else media.find(ex.video_name)
        reason = clip_missing_reason(ref)
        if reason is None:
            kept.append(ex if ex.clip is ref else ex.replace(clip=ref))
        else:
            skipped[reason] += 1
    if skipped:
        log.warning("left out %d of %d examples without prepared media: %s", sum(skipped.values()), len(examples),
                    dict(skipped))
    return kept, skipped


# ---- model inputs ---------------------------------------------------------------------------
class StudentInputs:
    """Renders examples for the student through its family adapter and processor."""

    def __init__(self, spec: ModelSpec, adapter: FamilyAdapter, processor, media: MediaLookup,
                 prompt_id: str = STUDENT_PROMPT, *, render: Callable[[TrainingExample], str] | None = None,
                 modalities: tuple[str, ...] | None = None):
        """`render` writes an example's user text (default: the student prompt `prompt_id` filled
        in); `modalities` the media the model sees (default: every modality of the clip the family
        takes; empty: a text-only prompt, no clip read)."""
        self.spec, self.adapter, self.processor, self.media = spec, adapter, processor, media
        self.prompt = load_prompt(prompt_id)
        self.render = render or (lambda ex: render_student_prompt(self.prompt, question=ex.question,
                                                                  choices=list(ex.choices)))
        self.modalities = modalities
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.chat_template = getattr(processor, "chat_template", None) or self.tokenizer.chat_template
        end = adapter.end_of_turn or self.tokenizer.eos_token
        if end is None:
            raise ValueError(f"model '{spec.name}': no end-of-turn token to close the assistant's trace with")
        self.end_of_turn = end

    def request(self, example: TrainingExample) -> GenerationRequest:
        """The request evaluation would send for this example (same prompt, media and modalities)."""
        text = self.render(example)
        if self.modalities == ():
            return GenerationRequest(request_id=example.sample_id, prompt=text)
        clip = load_clip(example.clip) if example.clip is not None else self.media.load(example.video_name)
        modalities = self.modalities or visible_modalities(clip, self.adapter.modalities)
        return GenerationRequest(request_id=example.sample_id, prompt=text, media=clip, modalities=modalities)

    def encode_prompt(self, example: TrainingExample) -> tuple[dict, dict]:
        """Processor outputs of the prompt (a batch of one) and the forward kwargs it needs."""
        prepared = self.adapter.prepare(self.request(example), self.spec, self.chat_template)
        encoded = self.processor(**self.adapter.hf_processor_kwargs([prepared]), return_tensors="pt")
        return dict(encoded), self.adapter.hf_generate_kwargs([prepared])

    def encode_completion(self, completion: str) -> torch.Tensor:
        """Token ids of the assistant's turn: the trace and the end-of-turn token."""
        ids = self.tokenizer(completion + self.end_of_turn, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    def encode_sft(self, example: TrainingExample) -> dict:
        """One training item: 1-D token tensors with labels on the completion only, media tensors."""
        if example.completion is None:
            raise ValueError(f"example {example.sample_id!r} has no target trace")
        try:
            prompt, forward_kwargs = self.encode_prompt(example)
        except ValueError as err:
            raise ValueError(f"example {example.sample_id!r} (clip {example.video_name!r}): {err}") from None
        return sft_item(prompt, self.encode_completion(example.completion), forward_kwargs)


class SFTDataset(torch.utils.data.Dataset):
    """Examples encoded lazily (media are read in the data loader's workers)."""

    def __init__(self, examples: list[TrainingExample], inputs: StudentInputs):
        self.examples, self.inputs = examples, inputs

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.inputs.encode_sft(self.examples[index])
