"""What each stage of a run cost: wall time, CPU time, peak memory and GPU-hours, per job and per stage.

Every heavy rule has a Snakemake `benchmark:` file (`results/<run>/logs/benchmarks/<rule>/...jsonl`,
written in the extended format that the workflow profile turns on: `benchmark-extended`). Each
record holds the job's wall time (`s`), CPU time, peak resident memory (`max_rss`, MB), threads
and the resources it was given, GPUs included. A job that ran through the Slurm executor also has
its Slurm job id, read from the executor's per-job log
(`.snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log`).

GPU-hours are the job's wall time times the GPUs it asked for: what the allocation cost, whether
or not the job kept its GPUs busy. A benchmark value Snakemake could not sample (a job shorter than
its first sample) is "NA" and counts as missing, never as 0.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from avrt.core.io import InputFileError, write_json

log = logging.getLogger(__name__)

COLUMNS = ("stage", "jobs", "wall_h", "gpu_h", "cpu_h", "max_rss_gb", "gpus_per_job", "runtime_limit_h", "slurm_jobs")


@dataclass(frozen=True)
class JobCost:
    rule: str
    wildcards: dict
    wall_s: float
    cpu_s: float | None
    max_rss_mb: float | None
    threads: int
    gpus: int
    runtime_limit_min: float | None  # the job's `runtime` resource (sbatch -t)
    slurm_job_id: str | None


def _number(value) -> float | None:
    return None if value in (None, "NA", "-") else float(value)


def read_benchmark(path: Path, slurm_logs: Path | None = None) -> list[JobCost]:
    """The jobs of one benchmark file (one line per run of the job; `--benchmark-repeats` adds lines)."""
    jobs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rule, wildcards, resources = record["rule_name"], record["wildcards"], record["resources"]
        except (ValueError, KeyError, TypeError) as err:
            raise InputFileError(f"{path}:{number}: not an extended benchmark record ({err}); "
                                 "the workflow profile sets benchmark-extended: true") from None
        jobs.append(JobCost(rule=rule, wildcards=wildcards, wall_s=float(record["s"]),
                            cpu_s=_number(record.get("cpu_time")), max_rss_mb=_number(record.get("max_rss")),
                            threads=int(record.get("threads") or 1), gpus=int(resources.get("gpu") or 0),
                            runtime_limit_min=_number(resources.get("runtime")),
                            slurm_job_id=slurm_job_id(slurm_logs, rule, wildcards) if slurm_logs else None))
    return jobs


def slurm_job_id(logs_dir: Path, rule: str, wildcards: dict) -> str | None:
    """The newest Slurm job id of a job, from the executor's log folder: the job's wildcard values
    joined by "_" in the rule's order, which the benchmark record (keys sorted) does not keep, so
    every order of the values is tried."""
    values = [str(v).replace("/", "_") for v in wildcards.values()]
    for order in itertools.permutations(values):
        folder = logs_dir / f"rule_{rule}" / "_".join(order)
        logs = [p for p in folder.glob("*.log") if p.stem.isdigit()] if folder.is_dir() else []
        if logs:
            return max(logs, key=lambda p: int(p.stem)).stem
    return None


def read_costs(benchmarks_dir: str | Path, slurm_logs: str | Path | None = None) -> list[JobCost]:
    root = Path(benchmarks_dir)
    logs = Path(slurm_logs) if slurm_logs is not None and Path(slurm_logs).is_dir() else None
    # in the order the jobs finished (Snakemake writes a job's record when it ends): stages in pipeline order
    paths = sorted(root.rglob("*.jsonl"), key=lambda p: (p.stat().st_mtime_ns, str(p)))
    return [job for path in paths for job in read_benchmark(path, logs)]


def _sum(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else math.fsum(values)


def stage_costs(jobs: list[JobCost]) -> list[dict]:
    """One row per stage (rule), in the order its first job appears in `jobs`; totals over its jobs."""
    stages: dict[str, list[JobCost]] = {}
    for job in jobs:
        stages.setdefault(job.rule, []).append(job)
    rows = []
    for rule, group in stages.items():
        cpu = _sum(j.cpu_s for j in group)
        rss = [j.max_rss_mb for j in group]
        limits = [j.runtime_limit_min for j in group]
        rows.append({
            "stage": rule,
            "jobs": len(group),
            "wall_h": math.fsum(j.wall_s for j in group) / 3600,
            "gpu_h": math.fsum(j.wall_s * j.gpus for j in group) / 3600,
            "cpu_h": None if cpu is None else cpu / 3600,
            "max_rss_gb": None if None in rss else max(rss) / 1024,
            "gpus_per_job": sorted({j.gpus for j in group}),
            "runtime_limit_h": None if None in limits else max(limits) / 60,
            "slurm_jobs": sorted(j.slurm_job_id for j in group if j.slurm_job_id),
        })
    return rows


def _cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(map(str, value)) if value else "-"
    return str(value)


def write_stage_costs(rows: list[dict], jobs: list[JobCost], out_dir: str | Path) -> None:
    """stage_costs.{csv,md,png} and the per-job records (jobs.json) in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stage_costs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows([_cell(row[c]) for c in COLUMNS] for row in rows)
    total_wall, total_gpu = math.fsum(r["wall_h"] for r in rows), math.fsum(r["gpu_h"] for r in rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    lines.append(f"| total | {sum(r['jobs'] for r in rows)} | {total_wall:.4g} | {total_gpu:.4g} |" + " |" * (len(COLUMNS) - 4))
    (out / "stage_costs.md").write_text("\n".join(lines) + "\n")
    write_json(out / "jobs.json", [job.__dict__ for job in jobs])
    _plot(rows, out / "stage_costs.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(rows), 3) + 1.2))
    names = [r["stage"] for r in rows]
    ax.barh(names, [r["wall_h"] for r in rows], label="wall hours (summed over jobs)", color="#8aa")
    ax.barh(names, [r["gpu_h"] for r in rows], label="GPU-hours", color="#c55", height=0.4)
    ax.invert_yaxis()
    ax.set_xlabel("hours")
    ax.set_title("Cost per stage")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(parser) -> None:
    parser.add_argument("--benchmarks", required=True, help="the run's benchmark folder (results/<run>/logs/benchmarks)")
    parser.add_argument("--slurm-logs", default=".snakemake/slurm_logs",
                        help="the Slurm executor's per-job logs, for the job ids (absent on local runs)")
    parser.add_argument("--out", required=True, help="folder for stage_costs.{csv,md,png} and jobs.json")


def run(args) -> int:
    jobs = read_costs(args.benchmarks, args.slurm_logs)
    rows = stage_costs(jobs)
    write_stage_costs(rows, jobs, args.out)
    log.info("%d jobs in %d stages: %.3f wall hours, %.3f GPU-hours", len(jobs), len(rows),
             sum(r["wall_h"] for r in rows), sum(r["gpu_h"] for r in rows))
    return 0
