"""The Slurm profiles and the GPU smoke rule, checked without a cluster."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PAPER_PROFILE = REPO_ROOT / "profiles" / "slurm"
CI_PROFILE = REPO_ROOT / "profiles" / "slurm-ci"
SMOKE_RULES = REPO_ROOT / "workflow" / "rules" / "smoke.smk"


def run_snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None,
                  unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run Snakemake from this interpreter's environment; rules find its `python` first on PATH.
    `env` adds variables to this process's environment, `unset` removes some."""
    env = {**os.environ, **(env or {}), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {name: value for name, value in env.items() if name not in unset}
    command = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def smoke_workdir(tmp_path) -> Path:
    (tmp_path / "Snakefile").write_text(f'include: "{SMOKE_RULES}"\n')
    return tmp_path


@pytest.mark.parametrize("profile", [PAPER_PROFILE, CI_PROFILE], ids=["slurm", "slurm-ci"])
def test_profile_default_resources_leave_cpus_and_tasks_to_the_rules(profile):
    """cpus_per_task would override every rule's threads; tasks + gpu starts vLLM once per GPU."""
    defaults = yaml.safe_load((profile / "config.yaml").read_text())["default-resources"]
    assert not {"tasks", "cpus_per_task", "gpu"} & defaults.keys()


def test_the_paper_profile_retries_what_the_test_cluster_profile_retries():
    """A cancelled or preempted job is submitted again (tested on the test cluster); Slurm itself
    requeues preempted jobs of the paper profile."""
    paper, ci = (yaml.safe_load((p / "config.yaml").read_text()) for p in (PAPER_PROFILE, CI_PROFILE))
    assert paper["retries"] == ci["retries"] >= 1
    assert paper["rerun-incomplete"] and ci["rerun-incomplete"]
    assert paper["slurm-requeue"] is True


def test_gpu_smoke_rule_passes_lint(tmp_path):
    result = run_snakemake(tmp_path, "--lint", "--snakefile", str(SMOKE_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_paper_profile_places_gpu_smoke_on_the_gpu_partition(smoke_workdir):
    env = {"AVRT_SLURM_ACCOUNT": "proj42", "AVRT_CPU_PARTITION": "cpu_q", "AVRT_GPU_PARTITION": "h100_q"}
    target = "results/gpu_smoke/2gpu.txt"
    result = run_snakemake(smoke_workdir, "--profile", str(PAPER_PROFILE), "-n", target, env=env)
    assert result.returncode == 0, result.stderr
    resources = re.search(r"rule gpu_smoke:.*?resources: (.*?)\n", result.stdout + result.stderr, re.S).group(1)
    resolved = dict(item.split("=", 1) for item in resources.split(", "))
    assert resolved["gpu"] == "2"  # from the target name
    assert resolved["gpu_model"] == "h100"
    assert resolved["slurm_partition"] == "h100_q"
    assert resolved["slurm_account"] == "proj42"


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has NVIDIA GPUs")
def test_gpu_smoke_local_run_fails_clearly_without_gpus(smoke_workdir):
    result = run_snakemake(smoke_workdir, "--cores", "1", "results/gpu_smoke/1gpu.txt")
    assert result.returncode != 0
    log = (smoke_workdir / "results/gpu_smoke/logs/1gpu.log").read_text()
    assert "gpu_smoke: the job asked for 1 GPU(s) but torch sees 0" in log
    assert "SLURM_GPUS_ON_NODE=unset" in log
    assert not (smoke_workdir / "results/gpu_smoke/1gpu.txt").exists()


@pytest.mark.integration
@pytest.mark.parametrize("variable, resource", [("AVRT_SLURM_ACCOUNT", "slurm_account of every rule"),
                                                ("AVRT_GPU_PARTITION", "slurm_partition of gpu_smoke, teacher")])
def test_paper_profile_stops_before_submitting_when_a_placeholder_is_unset(tmp_path, variable, resource):
    """An unset variable would reach sbatch as the literal `$AVRT_...`: the run stops first, dry
    runs too, naming the variable. Set to "" it is a choice (no -A), not an omission."""
    from avrt.core.config import load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs
    from conftest import copy_workflow

    workdir = tmp_path / "workflow"
    workdir.mkdir()
    copy_workflow(workdir)
    overlay = write_dry_run_stubs(tmp_path / "stubs", load_yaml(workdir / "config" / "config.yaml"))
    args = ("-n", "--profile", "profiles/slurm", "--configfile", "config/config.yaml", str(overlay))
    env = {"AVRT_SLURM_ACCOUNT": "proj42", "AVRT_CPU_PARTITION": "cpu_q", "AVRT_GPU_PARTITION": "h100_q"}
    result = run_snakemake(workdir, *args, env=env, unset=(variable,))
    assert result.returncode != 0
    assert f"environment variables that are not set\n  {variable}: {resource}" in result.stdout + result.stderr
    assert "rule ingest_avqa" not in result.stdout + result.stderr  # no job was planned
    if variable == "AVRT_SLURM_ACCOUNT":
        result = run_snakemake(workdir, *args, env={**env, variable: ""})
        assert result.returncode == 0, result.stderr[-3000:]
        assert "slurm_account=," in result.stdout + result.stderr  # empty: the plugin submits without -A
