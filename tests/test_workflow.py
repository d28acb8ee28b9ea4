"""The Snakemake workflow itself: lint, the full-scale DAG, and a real run of the demo."""

from __future__ import annotations

import json
import re

import pytest

from conftest import run_snakemake

pytestmark = pytest.mark.integration


def job_counts(dry_run_stdout: str) -> dict[str, int]:
    table = dry_run_stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean(workflow_dir):
    proc = run_snakemake(workflow_dir, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_full_scale_dag_has_one_job_per_shard(workflow_dir, tmp_path):
    """57,335 QA in 64 shards: the DAG is O(shards), built without reading any clip."""
    ann = tmp_path / "ann"
    ann.mkdir()
    rows = [{"id": i, "video_name": f"v{i % 45867:06d}", "video_id": i % 45867, "question_text": "q",
             "multi_choice": ["a", "b", "c", "d"], "answer": 0} for i in range(57335)]
    (ann / "train.json").write_text(json.dumps(rows[:40127]))
    (ann / "val.json").write_text(json.dumps(rows[40127:]))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(f"data:\n  avqa:\n    annotations: {{train: {ann}/train.json, val: {ann}/val.json}}\n")
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/config.yaml", str(overlay))
    counts = job_counts(proc.stdout)
    assert counts["prepare_media"] == 64
    assert counts["ingest_avqa"] == counts["shard_manifest"] == counts["data_summary"] == 1
    assert "synthesize_avqa" not in counts
    assert counts["total"] <= 2 * 64 + 10


def test_demo_data_stage_runs_and_reruns_nothing(workflow_dir):
    run_snakemake(workflow_dir, "--cores", "2", "--profile", "profiles/local")
    summary = json.loads((workflow_dir / "results/demo/data/data_summary.json").read_text())
    assert summary["media"]["failed"] == 0 and summary["media"]["audio_padded_clips"] == 1
    assert summary["dropped_qa"] == {"clip_check/clip_corrupt": 2, "clip_check/clip_missing": 2,
                                     "clip_check/no_audio_track": 2}
    assert summary["usable_qa"] == {"train": 26, "val": 16}
    again = run_snakemake(workflow_dir, "--cores", "2", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # --forcerun a shard-level rule: only media and what depends on it run again
    forced = run_snakemake(workflow_dir, "--cores", "2", "-n", "--forcerun", "prepare_media")
    counts = job_counts(forced.stdout)
    assert counts["prepare_media"] == 2 and "ingest_avqa" not in counts and "synthesize_avqa" not in counts
