"""SightSound-R1 trace curation: self-consistency over the silent-video teacher, then AGFV.

1. Test-time scaling (paper Sec. 3.1): the teacher wrote n traces per question from the silent
   video (`sampling.n`). `unanimous` keeps a question when every trace gives the same answer,
   |unique(A)| = 1 (the paper); `majority` keeps the traces that agree with a strict majority.
2. Audio-grounded fact verification (Sec. 3.2): a checker model hears the true audio and reads
   one trace; "yes" accepts it. Rejected traces stay in the output with their verdict; a reply
   that starts with neither yes nor no is counted as unparsed (and not accepted).
3. Export: every accepted trace in the strict `<think>..</think><answer>X</answer>` format is one
   SFT example (the fact-checked corpus D_FC holds traces, not questions), with the teacher's
   agreed answer as `teacher_label` (SightSound-R1 trains without ground truth; `answer` keeps the
   ground truth, as in AVRT-20K). Questions use the AVQA audio-text variant of R1-AQA: "video"
   becomes "audio" (`avrt.core.prompts.audio_text_question`; GRPO and evaluation ask the same way). Every row carries its question and clip, so no step re-reads the shard.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

from avrt.core.answers import is_strict_format
from avrt.core.clip_media import load_clip
from avrt.core.config import add_config_argument, audio_text_questions, load_config
from avrt.core.datasets import in_val
from avrt.core.generation import generate
from avrt.core.io import atomic_path
from avrt.core.parsing import parse_fact_check_verdict
from avrt.core.prompts import audio_text_question, load_prompt, render_fact_check_prompt
from avrt.core.rows import Avrt20kRow, CheckedTrace, ConsensusTrace, TeacherTrace, read_rows, write_rows
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

CONSENSUS_MODES = ("unanimous", "majority")
CHECKED_MODALITIES = ("audio",)  # the checker hears the true audio and reads the trace
def consensus(rows: list[TeacherTrace], mode: str) -> tuple[str | None, list[TeacherTrace]]:
    """(agreed answer, traces that carry it) for one question's n traces; (None, []) if none."""
    if mode not in CONSENSUS_MODES:
        raise ValueError(f"unknown consensus mode {mode!r} (known: {', '.join(CONSENSUS_MODES)})")
    answers = [r.answer_letter for r in rows]
    if mode == "unanimous":
        return (answers[0], rows) if len(set(answers)) == 1 and answers[0] is not None else (None, [])
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None, []
    letter, count = votes.most_common(1)[0]
    if count * 2 <= len(rows):
        return None, []
    return letter, [r for r in rows if r.answer_letter == letter]


def select_consensus(traces: str | Path, mode: str, out: str | Path) -> Counter:
    """Write the traces of the questions that pass self-consistency, with the agreed answer."""
    by_sample: dict[str, list[TeacherTrace]] = {}
    for row in read_rows(traces, TeacherTrace):
        by_sample.setdefault(row.sample_id, []).append(row)
    counts, kept = Counter(questions=len(by_sample)), []
    for rows in by_sample.values():
        rows.sort(key=lambda r: r.sample_index)
        counts["traces"] += len(rows)
        letter, agreeing = consensus(rows, mode)
        if letter is None:
            continue
        counts["questions_kept"] += 1
        counts["traces_kept"] += len(agreeing)
        counts["teacher_label_correct"] += letter == rows[0].gold_letter
        kept += [ConsensusTrace(**r.fields(), teacher_label=letter) for r in agreeing]
    write_rows(out, kept)
    log.info("self-consistency (%s): kept %d of %d questions", mode, counts["questions_kept"], counts["questions"])
    return counts


def trace_key(row: TeacherTrace) -> str:
    return f"{row.sample_id}/{row.sample_index}"


def run_agfv(prompt_id: str, spec: ModelSpec, consensus_rows: str | Path, out: str | Path, chunk_size: int,
             backend=None) -> dict:
    """Ask the checker, with the true audio, whether each trace's audio claims hold."""
    from avrt.models.adapters import GenerationRequest
    from avrt.models.backends import load_model

    prompt = load_prompt(prompt_id)
    rows = {trace_key(r): r for r in read_rows(consensus_rows, ConsensusTrace)}
    spec = replace(spec, sampling=replace(spec.sampling, n=1))

    def request(key: str):
        r = rows[key]
        # the whole trace: its reasoning is what the checker verifies (`response` holds only the answer)
        text = render_fact_check_prompt(prompt, question=r.question, choices=r.choices, reasoning=r.raw_output.strip())
        return GenerationRequest(request_id=key, prompt=text, media=load_clip(r.clip, CHECKED_MODALITIES),
                                 modalities=CHECKED_MODALITIES)

    outputs = generate(
        sorted(rows), key=str, request=request, samples=1, cache=out,
        settings={"model": asdict(spec), "prompt": prompt.sha256},
        inputs=[consensus_rows, spec.checkpoint, spec.adapter],
        backend=backend, load_backend=lambda: load_model(spec), chunk_size=chunk_size, desc="agfv",
    )
    checked = []
    for key in sorted(rows):
        for o in outputs.of(key):
            verdict = parse_fact_check_verdict(o.text)
            checked.append(CheckedTrace(**rows[key].fields(), checker=spec.name, checker_prompt_sha256=prompt.sha256,
                                        checker_output=o.text, verdict=verdict.verdict, accepted=verdict.accepted))
    write_rows(out, checked)
    stats = {"traces": len(checked), "accepted": sum(r.accepted for r in checked),
             "rejected": sum(r.verdict == "no" for r in checked),
             "unparsed": sum(r.verdict is None for r in checked), **outputs.stats}
    log.info("agfv stats %s", json.dumps(stats))
    return stats


def sft_row(r: CheckedTrace, variant: bool) -> Avrt20kRow:
    """One accepted trace in the AVRT-20K schema the SFT stage reads: the whole trace (reasoning
    and answer); `answer` stays the ground truth, `teacher_label` is the label SightSound-R1 trains with."""
    row = Avrt20kRow.of(r, r.raw_output, teacher_label=r.teacher_label, sample_index=r.sample_index)
    return row.replace(question=audio_text_question(r.question)) if variant else row


def export_sft(agfv: list[str | Path], variant: bool, val_fraction: float, seed: int,
               consensus_counts: list[str | Path], out_train, out_val, out_counts) -> Counter:
    counts: Counter = Counter()
    for path in consensus_counts:
        counts.update({k: int(v) for k, v in json.loads(Path(path).read_text()).items()})
    rows = [r for p in agfv for r in read_rows(p, CheckedTrace)]
    counts["agfv_checked"] = len(rows)
    counts["agfv_accepted"] = sum(r.accepted for r in rows)
    counts["agfv_rejected"] = sum(r.verdict == "no" for r in rows)
    counts["agfv_unparsed"] = sum(r.verdict is None for r in rows)
    accepted = [r for r in rows if r.accepted]
    strict = [r for r in accepted if is_strict_format(r.raw_output)]
    counts["accepted_not_strict_format"] = len(accepted) - len(strict)
    examples = [sft_row(r, variant) for r in strict]
    # split by question, so the traces of one question never straddle train and val
    train = [e for e in examples if not in_val(e.sample_id, val_fraction, seed)]
    val = [e for e in examples if in_val(e.sample_id, val_fraction, seed)]
    counts["train"], counts["val"] = len(train), len(val)
    write_rows(out_train, train)
    write_rows(out_val, val)
    q = counts["questions"] or 1
    with atomic_path(out_counts) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["count", "value"])
        for k in sorted(counts):
            writer.writerow([k, counts[k]])
        writer.writerow(["kept_fraction_self_consistency", round(counts["questions_kept"] / q, 4)])
        writer.writerow(["kept_fraction_agfv", round(counts["agfv_accepted"] / max(counts["agfv_checked"], 1), 4)])
    return counts


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="step", required=True)
    c = sub.add_parser("consensus", help="self-consistency over one shard's teacher traces")
    add_config_argument(c)
    c.add_argument("--traces", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--out-counts", required=True)
    a = sub.add_parser("agfv", help="audio-grounded fact verification of one shard's consensus traces")
    add_config_argument(a)
    a.add_argument("--consensus", required=True)
    a.add_argument("--out", required=True)
    e = sub.add_parser("export", help="accepted traces -> SFT train/val (AVRT-20K schema)")
    add_config_argument(e)
    e.add_argument("--agfv", nargs="+", required=True)
    e.add_argument("--consensus-counts", nargs="+", required=True)
    e.add_argument("--out-train", required=True)
    e.add_argument("--out-val", required=True)
    e.add_argument("--out-counts", required=True)


def run(args) -> int:
    config = load_config(*args.config)
    sightsound = config["sightsound"]
    if args.step == "consensus":
        counts = select_consensus(args.traces, sightsound["consensus"], args.out)
        Path(args.out_counts).write_text(json.dumps(dict(counts)))
    elif args.step == "agfv":
        run_agfv(sightsound["checker_prompt"], model_spec(config, sightsound["checker"]), args.consensus, args.out,
                 config["traces"]["chunk_size"])
    else:
        export_sft(args.agfv, audio_text_questions(config), config["filter"]["val_fraction"],
                   config["filter"]["seed"], args.consensus_counts, args.out_train, args.out_val, args.out_counts)
    return 0
