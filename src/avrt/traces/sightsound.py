"""SightSound-R1 trace curation: self-consistency over the silent-video teacher, then AGFV.

1. Test-time scaling (paper Sec. 3.1): the teacher wrote n traces per question from the silent
   video (`sampling.n`). `unanimous` keeps a question when every trace gives the same answer,
   |unique(A)| = 1 (the paper); `majority` keeps the traces that agree with a strict majority.
2. Audio-grounded fact verification (Sec. 3.2): a checker model hears the true audio and reads
   one trace; "yes" accepts it. Rejected traces stay in the output with their verdict; a reply
   that starts with neither yes nor no is counted as unparsed (and not accepted).
3. Export: every accepted trace in the strict `<think>..</think><answer>X</answer>` format is one
   SFT example (the fact-checked corpus D_FC holds traces, not questions), labelled with the
   teacher's answer: SightSound-R1 trains without ground truth. Questions use the AVQA
   audio-text variant of R1-AQA: "video" becomes "audio".
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from avrt.core.answers import is_strict_format
from avrt.core.clip_media import load_clip_media, read_media_index
from avrt.core.io import atomic_path, read_jsonl, write_jsonl
from avrt.models.spec import ModelSpec
from avrt.core.prompts import load_prompt, render_fact_check_prompt
from avrt.core.resumable import ResumableShard
from avrt.core.datasets import in_val
from avrt.core.parsing import parse_fact_check_verdict

log = logging.getLogger(__name__)

CONSENSUS_MODES = ("unanimous", "majority")
_VIDEO_WORD = re.compile(r"\b([Vv])ideo(s?)\b")


def audio_text_variant(question: str) -> str:
    """R1-AQA's audio-text AVQA question: every word "video" becomes "audio" (case kept)."""
    return _VIDEO_WORD.sub(lambda m: ("A" if m.group(1) == "V" else "a") + "udio" + m.group(2), question)


def consensus(rows: list[dict], mode: str) -> tuple[str | None, list[dict]]:
    """(agreed answer, traces that carry it) for one question's n traces; (None, []) if none."""
    if mode not in CONSENSUS_MODES:
        raise ValueError(f"unknown consensus mode {mode!r} (known: {', '.join(CONSENSUS_MODES)})")
    answers = [r["answer_letter"] for r in rows]
    if mode == "unanimous":
        return (answers[0], rows) if len(set(answers)) == 1 and answers[0] is not None else (None, [])
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None, []
    letter, count = votes.most_common(1)[0]
    if count * 2 <= len(rows):
        return None, []
    return letter, [r for r in rows if r["answer_letter"] == letter]


def select_consensus(traces: str | Path, mode: str, out: str | Path) -> Counter:
    """Write the traces of the questions that pass self-consistency, with the agreed answer."""
    by_sample: dict[str, list[dict]] = {}
    for row in read_jsonl(traces):
        by_sample.setdefault(str(row["sample_id"]), []).append(row)
    counts, kept = Counter(questions=len(by_sample)), []
    for rows in by_sample.values():
        rows.sort(key=lambda r: r["sample_index"])
        counts["traces"] += len(rows)
        letter, agreeing = consensus(rows, mode)
        if letter is None:
            continue
        counts["questions_kept"] += 1
        counts["traces_kept"] += len(agreeing)
        counts["teacher_label_correct"] += letter == rows[0]["gold_letter"]
        kept += [{**r, "teacher_label": letter} for r in agreeing]
    write_jsonl(out, kept)
    log.info("self-consistency (%s): kept %d of %d questions", mode, counts["questions_kept"], counts["questions"])
    return counts


def run_agfv(prompt_id: str, spec: ModelSpec, consensus_rows: str | Path, shard: str | Path, media_index: str | Path,
             out: str | Path, chunk_size: int = 64, backend=None) -> dict:
    """Ask the checker, with the true audio, whether each trace's audio claims hold."""
    from avrt.models.adapters import GenerationRequest

    prompt = load_prompt(prompt_id)
    questions = {str(q["sample_id"]): q for q in read_jsonl(shard)}
    media = read_media_index(media_index)
    rows = list(read_jsonl(consensus_rows))
    key = lambda r: f"{r['sample_id']}/{r['sample_index']}"  # noqa: E731
    store = ResumableShard(out, {"model": asdict(spec), "prompt": prompt.sha256}, key=key,
                           inputs=[consensus_rows, shard, media_index, spec.checkpoint, spec.adapter])
    todo = [r for r in rows if not store.done(key(r))]
    start, calls = time.perf_counter(), 0
    for lo in tqdm(range(0, len(todo), chunk_size), desc="agfv", unit="chunk", mininterval=10):
        batch = todo[lo : lo + chunk_size]
        if backend is None:
            from avrt.models.backends import load_model

            backend = load_model(spec)
        requests = []
        for r in batch:
            qa = questions[str(r["sample_id"])]
            clip = load_clip_media(media[r["video_name"]], Path(media_index).parent, with_frames=False)
            text = render_fact_check_prompt(prompt, question=qa["question"], choices=qa["choices"],
                                            reasoning=r["response"] or r["raw_output"])
            requests.append(GenerationRequest(request_id=key(r), prompt=text, media=clip, modalities=("audio",)))
        completions = {c.request_id: c for c in backend.generate(requests) if c.sample_index == 0}
        calls += 1
        for r in batch:
            verdict = parse_fact_check_verdict(completions[key(r)].text)
            store.add([{**r, "checker": spec.name, "checker_prompt_sha256": prompt.sha256,
                        "checker_output": completions[key(r)].text, "verdict": verdict.verdict,
                        "accepted": verdict.accepted}])
    out_rows = store.finish()
    stats = {"traces": len(out_rows), "accepted": sum(r["accepted"] for r in out_rows),
             "rejected": sum(r["verdict"] == "no" for r in out_rows),
             "unparsed": sum(r["verdict"] is None for r in out_rows), "model_calls": calls,
             "seconds": round(time.perf_counter() - start, 3)}
    log.info("agfv stats %s", json.dumps(stats))
    return stats


def sft_row(r: dict, question: dict, variant: bool) -> dict:
    """One accepted trace in the AVRT-20K schema the SFT stage reads."""
    return {
        "question": audio_text_variant(question["question"]) if variant else question["question"],
        "choices": question["choices"],
        "answer": r["teacher_label"],
        "question_relation": question.get("question_relation", ""),
        "question_type": question.get("question_type", ""),
        "av_reasoning": r["response"].strip(),
        "id": f"{r['sample_id']}#{r['sample_index']}",
        "video_name": r["video_name"],
        "avqa_split": r["split"],
        "gold_letter": r["gold_letter"],
    }


def export_sft(agfv: list[str | Path], shards: list[str | Path], variant: bool, val_fraction: float, seed: int,
               consensus_counts: list[str | Path], out_train, out_val, out_counts) -> Counter:
    questions = {str(q["sample_id"]): q for s in shards for q in read_jsonl(s)}
    counts: Counter = Counter()
    for path in consensus_counts:
        counts.update({k: int(v) for k, v in json.loads(Path(path).read_text()).items()})
    rows = [r for p in agfv for r in read_jsonl(p)]
    counts["agfv_checked"] = len(rows)
    counts["agfv_accepted"] = sum(r["accepted"] for r in rows)
    counts["agfv_rejected"] = sum(r["verdict"] == "no" for r in rows)
    counts["agfv_unparsed"] = sum(r["verdict"] is None for r in rows)
    accepted = [r for r in rows if r["accepted"]]
    strict = [r for r in accepted if is_strict_format(r["response"])]
    counts["accepted_not_strict_format"] = len(accepted) - len(strict)
    examples = [sft_row(r, questions[str(r["sample_id"])], variant) for r in strict]
    # split by question, so the traces of one question never straddle train and val
    train = [e for e in examples if not in_val(e["id"].split("#")[0], val_fraction, seed)]
    val = [e for e in examples if in_val(e["id"].split("#")[0], val_fraction, seed)]
    counts["train"], counts["val"] = len(train), len(val)
    write_jsonl(out_train, train)
    write_jsonl(out_val, val)
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
    c.add_argument("--traces", required=True)
    c.add_argument("--mode", choices=CONSENSUS_MODES, default="unanimous")
    c.add_argument("--out", required=True)
    c.add_argument("--out-counts", required=True)
    a = sub.add_parser("agfv", help="audio-grounded fact verification of one shard's consensus traces")
    a.add_argument("--prompt", default="sightsound_agfv")
    a.add_argument("--model", required=True)
    a.add_argument("--model-name", required=True)
    a.add_argument("--consensus", required=True)
    a.add_argument("--shard", required=True)
    a.add_argument("--media", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--chunk-size", type=int, default=64)
    e = sub.add_parser("export", help="accepted traces -> SFT train/val (AVRT-20K schema)")
    e.add_argument("--agfv", nargs="+", required=True)
    e.add_argument("--shards", nargs="+", required=True)
    e.add_argument("--consensus-counts", nargs="+", required=True)
    e.add_argument("--no-audio-text-variant", action="store_true")
    e.add_argument("--val-fraction", type=float, required=True)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out-train", required=True)
    e.add_argument("--out-val", required=True)
    e.add_argument("--out-counts", required=True)


def run(args) -> int:
    if args.step == "consensus":
        counts = select_consensus(args.traces, args.mode, args.out)
        Path(args.out_counts).write_text(json.dumps(dict(counts)))
    elif args.step == "agfv":
        spec = ModelSpec.from_config(args.model_name, json.loads(args.model))
        run_agfv(args.prompt, spec, args.consensus, args.shard, args.media, args.out, args.chunk_size)
    else:
        export_sft(args.agfv, args.shards, not args.no_audio_text_variant, args.val_fraction, args.seed,
                   args.consensus_counts, args.out_train, args.out_val, args.out_counts)
    return 0
