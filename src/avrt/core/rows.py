"""The rows that cross stage boundaries, one frozen dataclass per file kind.

Every stage writes its JSONL through `write_rows` and reads an earlier stage's file through
`read_rows`, which checks each line against its row type (no missing, unknown or mistyped field)
and names the file and line of a bad one. One sample keeps one name end to end: `sample_id` (the
AVQA question id, as a string); `gold_letter` is always the ground truth, `answer_letter` always
a model's own answer, `teacher_label` a teacher's agreed answer (SightSound-R1).

Flow of the rows:

    ManifestRow (data/manifest.jsonl, data/shards/*.jsonl) + MediaRow (media/<shard>.jsonl)
      -> TeacherTrace (traces/<teacher>/<shard>.jsonl): a QuestionRow, i.e. it carries the question,
         options, ground truth and the clip's media row, so no later stage re-reads the shard or
         the media index
      -> MergedTrace (merged/) -> Avrt20kRow (avrt20k/{train,val}.jsonl)
      -> ConsensusTrace -> CheckedTrace (sightsound/) -> Avrt20kRow (sightsound/sft/)
      -> TrainingExample (SFT, GRPO)
    Avrt20kRow (val) -> JudgeVerdict (judge/verdicts.jsonl) -> HallucinationSource (judge/sources.jsonl,
         with the MergedTrace and both TeacherTrace rows of each hallucinating trace)
    BenchmarkRecord (eval/records/) -> Prediction (eval/<model>/<benchmark>/<mask>.predictions.jsonl)
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Self

from avrt.core.answers import option_letter
from avrt.core.io import InputFileError, write_jsonl


class RowError(InputFileError):
    """A row that does not match its type; the message names the file and line."""


class Row:
    """Base of every row type: conversion from and to the JSON object on one line."""

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> Self:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise RowError(f"{where}: expected a JSON object for a {cls.__name__}, got {type(data).__name__}")
        hints = _hints(cls)
        unknown = sorted(set(data) - set(hints))
        missing = sorted(name for name in _required(cls) if name not in data)
        if unknown or missing:
            detail = "; ".join(part for part in (missing and f"missing fields {missing}",
                                                 unknown and f"unknown fields {unknown}") if part)
            raise RowError(f"{where}: {cls.__name__} row: {detail}")
        values = {}
        for name, value in data.items():
            try:
                values[name] = _convert(value, hints[name])
            except TypeError as err:
                raise RowError(f"{where}: {cls.__name__}.{name}: {err}") from None
        return cls(**values)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def fields(self) -> dict:
        """Field name -> value, nested rows kept as objects: to extend this row into a wider type."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes) -> Self:
        return dataclasses.replace(self, **changes)


@cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _required(cls) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


def _convert(value: Any, hint: Any) -> Any:
    """`value` as the field type `hint` says (lists become tuples, nested rows objects), or TypeError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option)
            except TypeError as err:
                errors.append(str(err))
        raise TypeError(" or ".join(errors))
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r:.80}")
        (item, _) = typing.get_args(hint)
        return tuple(_convert(v, item) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {value!r:.80}")
        args = typing.get_args(hint)
        return {k: _convert(v, args[1]) for k, v in value.items()} if args else dict(value)
    if isinstance(hint, type) and issubclass(hint, Row):
        return value if isinstance(value, hint) else hint.from_dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r:.80}")
        return value
    if hint is int and isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, got {value!r:.80}")
    return value


R = typing.TypeVar("R", bound=Row)


def _plain(value: Any) -> Any:
    if isinstance(value, Row):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_rows(path: str | Path, row_type: type[R]) -> list[R]:
    """Every row of a JSONL file as `row_type`; a bad line raises RowError naming file and line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise RowError(f"{path}:{lineno}: not JSON ({err.msg})") from None
            rows.append(row_type.from_dict(data, where=f"{path}:{lineno}"))
    return rows


def write_rows(path: str | Path, rows: Iterable[Row]) -> int:
    """Write rows as JSONL, atomically (a reader never sees half a file)."""
    return write_jsonl(path, (row.to_dict() for row in rows))


# ---- data stage -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestRow(Row):
    """One usable AVQA question about one checked clip (data/manifest.jsonl and its shards)."""

    sample_id: str
    split: str
    video_name: str
    video_id: int | str | None
    clip_path: str
    question: str
    choices: tuple[str, ...]
    answer_index: int
    gold_letter: str
    question_type: str
    question_relation: str
    duration: float
    width: int
    height: int
    fps: float
    audio_rate: int
    audio_channels: int


@dataclass(frozen=True)
class MediaRow(Row):
    """The prepared media of one clip (media/<shard>.jsonl); paths are relative to media/.

    `status` is "ok", or "failed" with `reason` and `detail`; a failed row has no media fields.
    """

    video_name: str
    clip_path: str
    params: str  # digest of the MediaParams that cut it
    status: str
    reason: str | None = None
    detail: str | None = None
    frames: tuple[str, ...] = ()
    audio: str | None = None
    sample_rate: int | None = None
    audio_samples: int | None = None
    silent_video: str | None = None
    duration: float | None = None
    frame_indices: tuple[int, ...] = ()
    frame_times: tuple[float, ...] = ()
    num_video_frames: int | None = None
    video_fps: float | None = None
    source_size: tuple[int, ...] = ()
    frame_size: tuple[int, ...] = ()
    audio_source_rate: int | None = None
    audio_source_channels: int | None = None
    audio_source_seconds: float | None = None
    audio_pad_samples: int | None = None
    audio_silent: bool = False  # the prepared audio is digital silence (every sample 0)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ClipRef(Row):
    """Where a sample's prepared media lie: its media row and the media root it is relative to."""

    root: str
    media: MediaRow


# ---- traces -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuestionRow(Row):
    """The question a trace answers, with its ground truth and clip: every trace row starts with
    these fields, so no later stage re-reads the shard or the media index."""

    sample_id: str
    split: str
    video_name: str
    question: str
    choices: tuple[str, ...]
    gold_letter: str
    question_type: str
    question_relation: str
    clip: ClipRef

    def question_fields(self) -> dict:
        """This row's QuestionRow fields, to start a later stage's row with."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(QuestionRow)}

    @staticmethod
    def fields_of(qa: ManifestRow, clip: ClipRef) -> dict:
        """The QuestionRow fields of a manifest row and its clip."""
        return {"sample_id": qa.sample_id, "split": qa.split, "video_name": qa.video_name, "question": qa.question,
                "choices": qa.choices, "gold_letter": qa.gold_letter, "question_type": qa.question_type,
                "question_relation": qa.question_relation, "clip": clip}


@dataclass(frozen=True)
class TeacherTrace(QuestionRow):
    """One teacher's answer to one question (traces/<teacher>/<shard>.jsonl), one row per sample."""

    sample_index: int
    teacher: str
    modality: str
    model: str
    checkpoint: str
    prompt_id: str
    prompt_sha256: str
    seed: int
    raw_output: str
    response: str  # the text after the thinking part
    reasoning: str | None
    answer_letter: str | None
    parse_status: str
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float


@dataclass(frozen=True)
class ConsensusTrace(TeacherTrace):
    """A SightSound-R1 teacher trace whose question passed self-consistency, with the agreed label."""

    teacher_label: str


@dataclass(frozen=True)
class CheckedTrace(ConsensusTrace):
    """A consensus trace with the audio checker's verdict (sightsound/agfv/<shard>.jsonl)."""

    checker: str
    checker_prompt_sha256: str
    checker_output: str
    verdict: str | None  # "yes", "no", or None when the reply starts with neither
    accepted: bool


@dataclass(frozen=True)
class TeacherRef(Row):
    """What a merged row keeps of one teacher's trace."""

    modality: str
    answer_letter: str | None
    correct: bool
    parse_status: str
    prompt_sha256: str
    ref: str  # traces/<teacher>#sample_id=..&sample_index=..


@dataclass(frozen=True)
class MergedTrace(QuestionRow):
    """The text-only merger's audio-visual trace of one question (merged/<shard>.jsonl)."""

    merged_output: str
    merge_status: str
    answer_letter: str | None
    merger_correct: bool
    teachers: dict[str, TeacherRef]  # teacher name -> what it answered
    teachers_correct: int
    difficulty: str
    model: str
    checkpoint: str
    prompt_sha256: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float


@dataclass(frozen=True)
class Avrt20kRow(Row):
    """One SFT trace in the released AVRT-20K schema (its first six fields) plus provenance.

    `answer` is the ground truth, as in the release. SightSound-R1 exports also set
    `teacher_label` (the answer its training uses instead of the ground truth) and `sample_index`
    (which of the question's traces). Released files have only the first six fields.
    """

    question: str
    choices: tuple[str, ...]
    answer: str
    question_relation: str
    question_type: str
    av_reasoning: str
    sample_id: str | None = None
    video_name: str | None = None
    avqa_split: str | None = None
    difficulty: str | None = None
    teacher_label: str | None = None
    sample_index: int = 0
    clip: ClipRef | None = None

    @classmethod
    def of(cls, trace: QuestionRow, av_reasoning: str, **fields) -> Avrt20kRow:
        """The SFT row of a trace: its question, ground truth, sample and clip, with the given trace."""
        return cls(question=trace.question, choices=trace.choices, answer=trace.gold_letter,
                   question_relation=trace.question_relation, question_type=trace.question_type,
                   av_reasoning=av_reasoning.strip(), sample_id=trace.sample_id, video_name=trace.video_name,
                   avqa_split=trace.split, clip=trace.clip, **fields)


# ---- trace judge (paper appendix 0.A.1) -------------------------------------------------------
@dataclass(frozen=True)
class JudgeVerdict(Row):
    """An omni judge's grading of one AVRT-20K trace (judge/verdicts.jsonl).

    `status` is "ok" when the judge's JSON held a known verdict and both grounding flags, else why
    not ("no_json", "missing_field", "bad_value") with `reason` in words; the judged fields are then
    those that could be read. The raw `judge_output` is kept either way.
    """

    sample_id: str
    video_name: str
    question: str
    choices: tuple[str, ...]
    gold_letter: str
    trace: str  # the judged av_reasoning, as AVRT-20K holds it
    model: str
    checkpoint: str
    prompt_sha256: str
    judge_output: str
    status: str
    reason: str | None
    verdict: str | None  # ACCURATE, MISSING_INFO or HALLUCINATING
    audio_grounded: bool | None
    visual_grounded: bool | None
    confidence: float | None
    explanation: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class HallucinationSource(Row):
    """Where the judge traces a HALLUCINATING verdict to (judge/sources.jsonl): the audio teacher, the
    vision teacher, both, or the merger. `status`/`reason` as in JudgeVerdict."""

    sample_id: str
    video_name: str
    audio_teacher: str  # the teacher names whose texts the judge read
    vision_teacher: str
    model: str
    checkpoint: str
    prompt_sha256: str
    judge_output: str
    status: str
    reason: str | None
    source: str | None  # AUDIO_TEACHER, VISION_TEACHER, MERGER or BOTH_TEACHERS
    confidence: float | None
    hallucinated_claims: tuple[str, ...]
    source_per_claim: tuple[str, ...]
    audio_teacher_accurate: bool | None
    vision_teacher_accurate: bool | None
    merger_faithful: bool | None
    explanation: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---- training -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingExample(Row):
    """One question about one clip for the student; `completion` is the SFT target (None for GRPO)."""

    sample_id: str
    video_name: str
    question: str
    choices: tuple[str, ...]
    gold_letter: str
    completion: str | None = None
    clip: ClipRef | None = None


# ---- evaluation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkRecord(Row):
    """One benchmark item, normalised from the benchmark's official files (eval/records/).

    Multiple-choice options are stored without their letter prefixes ("A. ..."); letters are
    positional (A = first option). Open-ended items (MUSIC-AVQA) have no options and no gold
    letter; `gold_text` is then the gold answer.
    """

    id: str
    benchmark: str
    question: str
    options: tuple[str, ...]
    gold_letter: str | None  # None for open-ended items
    gold_text: str  # the gold option's text, or the gold answer of an open-ended item
    video: str | None = None  # the video's own audio track is its audio unless `audio` is set
    image: str | None = None
    audio: str | None = None
    categories: dict[str, str] = field(default_factory=dict)
    attrition: str | None = None  # why the item cannot be shown to a model (missing media)

    @property
    def is_open_ended(self) -> bool:
        return not self.options

    @property
    def option_letters(self) -> tuple[str, ...]:
        return tuple(option_letter(i) for i in range(len(self.options)))

    @property
    def accepted_letters(self) -> frozenset[str]:
        """Letters whose option text is the gold text.

        More than one when a benchmark repeats the gold option (16 MMAU test-mini items, such as
        ['one', 'six', 'four', 'four'] with gold 'four'); picking either copy is the gold answer.
        """
        if self.is_open_ended:
            return frozenset()
        same = {option_letter(i) for i, text in enumerate(self.options) if text == self.gold_text}
        return frozenset(same | {self.gold_letter})

    def media_paths(self) -> dict[str, str]:
        return {kind: path for kind in ("video", "image", "audio") if (path := getattr(self, kind))}


@dataclass(frozen=True)
class InputProtocol(Row):
    """How a benchmark item was cut into frames and audio (`avrt.evaluation.protocols`)."""

    name: str  # a key of evaluation.protocols
    digest: str  # of the cut's parameters (MediaParams.digest)
    summary: str  # the cut in words


@dataclass(frozen=True)
class Prediction(Row):
    """One model's answer to one benchmark item (eval/<model>/<benchmark>/<mask>.predictions.jsonl)."""

    id: str
    output: str
    model: str
    checkpoint: str
    prompt_id: str
    prompt_sha256: str
    mask: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    protocol: InputProtocol  # the input protocol the item was shown with
