"""One single-modality teacher over one shard: a reasoning trace per AVQA question.

The teacher sees only its modality (frames, audio, or the silent video), the paper's prompt
for it, and the question with its options. Each output row holds the raw output, the parsed
answer (or why none could be read), whether it is correct, token counts and timing. Rows are
written as they are made: an interrupted shard resumes without asking the model again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import logging
import time
from pathlib import Path

from tqdm import tqdm

from avrt.core.clip_media import load_clip_media, read_media_index
from avrt.core.io import read_jsonl
from avrt.models.spec import ModelSpec
from avrt.core.prompts import load_prompt, render_teacher_prompt
from avrt.core.resumable import ResumableShard
from avrt.core.parsing import parse_teacher_answer, response_text

log = logging.getLogger(__name__)

MEDIA_FOR = {"frames": {"with_frames": True, "with_audio": False},
             "audio": {"with_frames": False, "with_audio": True},
             "silent_video": {"with_frames": True, "with_audio": False}}


def sample_key(row: dict) -> str:
    return f"{row['sample_id']}/{row.get('sample_index', 0)}"


def pending_samples(shard: Path, media_index: Path, splits: list[str]) -> tuple[list[dict], dict, int]:
    """QA rows of the shard in the chosen splits whose clip has prepared media."""
    media = read_media_index(media_index)
    rows, skipped = [], 0
    for qa in read_jsonl(shard):
        if qa["split"] not in splits:
            continue
        if media.get(qa["video_name"], {}).get("status") != "ok":
            skipped += 1  # already in the data stage's attrition table
            continue
        rows.append(qa)
    return rows, media, skipped


def build_requests(batch: list[dict], media: dict, media_root: Path, prompt, modality: str):
    from avrt.models.adapters import GenerationRequest

    requests = []
    for qa in batch:
        clip = load_clip_media(media[qa["video_name"]], media_root, **MEDIA_FOR[modality])
        text = render_teacher_prompt(prompt, question=qa["question"], choices=qa["choices"])
        requests.append(GenerationRequest(request_id=str(qa["sample_id"]), prompt=text, media=clip, modalities=(modality,)))
    return requests


def trace_row(qa: dict, completion, teacher: dict, spec: ModelSpec, prompt, seconds: float) -> dict:
    parsed = parse_teacher_answer(completion.text, qa["choices"])
    return {
        "sample_id": qa["sample_id"],
        "split": qa["split"],
        "video_name": qa["video_name"],
        "teacher": teacher["name"],
        "modality": teacher["modality"],
        "model": spec.name,
        "checkpoint": spec.checkpoint,
        "prompt_id": prompt.prompt_id,
        "prompt_sha256": prompt.sha256,
        "sample_index": completion.sample_index,
        "seed": completion.seed,
        "raw_output": completion.text,
        "response": response_text(completion.text),
        "reasoning": parsed.reasoning,
        "answer_letter": parsed.letter,
        "parse_status": str(parsed.status),
        "gold_letter": qa["gold_letter"],
        "correct": parsed.letter == qa["gold_letter"],
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reason": completion.finish_reason,
        "seconds": round(seconds, 4),
    }


def run_teacher(teacher: dict, spec: ModelSpec, splits: list[str], shard: str | Path, media_index: str | Path,
                out: str | Path, chunk_size: int = 64, backend=None) -> dict:
    """Write `out` (JSONL, one row per sample and question); returns counts and throughput."""
    prompt = load_prompt(teacher["prompt"])
    samples, media, skipped = pending_samples(Path(shard), Path(media_index), splits)
    store = ResumableShard(out, {"model": asdict(spec), "prompt": prompt.sha256, "teacher": teacher}, sample_key,
                           inputs=[shard, media_index, spec.checkpoint, spec.adapter])
    todo = [qa for qa in samples if not store.done(f"{qa['sample_id']}/0")]
    start, calls = time.perf_counter(), 0
    for lo in tqdm(range(0, len(todo), chunk_size), desc=f"teacher {teacher['name']}", unit="chunk", mininterval=10):
        batch = todo[lo : lo + chunk_size]
        if backend is None:  # loaded only when there is work: a finished shard costs no model load
            from avrt.models.backends import load_model

            backend = load_model(spec)
        requests = build_requests(batch, media, Path(media_index).parent, prompt, teacher["modality"])
        t0 = time.perf_counter()
        completions = backend.generate(requests)
        calls += 1
        per_row = (time.perf_counter() - t0) / max(len(completions), 1)
        by_id = {str(qa["sample_id"]): qa for qa in batch}
        store.add(trace_row(by_id[c.request_id], c, teacher, spec, prompt, per_row) for c in completions)
    rows = store.finish(sort_key=lambda r: (str(r["sample_id"]), r["sample_index"]))
    elapsed = time.perf_counter() - start
    stats = {
        "teacher": teacher["name"], "rows": len(rows), "new_rows": len(todo) * spec.sampling.n,
        "model_calls": calls, "skipped_no_media": skipped, "seconds": round(elapsed, 3),
        "rows_per_s": round(len(todo) * spec.sampling.n / elapsed, 3) if todo else None,
        "parse_status": _count(rows, "parse_status"), "correct": sum(r["correct"] for r in rows),
    }
    log.info("teacher stats %s", json.dumps(stats))
    return stats


def _count(rows: list[dict], field: str) -> dict:
    out: dict = {}
    for r in rows:
        out[r[field]] = out.get(r[field], 0) + 1
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--teacher", required=True, help="JSON of one `teachers` entry")
    parser.add_argument("--model", required=True, help="JSON of its model spec (`models.<name>`)")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--shard", required=True)
    parser.add_argument("--media", required=True, help="the shard's media index")
    parser.add_argument("--out", required=True)
    parser.add_argument("--chunk-size", type=int, default=64)


def run(args) -> int:
    spec = ModelSpec.from_config(args.model_name, json.loads(args.model))
    run_teacher(json.loads(args.teacher), spec, args.splits, args.shard, args.media, args.out, args.chunk_size)
    return 0
