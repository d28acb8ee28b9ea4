"""The cost table (`avrt.costs`) from benchmark records Snakemake itself writes.

The demo's cost table is checked in tests/test_workflow.py (local run) and tests/test_slurm.py
(Slurm job ids); here a two-rule workflow makes the records.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from avrt.core.io import InputFileError
from avrt.costs import read_costs, slurm_job_id, stage_costs, write_stage_costs
from conftest import BIN, workflow_env

SNAKEFILE = """\
rule all:
    input: expand("out/{shard}.txt", shard=["000", "001"]), "out/gpu.txt"

rule cpu_stage:
    output: "out/{shard}.txt"
    benchmark: "bench/cpu_stage/{shard}.jsonl"
    threads: 1
    resources: runtime=30, mem_mb=100
    shell: "python -c 'import time; x = bytearray(30_000_000); time.sleep(1.5)'; echo {wildcards.shard} > {output}"

rule gpu_stage:
    output: "out/gpu.txt"
    benchmark: "bench/gpu_stage.jsonl"
    resources: gpu=2, runtime=60, mem_mb=100
    shell: "sleep 0.2; echo gpu > {output}"
"""


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory) -> Path:
    """Benchmark files of a real (local) Snakemake run in the extended format."""
    workdir = tmp_path_factory.mktemp("costs")
    (workdir / "Snakefile").write_text(SNAKEFILE)
    subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--benchmark-extended", "-q"], cwd=workdir,
                   env=workflow_env(), check=True, capture_output=True, timeout=300)
    return workdir / "bench"


def test_jobs_are_read_with_their_rule_wildcards_gpus_and_runtime_limit(benchmarks):
    jobs = read_costs(benchmarks)
    assert sorted((j.rule, tuple(j.wildcards.values())) for j in jobs) == [
        ("cpu_stage", ("000",)), ("cpu_stage", ("001",)), ("gpu_stage", ())]
    cpu = [j for j in jobs if j.rule == "cpu_stage"]
    assert all(j.wall_s >= 1.5 and j.gpus == 0 and j.runtime_limit_min == 30 for j in cpu)
    assert all(j.max_rss_mb > 25 for j in cpu)  # the 30 MB the job held, sampled while it slept
    [gpu] = [j for j in jobs if j.rule == "gpu_stage"]
    assert gpu.gpus == 2 and gpu.slurm_job_id is None


def test_stages_sum_their_jobs_and_gpu_hours_are_wall_time_times_gpus(benchmarks):
    jobs = read_costs(benchmarks)
    rows = {row["stage"]: row for row in stage_costs(jobs)}
    cpu_wall = sum(j.wall_s for j in jobs if j.rule == "cpu_stage") / 3600
    assert rows["cpu_stage"]["jobs"] == 2 and rows["cpu_stage"]["wall_h"] == pytest.approx(cpu_wall)
    assert rows["cpu_stage"]["gpu_h"] == 0 and rows["cpu_stage"]["runtime_limit_h"] == 0.5
    gpu_wall = next(j.wall_s for j in jobs if j.rule == "gpu_stage")
    assert rows["gpu_stage"]["gpu_h"] == pytest.approx(2 * gpu_wall / 3600)
    assert rows["gpu_stage"]["gpus_per_job"] == [2]


def test_a_value_snakemake_could_not_sample_is_missing_not_zero(benchmarks, tmp_path):
    """A job faster than the first sample has NA for memory and CPU time: the stage shows n/a."""
    copy = tmp_path / "bench"
    copy.mkdir()
    record = json.loads(next(benchmarks.rglob("000.jsonl")).read_text())
    (copy / "a.jsonl").write_text(json.dumps({**record, "max_rss": "NA", "cpu_time": "NA"}) + "\n")
    (copy / "b.jsonl").write_text(json.dumps(record) + "\n")
    [row] = stage_costs(read_costs(copy))
    assert row["jobs"] == 2 and row["max_rss_gb"] is None and row["cpu_h"] is None
    write_stage_costs([row], read_costs(copy), tmp_path / "out")
    [written] = list(csv.DictReader((tmp_path / "out" / "stage_costs.csv").open()))
    assert written["max_rss_gb"] == written["cpu_h"] == "n/a"


def test_the_tables_plot_and_job_records_are_written(benchmarks, tmp_path):
    jobs = read_costs(benchmarks)
    write_stage_costs(stage_costs(jobs), jobs, tmp_path)
    md = (tmp_path / "stage_costs.md").read_text().splitlines()
    assert md[0].startswith("| stage | jobs | wall_h | gpu_h |") and md[-1].startswith("| total | 3 |")
    stages = [r["stage"] for r in csv.DictReader((tmp_path / "stage_costs.csv").open())]
    assert sorted(stages) == ["cpu_stage", "gpu_stage"]  # in the order their first jobs finished
    assert (tmp_path / "stage_costs.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((tmp_path / "jobs.json").read_text())) == 3


def test_the_slurm_job_id_is_the_newest_log_of_the_jobs_wildcards(tmp_path):
    """The executor's log layout: .snakemake/slurm_logs/rule_<rule>/<wildcard values joined by _>/<jobid>.log."""
    folder = tmp_path / "rule_teacher" / "visual_000"  # the rule's wildcard order: teacher, shard
    folder.mkdir(parents=True)
    for job_id in ("99", "100"):  # a retried job: the retry ran last
        (folder / f"{job_id}.log").write_text("")
    (tmp_path / "rule_teacher" / "visual_001").mkdir()
    # a benchmark record keeps its wildcards with the keys sorted
    assert slurm_job_id(tmp_path, "teacher", {"shard": "000", "teacher": "visual"}) == "100"
    assert slurm_job_id(tmp_path, "teacher", {"teacher": "visual", "shard": "001"}) is None
    assert slurm_job_id(tmp_path, "merge_traces", {"shard": "000"}) is None


def test_a_record_without_the_extended_fields_is_a_clear_error(tmp_path):
    (tmp_path / "x.jsonl").write_text(json.dumps({"s": 1.0, "max_rss": 3}) + "\n")
    with pytest.raises(InputFileError, match=r"x.jsonl:1: not an extended benchmark record .*benchmark-extended"):
        read_costs(tmp_path)
