"""Tests against a real single-node Slurm started for the session (tests/slurm_cluster.py).

The cluster's `gpu` gres is backed by device files that are not GPUs: tests that rely on it say
`fake_gres` in their name. Skipped, with the reason, where the cluster cannot run (not root).
"""

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import copy_workflow
from slurm_cluster import (
    REPO_ROOT,
    SlurmCluster,
    SlurmUnavailable,
    ensure_slurm_available,
    install_test_profile,
    running_cluster,
)

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

WORKFLOW_PROFILE = REPO_ROOT / "profiles" / "default"
SMOKE_RULES = REPO_ROOT / "workflow" / "rules" / "smoke.smk"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
WORKFLOW_TIMEOUT_S = 2400


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    try:
        ensure_slurm_available()
    except SlurmUnavailable as exc:
        pytest.skip(f"no test Slurm cluster: {exc}")
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def slurm_env(slurm_cluster, tmp_path_factory) -> dict[str, str]:
    """The environment of a user who installed the `slurm` profile for the test cluster once."""
    return install_test_profile(slurm_cluster, tmp_path_factory.mktemp("home"))


def run_snakemake(workdir: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run Snakemake from this interpreter's environment; rules find its `python` first on PATH."""
    env = {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKFLOW_TIMEOUT_S,
    )


def submitted_jobs(result: subprocess.CompletedProcess) -> dict[str, Path]:
    """Slurm job id -> Slurm log file, for every job the executor plugin submitted with sbatch."""
    return {job_id: Path(log) for job_id, log in SUBMITTED.findall(result.stderr)}


# What differs between two runs of one config wherever they run: the caches of raw model outputs
# (`.progress/`) and TensorBoard event files carry times and hosts, resume records (`run.json`)
# the inputs' mtimes, training summaries their wall times, the provenance manifest job ids, the
# cost table (costs/) the jobs' times and memory.
RUN_SPECIFIC = re.compile(r"(/\.progress/|/tensorboard/|/run\.json$|_summary\.json$|/run_manifest\.json$|/costs/)")


def output_files(workdir: Path) -> dict[str, bytes]:
    """Every result file but the rules' logs and RUN_SPECIFIC files, by relative path.

    Rows are compared without their generation time (`seconds`). Resume journals
    (`progress.jsonl`) are appended in completion order, which depends on the number of workers:
    they are compared as sorted rows.
    """
    files = {}
    for path in sorted((workdir / "results").rglob("*")):
        relative = path.relative_to(workdir)
        if not path.is_file() or "logs" in relative.parts or RUN_SPECIFIC.search(f"/{relative}"):
            continue
        content = path.read_bytes()
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in content.splitlines() if line.strip()]
            lines = [json.dumps({k: v for k, v in row.items() if k != "seconds"}) for row in rows]
            content = "\n".join(sorted(lines) if path.name == "progress.jsonl" else lines).encode()
        files[str(relative)] = content
    return files


# --- the cluster itself -------------------------------------------------------------------


def test_cluster_node_is_idle_with_four_fake_gres_gpus(slurm_cluster):
    assert slurm_cluster.node_state() == "idle"
    node = slurm_cluster.run("scontrol", "show", "node", slurm_cluster.node_name).stdout
    assert "Gres=gpu:h100:4" in node


def test_sbatch_wrap_job_runs_on_the_node(slurm_cluster, tmp_path):
    out = tmp_path / "job.out"
    job_id = slurm_cluster.sbatch("--output", str(out), "--wrap", "echo job=$SLURM_JOB_ID host=$(hostname)")
    assert slurm_cluster.wait_for_job(job_id) == "COMPLETED"
    assert out.read_text().split() == [f"job={job_id}", f"host={slurm_cluster.node_name}"]


def test_fake_gres_job_is_given_two_of_four_gpus(slurm_cluster, tmp_path):
    out = tmp_path / "job.out"
    job_id = slurm_cluster.sbatch(
        "--gres=gpu:h100:2", "--output", str(out), "--wrap", "echo $SLURM_GPUS_ON_NODE $CUDA_VISIBLE_DEVICES"
    )
    assert slurm_cluster.wait_for_job(job_id) == "COMPLETED"
    gpus_on_node, visible = out.read_text().split()
    assert gpus_on_node == "2"
    assert len(visible.split(",")) == 2


def test_fake_gres_request_beyond_the_node_is_refused(slurm_cluster):
    refused = slurm_cluster.run("sbatch", "--gres=gpu:h100:5", "--wrap", "true", check=False)
    assert refused.returncode != 0
    assert "Requested node configuration is not available" in refused.stderr


# --- a workflow through the executor plugin -------------------------------------------------

def cancel_first_running(cluster: SlurmCluster, rule: str, stop: threading.Event, cancelled: list) -> None:
    """scancel the first job of `rule` seen running, as a preemption or an operator would."""
    while not stop.is_set():
        queue = cluster.run("squeue", "--noheader", "--format=%i %k %T", check=False).stdout
        for job_id, comment, state in (line.split() for line in queue.splitlines() if line.strip()):
            if comment.startswith(f"rule_{rule}_") and state == "RUNNING":
                cluster.run("scancel", job_id)
                cancelled.append((job_id, comment))
                return
        stop.wait(0.5)


def test_whole_demo_on_slurm_survives_a_cancelled_job_and_matches_the_local_run(slurm_cluster, slurm_env, tmp_path,
                                                                                demo_run):
    """`snakemake --profile slurm` as the README says, from the repository root, with the cluster
    profile installed by `avrt install-profile` and the workflow profile (profiles/default) loaded by
    Snakemake itself: every job but `all` on the cluster; one evaluation job is cancelled mid-run.
    The profile submits it again, the results equal the local run's, and the cost table names every
    job's Slurm job id."""
    workdir = copy_workflow(tmp_path)
    stop, cancelled = threading.Event(), []
    canceller = threading.Thread(target=cancel_first_running, args=(slurm_cluster, "evaluate", stop, cancelled))
    canceller.start()
    try:
        on_slurm = run_snakemake(workdir, "--profile", "slurm", "--configfile", "config/demo.yaml", env=slurm_env)
    finally:
        stop.set()
        canceller.join()
    assert on_slurm.returncode == 0, on_slurm.stderr[-5000:]

    jobs = submitted_jobs(on_slurm)
    total = int(re.search(r"^total\s+(\d+)$", on_slurm.stderr, re.M).group(1))
    [(cancelled_id, comment)] = cancelled
    assert f"SLURM-job '{cancelled_id}' failed, SLURM status is: 'CANCELLED'" in on_slurm.stderr
    assert len(jobs) == total  # every job but the local `all`, plus the cancelled one once more
    rule_dir, wildcards = comment.split("_wildcards_")  # the plugin's comment: rule_<rule>_wildcards_<values>
    [retry] = [log for job_id, log in jobs.items()
               if (log.parent.parent.name, log.parent.name) == (rule_dir, wildcards) and job_id != cancelled_id]
    assert "Finished jobid" in retry.read_text()

    slurm_outputs, local_outputs = output_files(workdir), output_files(demo_run)
    assert slurm_outputs.keys() == local_outputs.keys()
    differing = [p for p in slurm_outputs if slurm_outputs[p] != local_outputs[p]]
    assert not differing

    # what each stage cost: every benchmarked job with the Slurm job id it ran under
    costs = json.loads((workdir / "results/demo/costs/jobs.json").read_text())
    assert all(job["slurm_job_id"] in jobs for job in costs)
    by_rule = {job["rule"]: job for job in costs}
    assert {"prepare_media", "teacher", "merge_traces", "sft", "grpo", "evaluate"} <= by_rule.keys()
    assert by_rule["teacher"]["gpus"] == 1 and by_rule["prepare_media"]["gpus"] == 0
    # the cluster profile's partition selection sent the last (CPU) job to the CPU partition
    [last] = [job_id for job_id, log in jobs.items() if "rule_stage_costs" in log.parts]
    assert f"Partition={slurm_cluster.partition} " in slurm_cluster.run("scontrol", "show", "job", last).stdout


# --- the GPU smoke rule --------------------------------------------------------------------

# Stands in for torch on a machine without GPUs: counts the devices Slurm made visible to the
# job step, as CUDA would.
FAKE_TORCH = """\
import os


class cuda:
    @staticmethod
    def device_count():
        return len([d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d])
"""


def smoke_workdir(tmp_path: Path) -> Path:
    workdir = tmp_path / "smoke"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(f'include: "{SMOKE_RULES}"\n')
    return workdir


def test_gpu_smoke_on_fake_gres_fails_clearly_when_torch_sees_no_gpu(slurm_env, tmp_path):
    workdir = smoke_workdir(tmp_path)
    target = "results/gpu_smoke/2gpu.txt"
    # no retries: the profile's would submit the failing job twice more, with the same outcome
    result = run_snakemake(workdir, "--profile", "slurm", "--workflow-profile", str(WORKFLOW_PROFILE), "--retries", "0",
                           target, env=slurm_env)

    assert result.returncode != 0
    assert len(submitted_jobs(result)) == 1
    log = (workdir / "results/gpu_smoke/logs/2gpu.log").read_text()
    message = re.search(r"gpu_smoke: the job asked for 2 GPU\(s\) but torch sees 0 \((.*)\)", log)
    assert message, log
    # Slurm did grant two (fake) GPUs: the shortfall is torch's, and the message says so.
    assert "SLURM_GPUS_ON_NODE=2," in message.group(1)
    assert re.search(r"CUDA_VISIBLE_DEVICES=\d+,\d+\)", message.group(0))
    assert not (workdir / target).exists()


def test_gpu_smoke_on_fake_gres_passes_on_the_gpu_partition_with_fake_torch(slurm_cluster, slurm_env, tmp_path):
    workdir = smoke_workdir(tmp_path)
    fake_torch = tmp_path / "fake_torch"
    (fake_torch / "torch").mkdir(parents=True)
    (fake_torch / "torch" / "__init__.py").write_text(FAKE_TORCH)
    env = {**slurm_env, "PYTHONPATH": str(fake_torch)}

    result = run_snakemake(workdir, "--profile", "slurm", "--workflow-profile", str(WORKFLOW_PROFILE),
                           "results/gpu_smoke/2gpu.txt", env=env)

    assert result.returncode == 0, result.stderr[-5000:]
    (job_id,) = submitted_jobs(result)
    lines = (workdir / "results/gpu_smoke/2gpu.txt").read_text().splitlines()
    report = dict(line.split("=", 1) for line in lines if "=" in line)
    assert report["requested_gpus"] == "2"
    assert report["SLURM_JOB_ID"] == job_id
    assert report["SLURM_GPUS_ON_NODE"] == "2"
    assert report["torch_cuda_device_count"] == "2"
    # the cluster profile's partition selection sent the GPU job to the GPU partition
    assert f"Partition={slurm_cluster.gpu_partition} " in slurm_cluster.run("scontrol", "show", "job", job_id).stdout
