"""The text-only merger over one shard: both teachers' traces -> one audio-visual trace.

The merger prompt gets the question, the options and the two teacher texts; the render
function takes nothing else, so the ground truth cannot reach it. The output is held to the
strict `<think>...</think><answer>X</answer>` format. A merged row keeps references to both
teacher rows, their answers and correctness, and the sample's difficulty (how many teachers
were right), which the evaluation's difficulty subsets use.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import logging
import time
from pathlib import Path

from tqdm import tqdm

from avrt.core.io import read_jsonl
from avrt.models.spec import ModelSpec
from avrt.core.prompts import load_prompt, render_merger_prompt
from avrt.core.resumable import ResumableShard
from avrt.core.parsing import check_merger_output

log = logging.getLogger(__name__)

DIFFICULTY = {2: "easy", 1: "medium", 0: "hard"}  # teachers correct -> label (paper Table 8)


def teacher_text(row: dict, which: str) -> str:
    """The part of a teacher row the merger reads: `response` (after thinking) or `reasoning`."""
    return row["response"] if which == "response" else row["reasoning"]


def merger_requests(qas: list[dict], traces: dict[str, dict], prompt, which: str):
    from avrt.models.adapters import GenerationRequest

    requests = []
    for qa in qas:
        key = str(qa["sample_id"])
        text = render_merger_prompt(
            prompt,
            question=qa["question"],
            choices=qa["choices"],
            audio_reasoning=teacher_text(traces["audio"][key], which),
            vision_reasoning=teacher_text(traces["frames"][key], which),
        )
        requests.append(GenerationRequest(request_id=key, prompt=text))
    return requests


def merged_row(qa: dict, completion, traces: dict[str, dict], spec: ModelSpec, prompt, seconds: float) -> dict:
    key = str(qa["sample_id"])
    check = check_merger_output(completion.text, len(qa["choices"]))
    refs = {}
    for modality, rows in traces.items():
        t = rows[key]
        refs[t["teacher"]] = {"modality": modality, "answer_letter": t["answer_letter"], "correct": t["correct"],
                              "parse_status": t["parse_status"], "prompt_sha256": t["prompt_sha256"],
                              "ref": f"traces/{t['teacher']}#sample_id={t['sample_id']}&sample_index={t['sample_index']}"}
    n_correct = sum(r["correct"] for r in refs.values())
    return {
        "sample_id": qa["sample_id"],
        "split": qa["split"],
        "video_name": qa["video_name"],
        "question": qa["question"],
        "choices": qa["choices"],
        "gold_letter": qa["gold_letter"],
        "question_type": qa.get("question_type", ""),
        "question_relation": qa.get("question_relation", ""),
        "merged_output": completion.text,
        "merge_status": str(check.status),
        "answer_letter": check.letter,
        "merger_correct": check.letter == qa["gold_letter"],
        "teachers": refs,
        "teachers_correct": n_correct,
        "difficulty": DIFFICULTY.get(n_correct, "hard") if len(refs) == 2 else f"{n_correct}/{len(refs)}",
        "model": spec.name,
        "checkpoint": spec.checkpoint,
        "prompt_sha256": prompt.sha256,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reason": completion.finish_reason,
        "seconds": round(seconds, 4),
    }


def load_traces(paths: dict[str, str | Path]) -> dict[str, dict]:
    """modality -> sample_id -> the first sample of that teacher's trace rows."""
    out: dict[str, dict] = {}
    for modality, path in paths.items():
        out[modality] = {str(r["sample_id"]): r for r in read_jsonl(path) if r["sample_index"] == 0}
    return out


def run_merge(prompt_id: str, spec: ModelSpec, shard: str | Path, teacher_traces: dict[str, str | Path],
              out: str | Path, which: str = "response", chunk_size: int = 64, backend=None) -> dict:
    if set(teacher_traces) != {"audio", "frames"}:
        raise ValueError(f"the merger prompt takes an audio and a visual (frames) trace, got {sorted(teacher_traces)}")
    prompt = load_prompt(prompt_id)
    traces = load_traces(teacher_traces)
    qas = [qa for qa in read_jsonl(shard) if all(str(qa["sample_id"]) in t for t in traces.values())]
    store = ResumableShard(out, {"model": asdict(spec), "prompt": prompt.sha256, "which": which},
                           key=lambda r: str(r["sample_id"]),
                           inputs=[shard, *teacher_traces.values(), spec.checkpoint, spec.adapter])
    todo = [qa for qa in qas if not store.done(str(qa["sample_id"]))]
    start, calls = time.perf_counter(), 0
    for lo in tqdm(range(0, len(todo), chunk_size), desc="merge", unit="chunk", mininterval=10):
        batch = todo[lo : lo + chunk_size]
        if backend is None:
            from avrt.models.backends import load_model

            backend = load_model(spec)
        t0 = time.perf_counter()
        completions = [c for c in backend.generate(merger_requests(batch, traces, prompt, which)) if c.sample_index == 0]
        calls += 1
        per_row = (time.perf_counter() - t0) / max(len(completions), 1)
        by_id = {str(qa["sample_id"]): qa for qa in batch}
        store.add(merged_row(by_id[c.request_id], c, traces, spec, prompt, per_row) for c in completions)
    rows = store.finish(sort_key=lambda r: str(r["sample_id"]))
    elapsed = time.perf_counter() - start
    stats = {"rows": len(rows), "new_rows": len(todo), "model_calls": calls, "seconds": round(elapsed, 3),
             "rows_per_s": round(len(todo) / elapsed, 3) if todo else None,
             "format_ok": sum(r["merge_status"] == "ok" for r in rows)}
    log.info("merge stats %s", json.dumps(stats))
    return stats


def add_arguments(parser) -> None:
    parser.add_argument("--prompt", default="merger")
    parser.add_argument("--model", required=True, help="JSON of the merger's model spec")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--shard", required=True)
    parser.add_argument("--traces", nargs="+", required=True, metavar="MODALITY=PATH",
                        help="teacher traces by modality: audio=... frames=...")
    parser.add_argument("--teacher-text", choices=["response", "reasoning"], default="response")
    parser.add_argument("--out", required=True)
    parser.add_argument("--chunk-size", type=int, default=64)


def run(args) -> int:
    spec = ModelSpec.from_config(args.model_name, json.loads(args.model))
    traces = dict(item.split("=", 1) for item in args.traces)
    run_merge(args.prompt, spec, args.shard, traces, args.out, args.teacher_text, args.chunk_size)
    return 0
