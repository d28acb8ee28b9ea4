"""Shared pieces of the SFT tests: a prepared synthetic AVQA shard and a tiny student.

The shard is real: synthetic MP4 clips, ingested, media prepared (frames, 16 kHz audio) as the
data stage does it, with short clips and few frames so a CPU trains on them in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from avrt.core.config import stage_config
from avrt.core.rows import Avrt20kRow, ClipRef, ManifestRow, MediaRow, read_rows, write_rows
from avrt.models.spec import ModelSpec


@dataclass(frozen=True)
class PreparedShard:
    manifest: Path  # shard manifest: one row per QA
    media_index: Path

    def qa_rows(self, split: str) -> list[ManifestRow]:
        return [r for r in read_rows(self.manifest, ManifestRow) if r.split == split]

    def clip_refs(self) -> dict[str, ClipRef]:
        """video_name -> the clip's media row and root, as the trace stages hand them on."""
        root = str(self.media_index.parent)
        return {r.video_name: ClipRef(root=root, media=r) for r in read_rows(self.media_index, MediaRow)}


def prepare_synthetic_shard(out: Path, clips: dict[str, int], seconds: float = 4.0, num_frames: int = 4,
                            frame_max_side: int = 64, seed: int = 3) -> PreparedShard:
    """Synthetic release -> ingest -> one shard with prepared media, under `out`."""
    from avrt.data.ingest import ingest
    from avrt.core.media import MediaParams
    from avrt.data.media import prepare_shard
    from avrt.demo.synthetic_avqa import generate

    release = out / "release"
    generate(release, clips, seconds=seconds, width=96, height=72, fps=8, seed=seed)
    ingest({s: release / "annotations" / f"{s}_qa.json" for s in clips}, release / "videos", out / "data",
           stage_config("data", {"checks": {"workers": 1}}))
    manifest = out / "data" / "shards" / "000.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text((out / "data" / "manifest.jsonl").read_text())
    index = out / "media" / "000.jsonl"
    params = MediaParams(num_frames=num_frames, frame_max_side=frame_max_side, audio_seconds=seconds)
    prepare_shard(manifest, index, params)
    return PreparedShard(manifest, index)


def build_student_zoo(out: Path) -> Path:
    """Tiny random-weight students of both recipes (Qwen2.5-Omni thinker, Qwen2-Audio) under `out`."""
    from avrt.demo.zoo import build_zoo

    build_zoo(out, ["qwen2_5_omni", "qwen2_audio"], seed=0)
    return out


def write_avrt20k(path: Path, rows: list[ManifestRow], trace, clips: dict[str, ClipRef] | None = None) -> Path:
    """AVRT-20K rows (our export's schema) for shard QA rows, with `trace(row)` as av_reasoning and,
    from `clips`, each row's clip as our exports carry it."""
    write_rows(path, (
        Avrt20kRow(question=r.question, choices=r.choices, answer=r.gold_letter, question_relation=r.question_relation,
                   question_type=r.question_type, av_reasoning=trace(r), sample_id=r.sample_id,
                   video_name=r.video_name, avqa_split=r.split, difficulty="easy",
                   clip=(clips or {}).get(r.video_name))
        for r in rows
    ))
    return path


def student_spec(checkpoint: Path, family: str = "qwen2_5_omni", **extra) -> ModelSpec:
    return ModelSpec.from_config("student", {"family": family, "checkpoint": str(checkpoint), "backend": "hf",
                                             "dtype": "float32", "batch_size": 8,
                                             "sampling": {"temperature": 0.0, "max_new_tokens": 48}, **extra})


def cpu_sft_config(**overrides) -> dict:
    """The `sft` block for one CPU process: no DeepSpeed, no bf16, no background loaders, no loggers."""
    values = {"num_gpus": 1, "gradient_accumulation_steps": 1, "deepspeed": None, "bf16": False,
              "learning_rate": 1.0e-3, "warmup_steps": 2, "logging_steps": 1, "save_steps": 1000,
              "dataloader_num_workers": 0, "report_to": [], **overrides}
    return stage_config("sft", values)


def summary_of(final: Path) -> dict:
    return json.loads((final / "sft_summary.json").read_text())



def export_avrt20k_by_the_stages(shard: PreparedShard, out: Path) -> Path:
    """AVRT-20K train rows as the trace stages write them for `shard` (every split, val_fraction 0):
    the teacher stage (both teachers right, in the prompts' answer format), the merger stage (strict
    format) and the filter, each with a scripted backend in place of its model."""
    from fake_backends import ScriptedBackend

    from avrt.traces.filter import filter_traces
    from avrt.traces.merge import run_merge
    from avrt.traces.teacher import run_teacher

    gold = {r.sample_id: r.gold_letter for r in read_rows(shard.manifest, ManifestRow)}
    traces = {}
    for name, modality in (("visual", "frames"), ("audio", "audio")):
        teacher = {"name": name, "model": f"{name}_teacher", "prompt": f"{name}_teacher", "modality": modality}
        traces[modality] = out / "traces" / name / "000.jsonl"
        answer = ScriptedBackend(lambda sid, i, name=name: f"{name} description of {sid}.\nAnswer: ({gold[sid]})")
        run_teacher(teacher, _fake_spec(f"{name}_teacher"), ["train", "val"], shard.manifest, shard.media_index,
                    traces[modality], chunk_size=64, backend=answer)
    merged = out / "merged" / "000.jsonl"
    merger = ScriptedBackend(lambda sid, i: f"<think>Audio and frames of {sid} agree.</think><answer>{gold[sid]}</answer>")
    run_merge("merger", _fake_spec("merger"), traces, merged, "response", chunk_size=64, backend=merger)
    train = out / "avrt20k" / "train.jsonl"
    filter_traces([merged], "both_correct", False, True, 0.0, 0, train, out / "avrt20k" / "val.jsonl",
                  out / "avrt20k" / "counts.tsv", out / "avrt20k" / "difficulty.jsonl")
    return train


def _fake_spec(name: str) -> ModelSpec:
    return ModelSpec.from_config(name, {"family": "text_llm", "checkpoint": "/nonexistent", "backend": "hf",
                                        "sampling": {"temperature": 0.0, "max_new_tokens": 8}})
