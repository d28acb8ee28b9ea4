"""A changed setting re-runs the jobs that read it, and only those: Snakemake's own params trigger.

The demo's outputs are stand-ins (empty files, made with `snakemake --touch`, which records each
job's params as a finished run does); a dry run with a config overlay then says which jobs
Snakemake would run again because their params changed.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.integration

# The demo with one benchmark (the one with modality masks and the difficulty teachers): every
# rule is in its DAG, with fewer jobs to touch.
BASE = ("--configfile", "config/demo.yaml", "small.yaml")


@pytest.fixture(scope="module")
def finished_demo(tmp_path_factory):
    """A copy of the workflow whose demo outputs all exist with the params a finished run records."""
    workdir = copy_workflow(tmp_path_factory.mktemp("finished_demo"))
    (workdir / "small.yaml").write_text("evaluation: {only: [omnibench]}\n")
    summary = run_snakemake(workdir, "--summary", *BASE).stdout
    for line in summary.splitlines()[1:]:
        path = workdir / line.split("\t")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        if "." in path.name:
            path.touch()
        else:  # the directory outputs: model checkpoints, the exported dataset, the synthetic clips
            path.mkdir(exist_ok=True)
    run_snakemake(workdir, "--touch", "--forceall", "--cores", "1", *BASE)
    assert "Nothing to be done" in run_snakemake(workdir, "-n", *BASE).stdout
    return workdir


def reruns(workdir, overlay: str) -> tuple[Counter, set[str]]:
    """(jobs per rule re-run because their params changed, every rule that would run) after
    `overlay` on the demo. (A job re-run because its input is remade shows that reason only.)"""
    (workdir / "overlay.yaml").write_text(overlay)
    out = run_snakemake(workdir, "-n", *BASE, "overlay.yaml").stdout
    if "Nothing to be done" in out:
        return Counter(), set()
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    reason: (.*)$", out, re.M)
    return Counter(rule for rule, reason in jobs if reason.startswith("Params have changed")), {r for r, _ in jobs}


@pytest.mark.parametrize(
    "overlay, changed",
    [
        # evaluation decodes with the student's sampling (3 tags x omnibench with 2 masks); training never does
        ("models: {student: {sampling: {max_new_tokens: 77}}}", {"evaluate": 9}),
        # a teacher's decoding: its traces (2 shards) and its Table 8 answers, not the other teacher's
        ("models: {audio_teacher: {sampling: {max_new_tokens: 16}}}", {"teacher": 2, "evaluate_teacher": 1}),
        # training loads the student in its dtype (GRPO then re-runs on SFT's new checkpoint), as does
        # the base model's evaluation; the tokenizer that counts trace tokens stays
        ("models: {student: {dtype: bfloat16}}", {"sft": 1, "evaluate": 3}),
        ("sft: {learning_rate: 0.01}", {"sft": 1}),
        ("grpo: {beta: 0.02}", {"grpo": 1}),
        ("merger: {teacher_text: reasoning}", {"merge_traces": 2}),
        # media: the data stage's and the demo's warm-up (it cuts its clips as the run does); all that
        # loads the remade models re-runs for that (the teachers' Table 8 answers too, whose protocol
        # also takes media's frame count); the student's OmniBench protocol takes frames at a rate
        ("media: {num_frames: 4}", {"prepare_media": 2, "build_tiny_models": 1}),
        ("media: {audio_seconds: 5.0}", {"prepare_media": 2, "build_tiny_models": 1}),  # OmniBench sets its own cap
        # the warm-up's settings re-make the zoo (and all that loads it), nothing else reads them
        ("demo_warm_up: {steps: {merger: 5}}", {"build_tiny_models": 1}),
        # an input protocol re-runs the benchmarks cut by it, and only those
        ("evaluation: {protocols: {qwen_omni: {max_frames: 32}}}", {"evaluate": 9}),
        ("evaluation: {benchmark_protocols: {omnibench: avrt}}", {"evaluate": 9}),
        ("evaluation: {teacher_protocols: {omnibench: avrt}}", {"evaluate_teacher": 2}),
        ("evaluation: {protocols: {teacher_long: {audio_seconds: 60.0}}}", {"evaluate_teacher": 2}),
    ],
)
def test_a_changed_setting_reruns_the_jobs_that_read_it(finished_demo, overlay, changed):
    params_changed, planned = reruns(finished_demo, overlay)
    assert params_changed == Counter(changed)
    assert "run_manifest" in planned  # the run manifest records the whole config


@pytest.mark.parametrize(
    "overlay",
    [
        # batching: a stage's progress cache keeps its rows whatever the chunk they came in
        "traces: {chunk_size: 3}\nevaluation: {chunk_size: 3}",
        "models: {student: {batch_size: 2, max_num_seqs: 8}, merger: {gpu_memory_utilization: 0.5}}",
        # evaluation decodes greedily, once, whatever the spec samples with
        "models: {student: {sampling: {temperature: 0.7, n: 4}}}",
        "sft: {dataloader_num_workers: 3, save_total_limit: 5}\ngrpo: {vllm_gpu_memory_utilization: 0.5}",
    ],
)
def test_a_setting_that_changes_no_result_reruns_only_the_manifest(finished_demo, overlay):
    assert reruns(finished_demo, overlay) == (Counter(run_manifest=1), {"run_manifest", "all"})


def test_turning_the_judge_on_adds_its_job_and_reruns_no_other(finished_demo):
    """Table 0.A.1's judge reads the run's finished traces: only its job runs, and the manifest
    (the config changed) and the cost table (a new output) after it."""
    params_changed, planned = reruns(finished_demo, "judge: {model: student, samples: 3}")
    assert planned == {"judge_traces", "run_manifest", "stage_costs", "all"}
    assert set(params_changed) <= {"run_manifest"}  # (it shows the judge's new outputs as its reason)


def test_spelling_out_a_default_reruns_nothing(finished_demo):
    """An overlay that writes a key with the value it already has moves the key in the config
    mapping; a job re-runs for a changed value only."""
    assert reruns(finished_demo, "media: {resample_type: soxr_hq}\nsft: {epochs: 1}") == (Counter(), set())
