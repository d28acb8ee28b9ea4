"""The trace-quality judge of the paper's appendix 0.A.1 (Table 0.A.1) over a run's AVRT-20K traces.

The paper had Gemini-3.1-Flash-Lite watch each clip with its audio for about 600 AVRT-20K
validation traces, in two passes, and so does this stage with an open omni model (`judge.model`):

1. Individual evaluation: each sampled trace is ACCURATE, MISSING_INFO or HALLUCINATING, with a
   flag each for whether its audio and its visual claims are grounded in the clip. The paper
   prints only its head-to-head prompt (Fig. 0.A.4); `judge_trace` is that prompt's wording adapted
   to one trace. The head-to-head comparison itself (against Qwen3-Omni-Thinking) is not run.
2. Hallucination source analysis (the paper's prompt, Fig. 0.A.5): for each trace judged
   HALLUCINATING, the judge reads both teachers' texts (what the merger read of them,
   `merger.teacher_text`), the merged trace and its first verdict, and names the source: the audio
   teacher, the vision teacher, both, or the merger. A run whose SFT set is one teacher's own
   traces (`filter.source`) has no merger and no second pass.

The judge sees the clip as every model-facing stage does (`avrt.core.clip_media.load_clip`): the
run's prepared frames with their audio track, which Qwen2.5-Omni takes as one video with its audio.
The paper's judge also had a separate audio file; ours hears the audio once. Both passes run through
the one generation driver, so an interrupted judge resumes without asking again, and the replies are
read afresh on every call (`avrt.evaluation.judge_replies`): a reply that cannot be read is kept with
its reason and counted, never fatal.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs

from avrt.core.clip_media import load_clip
from avrt.core.config import ConfigError, add_config_argument, load_config
from avrt.core.generation import LazyBackend, ModelOutput, generate
from avrt.core.io import InputFileError
from avrt.core.prompts import Prompt, load_prompt, render_judge_prompt, render_source_prompt
from avrt.core.rows import (Avrt20kRow, HallucinationSource, JudgeVerdict, MergedTrace, TeacherTrace, read_rows,
                            write_rows)
from avrt.evaluation.judge_replies import read_source, read_verdict
from avrt.evaluation.judge_table import build_judge_table, write_judge_table
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

JUDGE_PROMPT = "judge_trace"  # ours: Fig. 0.A.4 adapted to one trace (the paper prints only the head-to-head prompt)
SOURCE_PROMPT = "judge_sources"  # the paper's Fig. 0.A.5
JUDGE_MODALITIES = ("frames", "audio")  # the clip with its audio track


class JudgeInputError(InputFileError):
    """An input row the judge cannot use; the message names the file or sample."""


def sample_traces(rows: Sequence[Avrt20kRow], samples: int, seed: int, where: str = "") -> list[Avrt20kRow]:
    """`samples` of the rows drawn with `seed` (all of them when there are fewer), by sample id.

    The draw depends only on the set of sample ids, not on the order of the file.
    """
    by_id: dict[str, Avrt20kRow] = {}
    for row in rows:
        if row.sample_id is None or row.clip is None:
            raise JudgeInputError(f"{where}: trace of sample {row.sample_id!r} has no sample_id or clip; the judge "
                                  "watches the clip, so it reads this run's own AVRT-20K rows (results/<run>/avrt20k/)")
        if row.sample_id in by_id:
            raise JudgeInputError(f"{where}: sample {row.sample_id!r} appears twice")
        by_id[row.sample_id] = row
    ordered = [by_id[k] for k in sorted(by_id)]
    chosen = random.Random(seed).sample(ordered, min(samples, len(ordered)))
    return sorted(chosen, key=lambda r: r.sample_id)


@dataclass(frozen=True)
class SourceInputs:
    """What the source analysis shows the judge of one trace: the merged row and both teachers' rows."""

    merged: MergedTrace
    audio: TeacherTrace
    vision: TeacherTrace


def teacher_text(row: TeacherTrace, which: str) -> str:
    """What the merger read of a teacher row (`merger.teacher_text`, as `avrt.traces.merge` reads it)."""
    return (row.response if which == "response" else row.reasoning) or ""


def _ref_sample_index(ref: str) -> int:
    """The teacher sample a merged row points to (`traces/<teacher>#sample_id=..&sample_index=..`)."""
    values = parse_qs(ref.partition("#")[2]).get("sample_index", ["0"])
    return int(values[0])


def load_source_inputs(merged_paths: Sequence[str | Path], trace_paths: Sequence[str | Path],
                       sample_ids: set[str]) -> dict[str, SourceInputs]:
    """sample_id -> the merged row and its audio and vision teacher rows, for the given samples."""
    merged = {r.sample_id: r for p in merged_paths for r in read_rows(p, MergedTrace) if r.sample_id in sample_ids}
    teachers = {(r.teacher, r.sample_id, r.sample_index): r
                for p in trace_paths for r in read_rows(p, TeacherTrace) if r.sample_id in sample_ids}
    inputs = {}
    for sample_id, row in merged.items():
        by_modality = {}
        for name, ref in row.teachers.items():
            key = (name, sample_id, _ref_sample_index(ref.ref))
            if key not in teachers:
                raise JudgeInputError(f"sample {sample_id!r}: its merged trace names teacher {name!r} "
                                      f"({ref.ref}), whose row is not in the teacher traces given")
            by_modality[ref.modality] = teachers[key]
        if set(by_modality) != {"audio", "frames"}:
            raise JudgeInputError(f"sample {sample_id!r}: the source analysis needs an audio and a frames teacher, "
                                  f"its merged trace names {sorted(by_modality)}")
        inputs[sample_id] = SourceInputs(row, by_modality["audio"], by_modality["frames"])
    return inputs


def _output_fields(out: ModelOutput) -> dict:
    return {"judge_output": out.text, "prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens,
            "finish_reason": out.finish_reason, "seconds": out.seconds}


def verdict_row(row: Avrt20kRow, out: ModelOutput, spec: ModelSpec, prompt: Prompt) -> JudgeVerdict:
    reply = read_verdict(out.text)
    return JudgeVerdict(
        sample_id=row.sample_id, video_name=row.video_name or row.clip.media.video_name, question=row.question,
        choices=row.choices, gold_letter=row.answer, trace=row.av_reasoning, model=spec.name,
        checkpoint=spec.checkpoint, prompt_sha256=prompt.sha256, **_output_fields(out), **asdict(reply),
    )


def source_row(inputs: SourceInputs, out: ModelOutput, spec: ModelSpec, prompt: Prompt) -> HallucinationSource:
    reply = read_source(out.text)
    return HallucinationSource(
        sample_id=inputs.merged.sample_id, video_name=inputs.merged.video_name, audio_teacher=inputs.audio.teacher,
        vision_teacher=inputs.vision.teacher, model=spec.name, checkpoint=spec.checkpoint,
        prompt_sha256=prompt.sha256, **_output_fields(out), **asdict(reply),
    )


def previous_evaluation(verdict: JudgeVerdict) -> str:
    """The first pass's verdict as the source prompt's "Previous Evaluation Context"."""
    return f"Verdict: {verdict.verdict}. Explanation: {verdict.explanation or '(none given)'}"


def check_judge_model(spec: ModelSpec) -> None:
    from avrt.models.adapters import get_adapter

    takes = get_adapter(spec.family).modalities
    if not set(JUDGE_MODALITIES) <= takes:
        raise ConfigError(f"config key 'judge.model': model {spec.name!r} (family {spec.family!r}) cannot watch a clip "
                          f"with its audio; it takes {', '.join(sorted(takes)) or 'text only'}")


def run_judge(spec: ModelSpec, *, traces_file: str | Path, samples: int, seed: int, out_verdicts: str | Path,
              out_sources: str | Path, out_tables: str | Path, label: str, chunk_size: int,
              merged: Sequence[str | Path] = (), teacher_traces: Sequence[str | Path] = (),
              teacher_text_of: str = "response", backend=None) -> dict:
    """Judge `samples` traces of `traces_file` (AVRT-20K rows); with `merged` rows and their
    `teacher_traces`, attribute the hallucinating ones. Writes the verdict and source rows and
    Table 0.A.1 (`<out_tables>/table_a1.{md,csv}`); returns counts and throughput."""
    from avrt.models.adapters import GenerationRequest
    from avrt.models.backends import load_model

    check_judge_model(spec)
    spec = replace(spec, sampling=replace(spec.sampling, n=1))  # one verdict per trace
    judge_prompt, source_prompt = load_prompt(JUDGE_PROMPT), load_prompt(SOURCE_PROMPT)
    rows = read_rows(traces_file, Avrt20kRow)
    chosen = sample_traces(rows, samples, seed, where=str(traces_file))
    shared = backend or LazyBackend(lambda: load_model(spec))  # one model for both passes

    def verdict_request(row: Avrt20kRow):
        text = render_judge_prompt(judge_prompt, question=row.question, choices=row.choices, gold_letter=row.answer,
                                   trace=row.av_reasoning)
        return GenerationRequest(request_id=row.sample_id, prompt=text, media=load_clip(row.clip, JUDGE_MODALITIES),
                                 modalities=JUDGE_MODALITIES)

    outputs = generate(
        chosen, key=lambda r: r.sample_id, request=verdict_request, samples=1, cache=out_verdicts,
        settings={"model": asdict(spec), "prompt": judge_prompt.sha256},
        inputs=[traces_file, spec.checkpoint, spec.adapter],
        backend=shared, chunk_size=chunk_size, desc="judge traces",
    )
    verdicts = [verdict_row(r, o, spec, judge_prompt) for r in chosen for o in outputs.of(r.sample_id)]
    write_rows(out_verdicts, verdicts)
    stats = {"available": len(rows), "sampled": len(chosen), "verdicts": outputs.stats,
             "status": dict(Counter(v.status for v in verdicts)),
             "verdict": dict(Counter(v.verdict for v in verdicts if v.ok))}

    sources = None
    if merged:
        hallucinating = {v.sample_id: v for v in verdicts if v.ok and v.verdict == "HALLUCINATING"}
        inputs = load_source_inputs(merged, teacher_traces, set(hallucinating))
        unmerged = sorted(set(hallucinating) - set(inputs))
        if unmerged:
            raise JudgeInputError(f"samples {unmerged[:5]} of {traces_file} have no merged trace among the merged rows given")
        by_row = {r.sample_id: r for r in chosen}
        items = [inputs[s] for s in sorted(inputs)]

        def source_request(item: SourceInputs):
            sid, row = item.merged.sample_id, by_row[item.merged.sample_id]
            text = render_source_prompt(
                source_prompt, question=row.question, choices=row.choices, gold_letter=row.answer,
                audio_reasoning=teacher_text(item.audio, teacher_text_of),
                vision_reasoning=teacher_text(item.vision, teacher_text_of), merged_trace=row.av_reasoning,
                previous_evaluation=previous_evaluation(hallucinating[sid]))
            return GenerationRequest(request_id=sid, prompt=text, media=load_clip(row.clip, JUDGE_MODALITIES),
                                     modalities=JUDGE_MODALITIES)

        # keyed to the first pass's prompt too: its verdicts choose the items and fill the context
        source_outputs = generate(
            items, key=lambda i: i.merged.sample_id, request=source_request, samples=1, cache=out_sources,
            settings={"model": asdict(spec), "prompt": source_prompt.sha256, "verdict_prompt": judge_prompt.sha256,
                      "teacher_text": teacher_text_of},
            inputs=[traces_file, *merged, *teacher_traces, spec.checkpoint, spec.adapter],
            backend=shared, chunk_size=chunk_size, desc="judge sources",
        )
        sources = [source_row(i, o, spec, source_prompt) for i in items for o in source_outputs.of(i.merged.sample_id)]
        stats.update(sources=source_outputs.stats, source_status=dict(Counter(s.status for s in sources)),
                     source=dict(Counter(s.source for s in sources if s.ok)))
    if backend is None:
        shared.close()
    write_rows(out_sources, sources or [])
    table = build_judge_table(verdicts, sources, label=label, judge=f"{spec.name} ({spec.checkpoint})",
                              available=len(rows), seed=seed)
    write_judge_table(table, out_tables)
    stats["judged"] = table.judged
    log.info("judge stats %s", stats)
    return stats


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--traces-file", required=True, help="AVRT-20K rows to judge (results/<run>/avrt20k/val.jsonl)")
    parser.add_argument("--merged", nargs="*", default=[], help="the run's merged rows (none: no source analysis)")
    parser.add_argument("--teacher-traces", nargs="*", default=[], help="the merged teachers' trace rows")
    parser.add_argument("--out-verdicts", required=True)
    parser.add_argument("--out-sources", required=True)
    parser.add_argument("--out-tables", required=True, help="folder of table_a1.{md,csv}")


def run(args) -> int:
    config = load_config(*args.config)
    judge = config["judge"]
    if not judge:
        raise ConfigError("config key 'judge' is null (off): set judge.model to an omni model of `models` "
                          "(config/recipes/trace-judge.yaml)")
    run_judge(model_spec(config, judge["model"]), traces_file=args.traces_file, samples=judge["samples"],
              seed=judge["seed"], out_verdicts=args.out_verdicts, out_sources=args.out_sources,
              out_tables=args.out_tables, label=config["run"], chunk_size=config["traces"]["chunk_size"],
              merged=args.merged, teacher_traces=args.teacher_traces,
              teacher_text_of=config["merger"]["teacher_text"])
    return 0
