"""Stub inputs of the official AVQA size, for `snakemake -n` on the full-scale DAG (tests, benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path


def write_dry_run_stubs(out_dir: str | Path, config: dict, n_qa: int = 57335, n_clips: int = 45867,
                        n_train: int = 40127) -> Path:
    """Annotation files of the official AVQA size (no clips) and empty benchmark files, plus a
    config overlay pointing `config` at them: enough for `snakemake -n` on the full-scale DAG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "video_name": f"v{i % n_clips:06d}", "video_id": i % n_clips, "question_text": "q",
             "multi_choice": ["a", "b", "c", "d"], "answer": 0} for i in range(n_qa)]
    (out / "train_qa.json").write_text(json.dumps(rows[:n_train]))
    (out / "val_qa.json").write_text(json.dumps(rows[n_train:]))
    benchmarks = {}
    for name, entry in config.get("evaluation", {}).get("benchmarks", {}).items():
        stub = out / "benchmarks" / f"{name}{Path(entry['annotations']).suffix}"
        stub.parent.mkdir(exist_ok=True)
        stub.touch()
        benchmarks[name] = {"annotations": str(stub), "media_dir": str(out)}
    overlay = {"data": {"avqa": {"annotations": {"train": str(out / "train_qa.json"), "val": str(out / "val_qa.json")}}},
               "evaluation": {"benchmarks": benchmarks}}
    path = out / "overlay.yaml"
    path.write_text(json.dumps(overlay))  # JSON is YAML
    return path
