"""What a hostile or careless config can do to the workflow: nothing reaches a shell unquoted, names
stay paths under results/, and paths that do not exist stop the run before its first job."""

from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest

from conftest import BIN, REPO, copy_workflow, run_snakemake, workflow_env

pytestmark = pytest.mark.integration

PLANT = "$(touch INJECTED)`touch INJECTED`;touch INJECTED"
# Keys that name another entry of the config (a model, teacher, benchmark, column): a planted
# value is a dangling reference, which validation or the workflow reject before any shell.
REFERENCES = {"student.model", "merger.model", "judge.model", "grpo.label_column", "evaluation.base_model",
              "evaluation.only", "evaluation.mask_benchmarks", "sightsound.teacher", "sightsound.checker",
              "evaluation.difficulty.benchmark", "evaluation.difficulty.teachers"}
REFERENCE_MAPS = ("evaluation.benchmark_protocols.", "evaluation.teacher_protocols.")  # values name a protocol


def string_leaves(node, path=()):
    """(path, value) of every string in a config, lists included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from string_leaves(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


def dotted(path) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


def planted(config: dict, path) -> dict:
    out = copy.deepcopy(config)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] += PLANT
    return out


def test_no_config_value_or_file_name_reaches_a_shell_unquoted(tmp_path):
    """Plant shell code in every string key the schema lets through and in the input files' names,
    then run every shell command of the full-scale DAG with bash (`avrt` replaced by a no-op)."""
    from avrt.core.config import ConfigError, deep_merge, load_yaml, validate_config
    from avrt.demo.dry_run import write_dry_run_stubs

    workdir = tmp_path / "wf"
    workdir.mkdir()
    copy_workflow(workdir)
    # the paper's recipe with the trace judge on, so that its rule is in the DAG too
    paper = deep_merge(load_yaml(REPO / "config" / "config.yaml"), load_yaml(REPO / "config/recipes/trace-judge.yaml"))
    stubs = tmp_path / f"avqa {PLANT}"  # annotation files whose folder name is shell code
    overlay = json.loads(write_dry_run_stubs(stubs, paper).read_text())
    config = validate_config(deep_merge(paper, overlay))
    accepted, refused = [], []
    for path, value in string_leaves(config):
        if dotted(path) in REFERENCES or dotted(path).startswith(REFERENCE_MAPS) or PLANT in value:
            # references, and input files (planted in their folder's name)
            continue
        try:
            validate_config(planted(config, path))
            accepted.append(path)
        except ConfigError:
            refused.append(dotted(path))
    for path in accepted:
        config = planted(config, path)
    config = validate_config(config)
    # names that become paths or wildcards are refused, not quoted
    assert {"run", "teachers.name"} <= set(refused)
    assert "data.avqa.clips_dir" in map(dotted, accepted) and "models.merger.checkpoint" in map(dotted, accepted)

    (workdir / "planted.yaml").write_text(json.dumps(config))
    out = run_snakemake(workdir, "-n", "-p", "--configfile", "planted.yaml").stdout
    commands = re.findall(r"^Shell command: (.*)$", out, re.M)
    assert len(commands) > 100 and any("INJECTED" in c for c in commands)
    assert any(c.startswith("avrt judge-traces ") for c in commands)

    fake_bin = tmp_path / "fake_bin"
    fake_bin.mkdir()
    (fake_bin / "avrt").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "avrt").chmod(0o755)
    env = {**workflow_env(), "PATH": f"{fake_bin}:/usr/bin:/bin"}
    for command in commands:
        subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, timeout=60)
    assert not list(tmp_path.rglob("INJECTED")), "a planted value ran in a shell"


def test_paths_the_config_names_must_exist_before_the_first_job(workflow_dir):
    overrides = ["models={student: {checkpoint: /nonexistent/omni-3b}}"]
    proc = run_snakemake(workflow_dir, "--cores", "1", "--configfile", "config/demo.yaml", "--config", *overrides,
                         check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "nothing was run" in message and "models.student.checkpoint: '/nonexistent/omni-3b'" in message
    assert not (workflow_dir / "results" / "demo" / "synthetic").exists()
    # a dry run does not need the data: the same config lists its jobs
    assert run_snakemake(workflow_dir, "-n", "--configfile", "config/demo.yaml", "--config", *overrides).returncode == 0


def test_only_the_models_a_run_loads_must_exist(workflow_dir):
    """The SightSound-R1 demo recipe layers on the AVRT demo's config, whose teachers and merger it
    never loads (their tiny checkpoints are another run's): only its own models are checked."""
    recipe = ["config/demo.yaml", "config/recipes/sightsound-r1.yaml", "config/recipes/sightsound-r1-demo.yaml"]
    proc = run_snakemake(workflow_dir, "--cores", "1", "--configfile", *recipe,
                         "--config", "models={checker: {checkpoint: /nonexistent/checker}}", check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "nothing was run" in message and "models.checker.checkpoint: '/nonexistent/checker'" in message
    assert "visual_teacher" not in message and "models.merger" not in message


def test_readme_resume_steps_work_after_snakemake_is_killed(workflow_dir):
    """kill -9 leaves Snakemake's lock behind: the README says to unlock once, then run the same command."""
    import os
    import signal
    import time

    command = ["--profile", "profiles/local", "--cores", "1", "--until", "shard_manifest"]
    started = subprocess.Popen([str(BIN / "snakemake"), *command], cwd=workflow_dir,
                               env=workflow_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    synth_log = workflow_dir / "results" / "demo" / "logs" / "synthesize_avqa.log"
    deadline = time.monotonic() + 120
    while not synth_log.exists() and time.monotonic() < deadline and started.poll() is None:
        time.sleep(0.2)
    assert synth_log.exists() and started.poll() is None, "the first job did not start"
    os.killpg(started.pid, signal.SIGKILL)  # as a lost login node or an OOM killer would
    started.wait()

    locked = run_snakemake(workflow_dir, *command, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run_snakemake(workflow_dir, *command, "--unlock")
    resumed = run_snakemake(workflow_dir, *command)
    assert "synthesize_avqa" in resumed.stdout + resumed.stderr  # the interrupted job ran again
    assert (workflow_dir / "results" / "demo" / "data" / "shards" / "000.jsonl").stat().st_size > 0
