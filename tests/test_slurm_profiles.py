"""The workflow profile (profiles/default), the cluster profile `avrt install-profile` writes, and the
GPU smoke rule, checked without a cluster. tests/test_slurm.py runs them on a real one."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PROFILE = REPO_ROOT / "profiles" / "default" / "config.yaml"
SMOKE_RULES = REPO_ROOT / "workflow" / "rules" / "smoke.smk"
RULE = re.compile(r"^\s*rule (\w+):", re.M)
# Settings that belong to a cluster, not to the workflow: the workflow profile never sets them.
CLUSTER_RESOURCES = {"slurm_partition", "slurm_account", "tasks", "cpus_per_task", "nodes", "gpu"}


def run_snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None,
                  unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run Snakemake from this interpreter's environment; rules find its `python` first on PATH.
    `env` adds variables to this process's environment, `unset` removes some."""
    env = {**os.environ, **(env or {}), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {name: value for name, value in env.items() if name not in unset}
    command = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def install_profile(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`avrt install-profile ...` as a user with `home` as HOME runs it."""
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run([sys.executable, "-m", "avrt", "install-profile", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def workflow_rules() -> set[str]:
    sources = [REPO_ROOT / "Snakefile", *sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk"))]
    return {name for path in sources for name in RULE.findall(path.read_text())} - {"all"}


@pytest.fixture
def smoke_workdir(tmp_path) -> Path:
    (tmp_path / "Snakefile").write_text(f'include: "{SMOKE_RULES}"\n')
    return tmp_path


# ---- the workflow profile ------------------------------------------------------------------------
def test_the_workflow_profile_names_every_rule_with_a_runtime_and_memory_and_nothing_of_a_cluster():
    profile = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    resources = profile["set-resources"]
    assert resources.keys() == workflow_rules()
    for rule, values in resources.items():
        assert {"runtime", "mem_mb"} <= values.keys(), rule
        assert not CLUSTER_RESOURCES & values.keys(), rule  # GPU counts come from the rules, placement from the user
    assert profile["set-threads"].keys() <= workflow_rules()
    assert profile["benchmark-extended"] is True  # the cost table reads the extended benchmark records
    assert not {"executor", "default-resources", "jobs"} & profile.keys()  # the cluster profile's keys


def test_gpu_rules_ask_for_h100s_and_cpu_rules_for_no_gpu_type():
    """A rule asks for GPUs in its own resources (from the config); the profile names their type."""
    sources = {p.stem: p.read_text() for p in (REPO_ROOT / "workflow" / "rules").glob("*.smk")}
    gpu_rules = set()
    for text in sources.values():
        for name, body in re.findall(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule |\Z)", text, re.M | re.S):
            if re.search(r"^\s+resources:\n(\s+.*\n)*?\s+(gpu=|\*\*slurm_resources)", body, re.M):
                gpu_rules.add(name)
    assert gpu_rules == {"gpu_smoke", "teacher", "merge_traces", "agfv", "evaluate", "evaluate_teacher", "sft", "grpo",
                         "select_checkpoint", "judge_traces"}
    resources = yaml.safe_load(WORKFLOW_PROFILE.read_text())["set-resources"]
    assert {rule for rule, values in resources.items() if values.get("gpu_model") == "h100"} == gpu_rules


# ---- the cluster profile -------------------------------------------------------------------------
def test_install_profile_writes_a_cluster_profile_where_snakemake_looks_and_never_overwrites_it(tmp_path):
    result = install_profile(tmp_path, "slurm", "--account", "proj42", "--cpu-partition", "cpu_q",
                             "--gpu-partition", "h100_q", "--gpu-model", "h100")
    assert result.returncode == 0, result.stderr
    profile_dir = tmp_path / ".config" / "snakemake" / "slurm"
    assert "snakemake --profile slurm" in result.stdout and str(profile_dir) in result.stdout
    config = yaml.safe_load((profile_dir / "config.yaml").read_text())
    assert config["executor"] == "slurm" and config["default-resources"] == {"slurm_account": "proj42"}
    assert config["retries"] >= 1 and config["rerun-incomplete"] and config["slurm-requeue"] is True
    assert config["slurm-status-command"] == "sacct" and config["slurm-keep-successful-logs"] is True
    assert "max-threads" not in config  # jobs get the threads the workflow profile asks for
    partitions = yaml.safe_load(Path(config["slurm-partition-config"]).read_text())
    assert partitions == {"partitions": {"cpu_q": {"max_gpu": 0},
                                         "h100_q": {"max_gpu": 8, "available_gpu_models": ["h100"]}}}

    before = {p.name: p.read_text() for p in profile_dir.iterdir()}
    again = install_profile(tmp_path, "slurm", "--account", "other", "--cpu-partition", "x")
    assert again.returncode == 2 and "already holds a profile" in again.stderr
    assert {p.name: p.read_text() for p in profile_dir.iterdir()} == before


def test_a_cluster_without_accounting_or_a_gpu_partition_gets_one_partition_and_no_account(tmp_path):
    result = install_profile(tmp_path, "--account", "", "--cpu-partition", "main", "--gpus-per-node", "4",
                             "--status-command", "squeue", "--max-threads", "2", "--directory", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())
    assert "default-resources" not in config and config["max-threads"] == 2
    assert config["slurm-status-command"] == "squeue"
    assert yaml.safe_load((tmp_path / "p" / "partitions.yaml").read_text()) == {"partitions": {"main": {"max_gpu": 4}}}


@pytest.mark.parametrize("args, message", [
    (("--account", "a b", "--cpu-partition", "cpu"), "account 'a b'"),
    (("--account", "a", "--cpu-partition", "cpu;rm -rf ~"), "--cpu-partition 'cpu;rm -rf ~'"),
    (("--account", "a", "--cpu-partition", "cpu", "--gpus-per-node", "0"), "at least 1"),
    (("../up", "--account", "a", "--cpu-partition", "cpu"), "profile name '../up'"),
])
def test_install_profile_refuses_names_that_are_not_slurm_names_and_writes_nothing(tmp_path, args, message):
    result = install_profile(tmp_path, *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / ".config").exists()


@pytest.mark.integration
def test_snakemake_profile_slurm_dry_runs_the_paper_config_with_the_resources_of_both_profiles(workflow_dir, tmp_path):
    """As a user types it, from the repository root: the cluster profile from the user's config
    folder, the workflow profile found by Snakemake itself. GPUs follow the config: the merger's
    tensor parallelism, training's num_gpus and num_nodes."""
    from avrt.core.config import load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs

    home = tmp_path / "home"
    assert install_profile(home, "slurm", "--account", "proj42", "--cpu-partition", "cpu_q",
                           "--gpu-partition", "h100_q").returncode == 0
    overlay = write_dry_run_stubs(tmp_path / "stubs", load_yaml(workflow_dir / "config/config.yaml"))
    args = ("-n", "--profile", "slurm", "--configfile", "config/config.yaml", str(overlay))
    env = {"HOME": str(home)}

    def resources(rule: str, *extra: str) -> dict[str, str]:
        result = run_snakemake(workflow_dir, *args, *extra, env=env, unset=("XDG_CONFIG_HOME",))
        assert result.returncode == 0, result.stderr[-3000:]
        block = re.search(rf"rule {rule}:.*?resources: (.*?)\n", result.stdout, re.S).group(1)
        return dict(item.split("=", 1) for item in block.split(", "))

    sft = resources("sft")
    assert (sft["gpu"], sft["gpu_model"], sft["slurm_account"], sft["mem_mb"]) == ("4", "h100", "proj42", "256000")
    assert "nodes" not in sft and "slurm_partition" not in sft  # the executor picks the partition
    teacher, merger = resources("teacher"), resources("merge_traces")
    assert (teacher["gpu"], teacher["runtime"]) == ("1", "360") and merger["gpu"] == "2"  # merger: TP 2
    assert resources("prepare_media").get("gpu", "0") == "0"
    wider = tmp_path / "wider.yaml"
    wider.write_text("grpo: {num_gpus: 8, num_nodes: 2}\nmodels: {merger: {tensor_parallel_size: 4}}\n")
    grpo = resources("grpo", str(wider))  # a third config file, after the overlay
    assert (grpo["nodes"], grpo["tasks"], grpo["slurm_extra"]) == ("2", "16", "--gpus-per-node=8")
    assert resources("merge_traces", str(wider))["gpu"] == "4"


@pytest.mark.integration
def test_a_profile_naming_an_unset_variable_stops_before_submitting(workflow_dir, tmp_path):
    """A `$VAR` in a profile's resources reaches sbatch literally when VAR is unset: the run stops
    first, dry runs too, naming the variable. Set to "" it is a choice (no -A), not an omission."""
    from avrt.core.config import load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs

    home = tmp_path / "home"
    assert install_profile(home, "--account", "proj42", "--cpu-partition", "cpu_q").returncode == 0
    config = home / ".config" / "snakemake" / "slurm" / "config.yaml"
    config.write_text(config.read_text().replace("slurm_account: proj42", "slurm_account: $PROJECT_ACCOUNT"))
    overlay = write_dry_run_stubs(tmp_path / "stubs", load_yaml(workflow_dir / "config/config.yaml"))
    args = ("-n", "--profile", "slurm", "--configfile", "config/config.yaml", str(overlay))
    result = run_snakemake(workflow_dir, *args, env={"HOME": str(home)}, unset=("XDG_CONFIG_HOME", "PROJECT_ACCOUNT"))
    assert result.returncode != 0
    assert "environment variables that are not set\n  PROJECT_ACCOUNT: slurm_account of every rule" in result.stdout
    assert "rule ingest_avqa" not in result.stdout + result.stderr  # no job was planned
    result = run_snakemake(workflow_dir, *args, env={"HOME": str(home), "PROJECT_ACCOUNT": ""},
                           unset=("XDG_CONFIG_HOME",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "slurm_account=," in result.stdout  # empty: the plugin submits without -A


# ---- the GPU smoke rule --------------------------------------------------------------------------
def test_gpu_smoke_rule_passes_lint(tmp_path):
    result = run_snakemake(tmp_path, "--lint", "--snakefile", str(SMOKE_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has NVIDIA GPUs")
def test_gpu_smoke_local_run_fails_clearly_without_gpus(smoke_workdir):
    result = run_snakemake(smoke_workdir, "--cores", "1", "results/gpu_smoke/1gpu.txt")
    assert result.returncode != 0
    log = (smoke_workdir / "results/gpu_smoke/logs/1gpu.log").read_text()
    assert "gpu_smoke: the job asked for 1 GPU(s) but torch sees 0" in log
    assert "SLURM_GPUS_ON_NODE=unset" in log
    assert not (smoke_workdir / "results/gpu_smoke/1gpu.txt").exists()
