"""Answer one benchmark's records with one model: greedy, resumable, with the benchmark's input protocol.

Each record's media (video with its audio track, image, separate audio) are cut by
`avrt.core.media.media_from_files` with the benchmark's input protocol
(`avrt.evaluation.protocols`): the training cut of the run's `media` block for AVQA, the
student's own evaluation settings (frames at a rate with a cap, the whole audio up to a cap) for
the long benchmarks. Every prediction row names its protocol. The prompt is the student's
reasoning prompt or the direct (answer-only) prompt for base models. A modality mask blanks the frames (`audio_only`) or
silences the audio (`video_only`) for the paper's Table 4. Records whose media are missing are
not sent to the model; scoring counts them as wrong. Generation runs through the shared driver
(`avrt.core.generation`), so an interrupted benchmark resumes where it stopped.

With `teacher` (one `teachers` entry) a single-modality teacher answers instead, for the
difficulty subsets of Table 8: its own prompt, only its own modality (frames or audio), and the
benchmark's teacher protocol (`evaluation.teacher_protocols`).

A SightSound-R1 run's student reads every question in the audio-text variant ("video" ->
"audio"), as it read them in SFT and GRPO (`avrt.core.config.audio_text_questions`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

from avrt.core.clip_media import IN_MEMORY, visible_modalities
from avrt.core.config import add_config_argument, audio_text_questions, load_config, teacher_entry
from avrt.core.generation import generate
from avrt.core.media import MediaParams, media_from_files
from avrt.core.prompts import Prompt, audio_text_question, load_prompt, render_student_prompt, render_teacher_prompt
from avrt.core.rows import BenchmarkRecord, InputProtocol, Prediction, write_rows
from avrt.evaluation.protocols import TRAINING_PROTOCOL, input_protocol, resolve
from avrt.evaluation.records import read_records
from avrt.models.merged_checkpoint import add_merged_argument, merged_spec
from avrt.models.spec import EVALUATION_SAMPLING, ModelSpec, model_spec

log = logging.getLogger(__name__)

MASKS = {"both": (), "audio_only": ("frames",), "video_only": ("audio",)}
PROMPTS = {"reasoning": "student_reasoning", "direct": "student_direct"}


def item_prompt(record: BenchmarkRecord, prompt_mode: str, teacher: dict | None) -> Prompt:
    if teacher is not None:
        return load_prompt(teacher["prompt"])
    return load_prompt("student_open" if record.is_open_ended else PROMPTS[prompt_mode])


def build_request(record: BenchmarkRecord, params: MediaParams, prompt: Prompt, mask: str, supported: frozenset,
                  teacher: dict | None = None, audio_text: bool = False):
    from avrt.models.adapters import GenerationRequest

    clip = media_from_files(record.id, params, **record.media_paths())
    mods = visible_modalities(clip, supported)
    render = render_teacher_prompt if teacher is not None else render_student_prompt
    question = audio_text_question(record.question) if audio_text else record.question
    text = render(prompt, question=question, choices=list(record.options))
    masked = tuple(m for m in MASKS[mask] if m in mods)
    return GenerationRequest(request_id=record.id, prompt=text, media=clip, modalities=mods, mask=masked)


def run_inference(records_path: str | Path, spec: ModelSpec, prompt_mode: str, params: MediaParams, mask: str,
                  out: str | Path, chunk_size: int, backend=None, teacher: dict | None = None,
                  audio_text: bool = False, protocol: InputProtocol | None = None) -> dict:
    """Answer every usable record, its media cut by `params`; `audio_text` asks a student the
    audio-text variant of each question. `protocol` names the cut in the rows (default: `params`
    as the training protocol)."""
    from avrt.models.adapters import get_adapter
    from avrt.models.backends import load_model

    if mask not in MASKS:
        raise ValueError(f"unknown modality mask {mask!r} (known: {', '.join(MASKS)})")
    if any(getattr(spec.sampling, key) != value for key, value in EVALUATION_SAMPLING.items()):
        spec = replace(spec, sampling=replace(spec.sampling, **EVALUATION_SAMPLING))  # greedy, once
    supported = frozenset(get_adapter(spec.family).modalities)
    protocol = protocol or input_protocol(TRAINING_PROTOCOL, params)
    if protocol.digest != params.digest():
        raise ValueError(f"protocol {protocol.name!r} names another cut than the one given ({protocol.summary})")
    # The protocol's cut, by content: a changed protocol answers afresh, a renamed one keeps its outputs.
    settings = {"model": asdict(spec), "prompt": prompt_mode, "mask": mask, "media": params.digest()}
    audio_text = audio_text and teacher is None  # a teacher reads the questions as written
    if audio_text:  # the cache of a run without the variant keeps its key
        settings["audio_text_questions"] = True
    if teacher is not None:
        if mask != "both" or teacher["modality"] not in IN_MEMORY:  # benchmark items have no silent video
            raise ValueError(f"teacher {teacher['name']!r}: benchmark items take frames or audio teachers, "
                             f"unmasked (got modality {teacher['modality']!r}, mask {mask!r})")
        if teacher["modality"] not in supported:
            raise ValueError(f"teacher {teacher['name']!r}: family {spec.family!r} cannot take {teacher['modality']}")
        supported = frozenset({teacher["modality"]})
        settings.update(prompt=load_prompt(teacher["prompt"]).sha256, teacher=teacher)
    records = [r for r in read_records(records_path) if r.attrition is None]
    if teacher is not None and any(r.is_open_ended for r in records):
        raise ValueError(f"teacher {teacher['name']!r}: {records_path} has open-ended items; teachers answer MCQ")
    prompts = {r.id: item_prompt(r, prompt_mode, teacher) for r in records}
    outputs = generate(
        records, key=lambda r: r.id,
        request=lambda r: build_request(r, params, prompts[r.id], mask, supported, teacher, audio_text=audio_text),
        samples=1, cache=out, settings=settings, inputs=[records_path, spec.checkpoint, spec.adapter],
        backend=backend, load_backend=lambda: load_model(spec), chunk_size=chunk_size,
        desc=f"eval {Path(records_path).stem}",
    )
    rows = [Prediction(id=r.id, output=o.text, model=spec.name, checkpoint=spec.checkpoint,
                       prompt_id=prompts[r.id].prompt_id, prompt_sha256=prompts[r.id].sha256, mask=mask,
                       prompt_tokens=o.prompt_tokens, completion_tokens=o.completion_tokens,
                       finish_reason=o.finish_reason, protocol=protocol)
            for r in sorted(records, key=lambda r: r.id) for o in outputs.of(r.id)]
    write_rows(out, rows)
    stats = {"records": len(records), "predictions": len(rows), **outputs.stats}
    log.info("eval stats %s", stats)
    return stats


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--records", required=True, help="records JSONL (avrt eval-records)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model-tag", help="an `evaluation.models` tag: its model, stage checkpoint and prompt")
    who.add_argument("--teacher", help="a `teachers` name: answer with its prompt and modality only")
    parser.add_argument("--checkpoint", default=None,
                        help="the trained checkpoint of the tag's stage (the workflow passes it)")
    add_merged_argument(parser)
    parser.add_argument("--mask", choices=sorted(MASKS), default="both")
    parser.add_argument("--out", required=True, help="predictions JSONL (one Prediction per record)")
    parser.add_argument("--benchmark", required=True,
                        help="the records' benchmark: its input protocol (evaluation.benchmark_protocols, "
                             "or teacher_protocols with --teacher) cuts the media")


def run(args) -> int:
    config = load_config(*args.config)
    chunk_size = config["evaluation"]["chunk_size"]
    protocol, params = resolve(config, args.benchmark, teacher=bool(args.teacher))
    if args.teacher:
        teacher = teacher_entry(config, args.teacher)
        spec, prompt_mode = model_spec(config, teacher["model"]), "reasoning"
    else:
        entries = config["evaluation"]["models"]
        if args.model_tag not in entries:
            raise SystemExit(f"no model tag {args.model_tag!r} under 'evaluation.models' (have: {', '.join(entries)})")
        entry, teacher = entries[args.model_tag], None
        spec, prompt_mode = model_spec(config, entry["model"]), entry["prompt"]
        if entry["stage"]:
            if not args.checkpoint:
                raise SystemExit(f"model tag {args.model_tag!r} evaluates the {entry['stage']} stage: pass --checkpoint")
            spec = replace(spec, checkpoint=args.checkpoint, revision=None)  # a trained local checkpoint
    if args.merged_checkpoint:
        spec = merged_spec(spec, args.merged_checkpoint)
    other = sorted({r.benchmark for r in read_records(args.records)} - {args.benchmark})  # after the config checks
    if other:
        raise SystemExit(f"{args.records}: records of {other}, not of --benchmark {args.benchmark!r}")
    log.info("benchmark %s: input protocol %s (%s)", args.benchmark, protocol.name, protocol.summary)
    run_inference(args.records, spec, prompt_mode, params, args.mask, args.out, chunk_size, teacher=teacher,
                  audio_text=audio_text_questions(config), protocol=protocol)
    return 0
