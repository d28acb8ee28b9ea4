"""One single-modality teacher over one shard: a reasoning trace per AVQA question.

The teacher sees only its modality (frames, audio, or the silent video), the paper's prompt
for it, and the question with its options. Each `TeacherTrace` row holds the question (so no
later stage re-reads the shard), the clip's media, the raw output, the parsed answer (or why
none could be read), whether it is correct, token counts and timing. Model outputs are cached
as they are made (`avrt.core.generation`): an interrupted shard resumes without asking the
model again, and the answer parsing runs afresh on every call.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from avrt.core.clip_media import load_clip, read_clip_refs
from avrt.core.config import add_config_argument, load_config, teacher_entry
from avrt.core.generation import ModelOutput, generate
from avrt.core.parsing import parse_teacher_answer, response_text
from avrt.core.prompts import Prompt, load_prompt, render_teacher_prompt
from avrt.core.rows import ClipRef, ManifestRow, QuestionRow, TeacherTrace, read_rows, write_rows
from avrt.models.merged_checkpoint import add_merged_argument, merged_spec
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)


def pending_samples(shard: Path, media_index: Path, splits: list[str]) -> tuple[list[ManifestRow], dict[str, ClipRef], int]:
    """QA rows of the shard in the chosen splits whose clip has prepared media."""
    clips = read_clip_refs(media_index)
    rows, skipped = [], 0
    for qa in read_rows(shard, ManifestRow):
        if qa.split not in splits:
            continue
        if qa.video_name not in clips or not clips[qa.video_name].media.ok:
            skipped += 1  # already in the data stage's attrition table
            continue
        rows.append(qa)
    return rows, clips, skipped


def trace_row(qa: ManifestRow, clip: ClipRef, out: ModelOutput, teacher: dict, spec: ModelSpec,
              prompt: Prompt) -> TeacherTrace:
    parsed = parse_teacher_answer(out.text, qa.choices)
    return TeacherTrace(
        **QuestionRow.fields_of(qa, clip), sample_index=out.sample_index, teacher=teacher["name"],
        modality=teacher["modality"], model=spec.name, checkpoint=spec.checkpoint, prompt_id=prompt.prompt_id, prompt_sha256=prompt.sha256,
        seed=out.seed, raw_output=out.text, response=response_text(out.text), reasoning=parsed.reasoning,
        answer_letter=parsed.letter, parse_status=str(parsed.status), correct=parsed.letter == qa.gold_letter,
        prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens,
        finish_reason=out.finish_reason, seconds=out.seconds,
    )


def run_teacher(teacher: dict, spec: ModelSpec, splits: list[str], shard: str | Path, media_index: str | Path,
                out: str | Path, chunk_size: int, backend=None) -> dict:
    """Write `out` (one TeacherTrace per sample and question); returns counts and throughput."""
    from avrt.models.adapters import GenerationRequest
    from avrt.models.backends import load_model

    prompt = load_prompt(teacher["prompt"])
    questions, clips, skipped = pending_samples(Path(shard), Path(media_index), splits)

    def request(qa: ManifestRow):
        clip = load_clip(clips[qa.video_name], (teacher["modality"],))
        text = render_teacher_prompt(prompt, question=qa.question, choices=qa.choices)
        return GenerationRequest(request_id=qa.sample_id, prompt=text, media=clip, modalities=(teacher["modality"],))

    outputs = generate(
        questions, key=lambda qa: qa.sample_id, request=request, samples=spec.sampling.n, cache=out,
        settings={"model": asdict(spec), "prompt": prompt.sha256, "teacher": teacher},
        inputs=[shard, media_index, spec.checkpoint, spec.adapter],
        backend=backend, load_backend=lambda: load_model(spec), chunk_size=chunk_size, desc=f"teacher {teacher['name']}",
    )
    rows = [trace_row(qa, clips[qa.video_name], o, teacher, spec, prompt)
            for qa in sorted(questions, key=lambda q: q.sample_id) for o in outputs.of(qa.sample_id)]
    write_rows(out, rows)
    stats = {"teacher": teacher["name"], "rows": len(rows), "skipped_no_media": skipped, **outputs.stats,
             "parse_status": dict(Counter(r.parse_status for r in rows)), "correct": sum(r.correct for r in rows)}
    log.info("teacher stats %s", stats)
    return stats


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--teacher", required=True, help="name of one `teachers` entry")
    parser.add_argument("--shard", required=True)
    parser.add_argument("--media", required=True, help="the shard's media index")
    parser.add_argument("--out", required=True)
    add_merged_argument(parser)


def run(args) -> int:
    config = load_config(*args.config)
    teacher = teacher_entry(config, args.teacher)
    spec = model_spec(config, teacher["model"])
    if args.merged_checkpoint:
        spec = merged_spec(spec, args.merged_checkpoint)
    run_teacher(teacher, spec, config["traces"]["splits"], args.shard, args.media, args.out,
                config["traces"]["chunk_size"])
    return 0
