"""Answer one benchmark's records with one model: greedy, resumable, same media cuts as training.

Each record's media (video with its audio track, image, separate audio) are cut by
`avrt.core.media.media_from_files` with the run's `media` parameters, the ones the AVQA shards
and therefore SFT and GRPO used. The prompt is the student's reasoning prompt or the direct
(answer-only) prompt for base models. A modality mask blanks the frames (`audio_only`) or
silences the audio (`video_only`) for the paper's Table 4. Records whose media are missing are
not sent to the model; scoring counts them as wrong.

With `teacher` (one `teachers` entry) a single-modality teacher answers instead, for the
difficulty subsets of Table 8: its own prompt, and only its own modality (frames or audio).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from avrt.core.media import MediaParams, media_from_files
from avrt.evaluation.records import BenchmarkRecord, read_records
from avrt.models.spec import ModelSpec
from avrt.core.prompts import load_prompt, render_student_prompt, render_teacher_prompt
from avrt.core.resumable import ResumableShard

log = logging.getLogger(__name__)

MASKS = {"both": (), "audio_only": ("frames",), "video_only": ("audio",)}
PROMPTS = {"reasoning": "student_reasoning", "direct": "student_direct"}
# What a teacher sees of a benchmark item (an image is one frame); benchmarks have no silent video.
TEACHER_MODALITIES = {"frames": frozenset({"frames"}), "audio": frozenset({"audio"})}


def clip_modalities(clip) -> tuple[str, ...]:
    mods = []
    if clip.frames.shape[0]:
        mods.append("frames")
    if clip.audio.size:
        mods.append("audio")
    return tuple(mods)


def build_request(record: BenchmarkRecord, params: MediaParams, prompt_mode: str, mask: str, supported: frozenset,
                  teacher: dict | None = None):
    from avrt.models.adapters import GenerationRequest

    clip = media_from_files(record.id, params, **record.media_paths())
    mods = tuple(m for m in clip_modalities(clip) if m in supported)
    if teacher is not None:
        prompt = load_prompt(teacher["prompt"])
        text = render_teacher_prompt(prompt, question=record.question, choices=list(record.options))
    else:
        prompt = load_prompt("student_open" if record.is_open_ended else PROMPTS[prompt_mode])
        text = render_student_prompt(prompt, question=record.question, choices=list(record.options))
    masked = tuple(m for m in MASKS[mask] if m in mods)
    return GenerationRequest(request_id=record.id, prompt=text, media=clip, modalities=mods, mask=masked), prompt


def run_inference(records_path: str | Path, spec: ModelSpec, prompt_mode: str, params: MediaParams, mask: str,
                  out: str | Path, chunk_size: int = 16, backend=None, teacher: dict | None = None) -> dict:
    if mask not in MASKS:
        raise ValueError(f"unknown modality mask {mask!r} (known: {', '.join(MASKS)})")
    if spec.sampling.temperature != 0 or spec.sampling.n != 1:  # evaluation decodes greedily, once
        spec = replace(spec, sampling=replace(spec.sampling, temperature=0.0, n=1))
    from avrt.models.adapters import get_adapter

    supported = frozenset(get_adapter(spec.family).modalities)
    settings = {"model": asdict(spec), "prompt": prompt_mode, "mask": mask, "media": params.digest()}
    if teacher is not None:
        if mask != "both" or teacher["modality"] not in TEACHER_MODALITIES:
            raise ValueError(f"teacher {teacher['name']!r}: benchmark items take frames or audio teachers, "
                             f"unmasked (got modality {teacher['modality']!r}, mask {mask!r})")
        if not TEACHER_MODALITIES[teacher["modality"]] <= supported:
            raise ValueError(f"teacher {teacher['name']!r}: family {spec.family!r} cannot take {teacher['modality']}")
        supported = TEACHER_MODALITIES[teacher["modality"]]
        settings.update(prompt=load_prompt(teacher["prompt"]).sha256, teacher=teacher)
    records = [r for r in read_records(records_path) if r.attrition is None]
    if teacher is not None and any(r.is_open_ended for r in records):
        raise ValueError(f"teacher {teacher['name']!r}: {records_path} has open-ended items; teachers answer MCQ")
    store = ResumableShard(out, settings, key=lambda r: r["id"], inputs=[records_path, spec.checkpoint, spec.adapter])
    todo = [r for r in records if not store.done(r.id)]
    start, calls = time.perf_counter(), 0
    for lo in tqdm(range(0, len(todo), chunk_size), desc=f"eval {Path(records_path).stem}", unit="chunk", mininterval=10):
        batch = todo[lo : lo + chunk_size]
        if backend is None:
            from avrt.models.backends import load_model

            backend = load_model(spec)
        built = [build_request(r, params, prompt_mode, mask, supported, teacher) for r in batch]
        completions = backend.generate([req for req, _ in built])
        calls += 1
        prompts = {req.request_id: p for req, p in built}
        store.add({"id": c.request_id, "output": c.text, "model": spec.name, "checkpoint": spec.checkpoint,
                   "prompt_id": prompts[c.request_id].prompt_id, "prompt_sha256": prompts[c.request_id].sha256,
                   "mask": mask, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                   "finish_reason": c.finish_reason} for c in completions)
    rows = store.finish()
    stats = {"records": len(records), "predictions": len(rows), "new": len(todo), "model_calls": calls,
             "seconds": round(time.perf_counter() - start, 3)}
    log.info("eval stats %s", json.dumps(stats))
    return stats


def add_arguments(parser) -> None:
    parser.add_argument("--records", required=True, help="records JSONL (avrt eval-records)")
    parser.add_argument("--model", required=True, help="JSON model spec")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--checkpoint", default=None, help="override the spec's checkpoint (a trained stage)")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="reasoning")
    parser.add_argument("--media-params", required=True, help="JSON of the config's `media` section")
    parser.add_argument("--mask", choices=sorted(MASKS), default="both")
    parser.add_argument("--out", required=True, help="predictions JSONL ({id, output, ...} per record)")
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--teacher", default=None,
                        help="JSON of one `teachers` entry: answer with its prompt and modality only (no --prompt)")


def run(args) -> int:
    cfg = json.loads(args.model)
    if args.checkpoint:
        cfg = {**cfg, "checkpoint": args.checkpoint}
    spec = ModelSpec.from_config(args.model_name, cfg)
    teacher = json.loads(args.teacher) if args.teacher else None
    run_inference(args.records, spec, args.prompt, MediaParams.from_config(json.loads(args.media_params)), args.mask,
                  args.out, args.chunk_size, teacher=teacher)
    return 0
