"""The text-only merger over one shard: both teachers' traces -> one audio-visual trace.

The merger prompt gets the question, the options and the two teacher texts; the render
function takes nothing else, so the ground truth cannot reach it. The output is held to the
strict `<think>...</think><answer>X</answer>` format. A `MergedTrace` keeps the question (read
from the teacher rows, which carry it), references to both teacher rows with their answers and
correctness, and the sample's difficulty (how many teachers were right), which the evaluation's
difficulty subsets use. The merger answers each question once (its first sample).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

from avrt.core.config import add_config_argument, load_config
from avrt.core.datasets import difficulty_of
from avrt.core.generation import ModelOutput, generate
from avrt.core.parsing import check_merger_output
from avrt.core.prompts import Prompt, load_prompt, render_merger_prompt
from avrt.core.rows import MergedTrace, TeacherRef, TeacherTrace, read_rows, write_rows
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

MERGED_MODALITIES = ("audio", "frames")  # the merger prompt's two traces


def teacher_text(row: TeacherTrace, which: str) -> str:
    """The part of a teacher row the merger reads: `response` (after thinking) or `reasoning`."""
    return row.response if which == "response" else row.reasoning


def load_traces(paths: dict[str, str | Path]) -> dict[str, dict[str, TeacherTrace]]:
    """modality -> sample_id -> the first sample of that teacher's trace rows."""
    return {modality: {r.sample_id: r for r in read_rows(path, TeacherTrace) if r.sample_index == 0}
            for modality, path in paths.items()}


def merged_row(traces: dict[str, TeacherTrace], out: ModelOutput, spec: ModelSpec, prompt: Prompt) -> MergedTrace:
    first = traces["audio"]
    check = check_merger_output(out.text, len(first.choices))
    refs = {t.teacher: TeacherRef(modality=modality, answer_letter=t.answer_letter, correct=t.correct,
                                  parse_status=t.parse_status, prompt_sha256=t.prompt_sha256,
                                  ref=f"traces/{t.teacher}#sample_id={t.sample_id}&sample_index={t.sample_index}")
            for modality, t in traces.items()}
    n_correct = sum(r.correct for r in refs.values())
    return MergedTrace(
        **first.question_fields(), merged_output=out.text,
        merge_status=str(check.status), answer_letter=check.letter, merger_correct=check.letter == first.gold_letter,
        teachers=refs, teachers_correct=n_correct,
        difficulty=difficulty_of(n_correct, len(refs)),
        model=spec.name, checkpoint=spec.checkpoint, prompt_sha256=prompt.sha256, prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens, finish_reason=out.finish_reason, seconds=out.seconds,
    )


def run_merge(prompt_id: str, spec: ModelSpec, teacher_traces: dict[str, str | Path], out: str | Path, which: str,
              chunk_size: int, backend=None) -> dict:
    from avrt.models.adapters import GenerationRequest
    from avrt.models.backends import load_model

    if set(teacher_traces) != set(MERGED_MODALITIES):
        raise ValueError(f"the merger prompt takes an audio and a visual (frames) trace, got {sorted(teacher_traces)}")
    prompt = load_prompt(prompt_id)
    traces = load_traces(teacher_traces)
    ids = sorted(set.intersection(*(set(t) for t in traces.values())))
    spec = replace(spec, sampling=replace(spec.sampling, n=1))

    def request(sample_id: str):
        t = traces["audio"][sample_id]
        text = render_merger_prompt(prompt, question=t.question, choices=t.choices,
                                    audio_reasoning=teacher_text(t, which),
                                    vision_reasoning=teacher_text(traces["frames"][sample_id], which))
        return GenerationRequest(request_id=sample_id, prompt=text)

    outputs = generate(
        ids, key=str, request=request, samples=1, cache=out,
        settings={"model": asdict(spec), "prompt": prompt.sha256, "which": which},
        inputs=[*teacher_traces.values(), spec.checkpoint, spec.adapter],
        backend=backend, load_backend=lambda: load_model(spec), chunk_size=chunk_size, desc="merge",
    )
    rows = [merged_row({m: traces[m][i] for m in MERGED_MODALITIES}, o, spec, prompt) for i in ids for o in outputs.of(i)]
    write_rows(out, rows)
    stats = {"rows": len(rows), **outputs.stats, "format_ok": sum(r.merge_status == "ok" for r in rows)}
    log.info("merge stats %s", stats)
    return stats


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--traces", nargs="+", required=True, metavar="MODALITY=PATH",
                        help="teacher traces by modality: audio=... frames=...")
    parser.add_argument("--out", required=True)


def run(args) -> int:
    config = load_config(*args.config)
    merger = config["merger"]
    traces = dict(item.split("=", 1) for item in args.traces)
    run_merge(merger["prompt"], model_spec(config, merger["model"]), traces, args.out, merger["teacher_text"],
              config["traces"]["chunk_size"])
    return 0
