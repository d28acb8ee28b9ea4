"""Runs share the stages their configs agree on (upstream_run): which ones, and where their jobs write."""

from __future__ import annotations

import pytest

from avrt.core.config import ConfigError, deep_merge, load_yaml, validate_config
from avrt.shared_stages import STAGES, first_difference, shared_stages
from conftest import REPO, run_snakemake

PAPER = load_yaml(REPO / "config" / "config.yaml")


def recipe(name: str, base: dict = PAPER, **overrides) -> dict:
    return validate_config(deep_merge(deep_merge(base, load_yaml(REPO / "config" / "recipes" / f"{name}.yaml")), overrides))


# Each paper recipe takes from avrt-3b every stage before the one it changes (Sec. 4 of the paper:
# one set of teachers, merger and AVRT-20K for all experiments).
EXPECTED = {
    "avrt-7b": (("data", "traces", "merged"), "avrt20k", "tokenizer.checkpoint differs"),  # trace_stats counts its tokens
    "rl-only": (("data",), None, ""),  # no traces, no SFT: nothing else to share
    "no-length-reward": (STAGES, None, ""),
    "merger-gemma3": (("data", "traces"), "merged", "model.checkpoint differs"),
    "unfiltered": (("data", "traces", "merged"), "avrt20k", "filter.drop_answer_mismatch differs"),
    "audio-chains": (("data", "traces"), "avrt20k", "filter.source differs"),  # no merger in this run
    "visual-chains": (("data", "traces"), "avrt20k", "filter.source differs"),
    "answer-only": (("data", "traces", "merged", "avrt20k"), "sft", "sft.data.target differs"),
    "format-only": (("data", "traces", "merged", "avrt20k"), "sft", "sft.data.target differs"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_paper_recipe_takes_the_stages_before_the_one_it_changes(name):
    config = recipe(name)
    assert config["upstream_run"] == "avrt-3b"
    sharing = shared_stages(config, validate_config(PAPER))
    stages, stopped_at, because = EXPECTED[name]
    assert (sharing.stages, sharing.stopped_at, sharing.because) == (stages, stopped_at, because)


def test_a_changed_setting_stops_sharing_at_its_stage_and_a_throughput_setting_does_not():
    paper = validate_config(PAPER)
    mine = lambda **change: shared_stages(validate_config(deep_merge(PAPER, {"run": "x", **change})), paper)  # noqa: E731
    assert mine().stages == STAGES
    assert mine(media={"frame_max_side": 336}).stages == ()  # every stage reads the media
    teacher_sampling = mine(models={"visual_teacher": {"sampling": {"seed": 1}}})
    assert (teacher_sampling.stages, teacher_sampling.because) == (("data",), "models.visual_teacher.sampling.seed differs")
    assert mine(models={"visual_teacher": {"max_num_seqs": 8, "gpu_memory_utilization": 0.5}}).stages == STAGES
    assert mine(merger={"teacher_text": "reasoning"}).stages == ("data", "traces")
    assert mine(sft={"learning_rate": 1e-5}).stages == ("data", "traces", "merged", "avrt20k")
    assert mine(grpo={"beta": 0.0}).stages == STAGES  # GRPO is never shared
    # the best SFT checkpoint is chosen on each run's own evaluation, even with the same settings
    best_val = {"run": "x", "sft": {"select_checkpoint": "best_val", "save_total_limit": None}}
    best = shared_stages(validate_config(deep_merge(PAPER, best_val)), validate_config(deep_merge(PAPER, best_val)))
    assert (best.stopped_at, best.because) == ("sft", "sft.select_checkpoint best_val is chosen per run")


def test_demo_recipes_take_the_demo_s_stages():
    demo = load_yaml(REPO / "config" / "demo.yaml")
    for name, shared in (("no-length-reward", STAGES), ("rl-only", ("data",)), ("audio-chains", ("data", "traces"))):
        config = recipe(name, demo, run=f"demo-{name}", upstream_run="demo")
        assert shared_stages(config, validate_config(demo)).stages == shared, name


def test_first_difference_names_the_dotted_key():
    assert first_difference({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 3}]}}) == "a.b[1].c"
    assert first_difference({"a": [1]}, {"a": [1, 2]}) == "a"
    assert first_difference({"a": 1}, {"a": 1}) is None


def test_a_run_cannot_be_its_own_upstream():
    with pytest.raises(ConfigError, match="config key 'upstream_run': names this run itself"):
        validate_config({"run": "x", "upstream_run": "x"})
    with pytest.raises(ConfigError, match="upstream_run"):
        validate_config({"run": "x", "upstream_run": "../x"})  # a path component, like run


@pytest.mark.integration
def test_an_upstream_run_that_never_ran_stops_the_workflow_naming_the_key(workflow_dir):
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/demo.yaml", "config/recipes/rl-only.yaml",
                         "--config", "run=demo-rl-only", "upstream_run=demo", check=False)
    assert proc.returncode != 0
    assert ("config key 'upstream_run': results/demo/config.yaml does not exist" in proc.stdout + proc.stderr)


@pytest.mark.integration
def test_shared_jobs_are_the_upstream_run_s_own_jobs(workflow_dir):
    """A recipe's DAG holds each shared job once, writing under the upstream run with that run's
    config, exactly as the upstream's own DAG lists it; the recipe's own jobs write under its run."""
    base = run_snakemake(workflow_dir, "-n", "-p", "--configfile", "config/demo.yaml").stdout
    out = run_snakemake(workflow_dir, "-n", "-p", "--configfile", "config/demo.yaml",
                        "config/recipes/audio-chains.yaml", "--config", "run=demo-audio-chains",
                        "upstream_run=demo").stdout
    assert "run demo-audio-chains takes data, traces from results/demo; from avrt20k on it runs its own" in \
        run_snakemake(workflow_dir, "-n", "--configfile", "config/demo.yaml", "config/recipes/audio-chains.yaml",
                      "--config", "run=demo-audio-chains", "upstream_run=demo").stderr

    def commands(text: str, rule: str) -> set[str]:
        return {job.split("Shell command: ")[1].split("\n")[0] for job in text.split("\nrule ")[1:]
                if job.startswith(f"{rule}:") and "Shell command: " in job}

    for rule in ("ingest_avqa", "prepare_media", "teacher", "build_tiny_models"):
        assert commands(out, rule) and commands(out, rule) == commands(base, rule), rule
    assert "results/demo-audio-chains/traces" not in out and "results/demo-audio-chains/media" not in out
    (filter_job,) = commands(out, "filter_traces")
    assert "--config results/demo-audio-chains/config.yaml --traces results/demo/traces/" in filter_job
    assert "--out-train results/demo-audio-chains/avrt20k/train.jsonl" in filter_job
    assert "merge_traces" not in out
