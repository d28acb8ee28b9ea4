"""The paper's experiments as recipes (config/recipes/*.yaml layered on config/config.yaml): each
builds its full-scale DAG in a dry run, with the jobs its experiment changes."""

from __future__ import annotations

import json
import re
import types
from collections import Counter
from pathlib import Path

import pytest

from avrt.core.config import ConfigError, deep_merge, load_yaml, validate_config
from conftest import REPO, copy_workflow, run_snakemake

RECIPES = ("avrt-7b", "rl-only", "no-length-reward", "merger-gemma3", "unfiltered", "audio-chains", "visual-chains",
           "answer-only", "format-only")


@pytest.fixture(scope="module")
def paper_workflow(tmp_path_factory) -> Path:
    """A workflow copy with stub AVQA and benchmark files of the official size, in which the paper's
    run (avrt-3b, every recipe's upstream_run) has been dry-run, so its config is known."""
    from avrt.demo.dry_run import write_dry_run_stubs

    workdir = copy_workflow(tmp_path_factory.mktemp("paper"))
    write_dry_run_stubs(workdir / "stubs", load_yaml(workdir / "config" / "config.yaml"))
    run_snakemake(workdir, "-n", "--configfile", "config/config.yaml", "stubs/overlay.yaml")
    return workdir


def dry_run(workflow_dir: Path, recipe: str) -> tuple[str, dict]:
    """`snakemake -n -p` of config/config.yaml + the recipe on the stubs: (its output, the run config
    the jobs read). The recipes' benchmarks are the paper's, so the stubs' overlay serves them all."""
    files = ["config/config.yaml", f"config/recipes/{recipe}.yaml", "stubs/overlay.yaml"]
    out = run_snakemake(workflow_dir, "-n", "-p", "--configfile", *files).stdout
    run = load_yaml(workflow_dir / files[1])["run"]
    return out, load_yaml(workflow_dir / "results" / run / "config.yaml")


def jobs(out: str) -> Counter:
    return Counter(re.findall(r"^rule (\w+):$", out, re.M))


def shells(out: str, rule: str) -> list[str]:
    return [job.split("Shell command: ")[1].split("\n")[0] for job in out.split("\nrule ")[1:]
            if job.startswith(f"{rule}:") and "Shell command: " in job]


def test_every_recipe_names_its_table_and_its_own_run():
    runs = set()
    for recipe in RECIPES:
        text = (REPO / "config" / "recipes" / f"{recipe}.yaml").read_text()
        assert text.startswith("# Paper ") and ("Table" in text.splitlines()[0] or "Sec." in text.splitlines()[0])
        runs.add(load_yaml(REPO / "config" / "recipes" / f"{recipe}.yaml")["run"])
    assert len(runs) == len(RECIPES) and "avrt-3b" not in runs


@pytest.mark.integration
def test_avrt_7b_trains_and_evaluates_the_7b_student(paper_workflow):
    out, config = dry_run(paper_workflow, "avrt-7b")
    assert config["models"]["student"]["checkpoint"] == "Qwen/Qwen2.5-Omni-7B"
    assert config["sft"] == validate_config(load_yaml(REPO / "config" / "config.yaml"))["sft"]  # one recipe for all sizes
    assert jobs(out)["sft"] == jobs(out)["grpo"] == 1 and set(config["evaluation"]["models"]) == {"base", "sft", "grpo"}
    assert all("results/avrt-7b/" in s for s in shells(out, "evaluate"))
    # the 3B run's teachers and merger serve the 7B student; its trace statistics count 7B tokens
    assert all("--config results/avrt-3b/config.yaml" in s for s in shells(out, "teacher") + shells(out, "merge_traces"))
    assert "--traces results/avrt-3b/merged/" in shells(out, "filter_traces")[0]
    assert "--out-train results/avrt-7b/avrt20k/train.jsonl" in shells(out, "filter_traces")[0]


@pytest.mark.integration
def test_rl_only_runs_grpo_from_the_base_model_without_sft_or_traces(paper_workflow):
    out, config = dry_run(paper_workflow, "rl-only")
    counts = jobs(out)
    assert counts["grpo"] == 1 and counts["prepare_media"] == 64
    assert all("--index results/avrt-3b/media/" in s for s in shells(out, "prepare_media"))  # avrt-3b's media
    for rule in ("sft", "teacher", "merge_traces", "filter_traces", "select_checkpoint"):
        assert counts[rule] == 0, rule
    (grpo,) = shells(out, "grpo")
    assert "--checkpoint" not in grpo and "checkpoints/sft" not in out  # loads the student's spec
    assert config["grpo"]["init"] == "base" and config["models"]["student"]["revision"]
    assert set(config["evaluation"]["models"]) == {"grpo"}  # no tag of the sft stage
    assert "--mask audio_only" in " ".join(shells(out, "evaluate"))  # Table 4's A / V / AV rows


@pytest.mark.integration
def test_no_length_reward_drops_only_the_length_reward(paper_workflow):
    out, config = dry_run(paper_workflow, "no-length-reward")
    assert config["grpo"]["rewards"] == ["format", "accuracy"]
    (grpo,) = shells(out, "grpo")
    # every stage up to SFT is avrt-3b's: its checkpoint is GRPO's start, its job the 3B run's own
    assert "--config results/no-length-reward/config.yaml --checkpoint results/avrt-3b/checkpoints/sft/final" in grpo
    (sft,) = shells(out, "sft")
    assert "--config results/avrt-3b/config.yaml" in sft and "--out results/avrt-3b/checkpoints/sft/final" in sft
    assert "results/no-length-reward/traces" not in out and "results/no-length-reward/avrt20k" not in out


@pytest.mark.integration
def test_merger_gemma3_merges_with_gemma(paper_workflow):
    out, config = dry_run(paper_workflow, "merger-gemma3")
    merger = config["models"][config["merger"]["model"]]
    assert (merger["family"], merger["checkpoint"], merger["backend"]) == ("text_llm", "google/gemma-3-12b-it", "vllm")
    merges = shells(out, "merge_traces")
    assert len(merges) == 64 and all("--config results/merger-gemma3/config.yaml" in s for s in merges)
    assert all("results/avrt-3b/traces/" in s for s in merges)  # the avrt-3b run's teacher traces


@pytest.mark.integration
def test_unfiltered_keeps_every_merged_trace(paper_workflow):
    out, config = dry_run(paper_workflow, "unfiltered")
    assert config["filter"] | {"val_fraction": 0, "seed": 0} == {
        "source": "merged", "mode": "unfiltered", "match_count": False, "drop_answer_mismatch": False,
        "val_fraction": 0, "seed": 0}
    base = validate_config(load_yaml(REPO / "config" / "config.yaml"))
    for key in ("per_device_batch_size", "gradient_accumulation_steps", "num_gpus"):  # matched batch sizes
        assert config["sft"][key] == base["sft"][key] and config["grpo"][key] == base["grpo"][key]
    assert jobs(out)["filter_traces"] == 1 and jobs(out)["sft"] == 1


@pytest.mark.integration
@pytest.mark.parametrize("recipe, teacher", [("audio-chains", "audio"), ("visual-chains", "visual")])
def test_single_teacher_chains_build_the_sft_set_from_the_teacher_traces_without_merging(paper_workflow, recipe, teacher):
    out, config = dry_run(paper_workflow, recipe)
    counts = jobs(out)
    assert config["filter"]["source"] == teacher and config["filter"]["mode"] == "both_correct"
    assert counts["merge_traces"] == 0 and f"results/{recipe}/merged/" not in out
    assert counts["teacher"] == 2 * 64 and counts["filter_traces"] == counts["sft"] == counts["grpo"] == 1
    (export,) = shells(out, "filter_traces")
    # the teachers' own rows: the source teacher's traces, and the other's answers for both_correct
    assert Counter(re.findall(r"results/avrt-3b/traces/(\w+)/\d+\.jsonl", export)) == {"visual": 64, "audio": 64}
    assert f"--config results/{recipe}/config.yaml" in export
    assert f"--train results/{recipe}/avrt20k/train.jsonl" in shells(out, "sft")[0]
    assert set(config["evaluation"]["models"]) == {"grpo"}


@pytest.mark.integration
@pytest.mark.parametrize("recipe, target, tags", [("answer-only", "answer_only", {"sft", "grpo"}),
                                                  ("format-only", "format_only", {"grpo"})])
def test_sft_controls_train_on_avrt20k_with_another_target(paper_workflow, recipe, target, tags):
    out, config = dry_run(paper_workflow, recipe)
    base = validate_config(load_yaml(REPO / "config" / "config.yaml"))
    assert config["sft"]["data"] == {**base["sft"]["data"], "target": target} and config["filter"] == base["filter"]
    counts = jobs(out)
    assert counts["merge_traces"] == 64 and counts["filter_traces"] == counts["sft"] == counts["grpo"] == 1
    # the AVRT-20K of the avrt-3b run, trained with another target by this run's own SFT job
    assert f"--config results/{recipe}/config.yaml --train results/avrt-3b/avrt20k/train.jsonl" in shells(out, "sft")[0]
    assert set(config["evaluation"]["models"]) == tags


def test_trace_judge_names_its_table_and_keeps_the_main_run():
    """Table 0.A.1 judges the main run's own traces, so its recipe keeps that run's name."""
    text = (REPO / "config" / "recipes" / "trace-judge.yaml").read_text()
    assert text.startswith("# Paper Table 0.A.1")
    recipe = load_yaml(REPO / "config" / "recipes" / "trace-judge.yaml")
    assert recipe["run"] == load_yaml(REPO / "config" / "config.yaml")["run"] == "avrt-3b"
    assert set(recipe) == {"run", "models", "judge"} and set(recipe["models"]) == {"judge"}


@pytest.mark.integration
def test_trace_judge_adds_only_the_judge_job_to_the_main_run(workflow_dir):
    """The recipe's DAG is the main run's plus one judge job; every other job has the same command
    (that none re-runs on finished files, whose params do not change: tests/test_rule_params.py)."""
    from avrt.demo.dry_run import write_dry_run_stubs

    write_dry_run_stubs(workflow_dir / "stubs", load_yaml(workflow_dir / "config" / "config.yaml"))
    base = run_snakemake(workflow_dir, "-n", "-p", "--configfile", "config/config.yaml", "stubs/overlay.yaml").stdout
    base_config = load_yaml(workflow_dir / "results" / "avrt-3b" / "config.yaml")
    out, config = dry_run(workflow_dir, "trace-judge")
    assert jobs(out) == jobs(base) + Counter(judge_traces=1)
    for rule in set(jobs(base)) - {"run_manifest", "stage_costs", "all"}:  # those two gather the run's outputs
        assert sorted(shells(out, rule)) == sorted(shells(base, rule)), rule
    # the run config gains the judge and its model, nothing else
    assert config == {**base_config, "judge": config["judge"],
                      "models": {**base_config["models"], "judge": config["models"]["judge"]}}
    assert base_config["judge"] is None and config["judge"] == {"model": "judge", "split": "val", "samples": 600, "seed": 0}
    judge = config["models"]["judge"]
    assert (judge["family"], judge["checkpoint"], judge["revision"]) == (
        "qwen2_5_omni", "Qwen/Qwen2.5-Omni-7B", load_yaml(REPO / "config/recipes/avrt-7b.yaml")["models"]["student"]["revision"])
    (command,) = shells(out, "judge_traces")
    assert command.startswith("avrt judge-traces --config results/avrt-3b/config.yaml "
                              "--traces-file results/avrt-3b/avrt20k/val.jsonl --merged results/avrt-3b/merged/000.jsonl")
    assert len(re.findall(r"results/avrt-3b/merged/\d+\.jsonl", command)) == 64
    assert Counter(re.findall(r"results/avrt-3b/traces/(\w+)/\d+\.jsonl", command)) == {"audio": 64, "visual": 64}
    assert "--out-verdicts results/avrt-3b/judge/verdicts.jsonl" in command
    assert "--out-tables results/avrt-3b/tables" in command


def test_filter_source_names_a_teacher_and_needs_no_merger():
    base = load_yaml(REPO / "config" / "config.yaml")
    with pytest.raises(ConfigError, match=r"config key 'filter.source': no teacher named 'speech' in 'teachers'"):
        validate_config(deep_merge(base, {"filter": {"source": "speech"}}))
    with pytest.raises(ConfigError, match=r"config key 'filter.mode': merger_correct needs the merger's traces"):
        validate_config(deep_merge(base, {"filter": {"source": "audio", "mode": "merger_correct"}}))
    without_merger = deep_merge(base, {"filter": {"source": "audio"}, "merger": {"model": "gone"}})
    assert validate_config(without_merger)["filter"]["source"] == "audio"  # the merger's model is not needed


# ---- grpo.init and removing a tag --------------------------------------------------------------
def test_a_null_tag_removes_it_and_a_base_start_keeps_the_spec_revision(monkeypatch, tmp_path):
    from avrt.training import grpo

    config = deep_merge(load_yaml(REPO / "config" / "config.yaml"), load_yaml(REPO / "config/recipes/rl-only.yaml"))
    validated = validate_config(config)
    assert set(validated["evaluation"]["models"]) == {"grpo"}
    run_config = tmp_path / "config.yaml"
    run_config.write_text(json.dumps(validated))
    started = []
    monkeypatch.setattr(grpo, "train_grpo", lambda grpo_cfg, student, spec, *a, **k: started.append(spec))
    args = types.SimpleNamespace(config=[str(run_config)], checkpoint=None, shards=["s"], media=["m"], labels=[],
                                 out=str(tmp_path / "out"), checkpoints=None)
    grpo.run(args)  # grpo.init base: the student's spec, pinned
    grpo.run(types.SimpleNamespace(**{**vars(args), "checkpoint": "ckpt/sft/final"}))  # a trained stage: no revision
    revision = validated["models"]["student"]["revision"]
    assert [(s.checkpoint, s.revision) for s in started] == [("Qwen/Qwen2.5-Omni-3B", revision), ("ckpt/sft/final", None)]
    # the two-stage recipe cannot start without the SFT checkpoint
    run_config.write_text(json.dumps(validate_config(load_yaml(REPO / "config/config.yaml"))))
    with pytest.raises(SystemExit, match="grpo.init"):
        grpo.run(args)


def test_grpo_init_takes_only_sft_or_base():
    with pytest.raises(ConfigError, match="grpo.init"):
        validate_config({"run": "x", "grpo": {"init": "scratch"}})


@pytest.mark.integration
def test_a_sft_tag_without_an_sft_set_stops_the_workflow_naming_the_key(paper_workflow):
    workflow_dir = paper_workflow
    (workflow_dir / "config/recipes/bad.yaml").write_text(
        (workflow_dir / "config/recipes/rl-only.yaml").read_text().replace("    sft: null", "    sft: {model: student, stage: sft}"))
    from avrt.demo.dry_run import write_dry_run_stubs

    overlay = write_dry_run_stubs(workflow_dir / "stubs", load_yaml(workflow_dir / "config/config.yaml"))
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/config.yaml", "config/recipes/bad.yaml",
                         str(overlay), check=False)
    assert proc.returncode != 0
    assert "config key 'evaluation.models.sft.stage' is sft, but this run has no SFT set" in proc.stdout + proc.stderr
