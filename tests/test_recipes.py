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
from conftest import REPO, run_snakemake

RECIPES = ("avrt-7b", "rl-only", "no-length-reward", "merger-gemma3", "unfiltered", "audio-chains", "visual-chains",
           "answer-only", "format-only")


def dry_run(workflow_dir: Path, recipe: str) -> tuple[str, dict]:
    """`snakemake -n -p` of config/config.yaml + the recipe on stub AVQA and benchmark files of the
    official size: (its output, the run config the jobs read)."""
    from avrt.demo.dry_run import write_dry_run_stubs

    files = ["config/config.yaml", f"config/recipes/{recipe}.yaml"]
    layered: dict = {}
    for name in files:
        layered = deep_merge(layered, load_yaml(workflow_dir / name))
    overlay = write_dry_run_stubs(workflow_dir / "stubs", layered)
    out = run_snakemake(workflow_dir, "-n", "-p", "--configfile", *files, str(overlay)).stdout
    run = layered["run"]
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
def test_avrt_7b_trains_and_evaluates_the_7b_student(workflow_dir):
    out, config = dry_run(workflow_dir, "avrt-7b")
    assert config["models"]["student"]["checkpoint"] == "Qwen/Qwen2.5-Omni-7B"
    assert config["sft"] == validate_config(load_yaml(REPO / "config" / "config.yaml"))["sft"]  # one recipe for all sizes
    assert jobs(out)["sft"] == jobs(out)["grpo"] == 1 and set(config["evaluation"]["models"]) == {"base", "sft", "grpo"}
    assert all("results/avrt-7b/" in s for s in shells(out, "evaluate"))


@pytest.mark.integration
def test_rl_only_runs_grpo_from_the_base_model_without_sft_or_traces(workflow_dir):
    out, config = dry_run(workflow_dir, "rl-only")
    counts = jobs(out)
    assert counts["grpo"] == 1 and counts["prepare_media"] == 64
    for rule in ("sft", "teacher", "merge_traces", "filter_traces", "select_checkpoint"):
        assert counts[rule] == 0, rule
    (grpo,) = shells(out, "grpo")
    assert "--checkpoint" not in grpo and "checkpoints/sft" not in out  # loads the student's spec
    assert config["grpo"]["init"] == "base" and config["models"]["student"]["revision"]
    assert set(config["evaluation"]["models"]) == {"grpo"}  # no tag of the sft stage
    assert "--mask audio_only" in " ".join(shells(out, "evaluate"))  # Table 4's A / V / AV rows


@pytest.mark.integration
def test_no_length_reward_drops_only_the_length_reward(workflow_dir):
    out, config = dry_run(workflow_dir, "no-length-reward")
    assert config["grpo"]["rewards"] == ["format", "accuracy"]
    (grpo,) = shells(out, "grpo")
    assert "--config results/no-length-reward/config.yaml --checkpoint results/no-length-reward/checkpoints/sft/final" in grpo
    assert jobs(out)["sft"] == 1


@pytest.mark.integration
def test_merger_gemma3_merges_with_gemma(workflow_dir):
    out, config = dry_run(workflow_dir, "merger-gemma3")
    merger = config["models"][config["merger"]["model"]]
    assert (merger["family"], merger["checkpoint"], merger["backend"]) == ("text_llm", "google/gemma-3-12b-it", "vllm")
    merges = shells(out, "merge_traces")
    assert len(merges) == 64 and all("--config results/merger-gemma3/config.yaml" in s for s in merges)


@pytest.mark.integration
def test_unfiltered_keeps_every_merged_trace(workflow_dir):
    out, config = dry_run(workflow_dir, "unfiltered")
    assert config["filter"] | {"val_fraction": 0, "seed": 0} == {
        "source": "merged", "mode": "unfiltered", "match_count": False, "drop_answer_mismatch": False,
        "val_fraction": 0, "seed": 0}
    base = validate_config(load_yaml(REPO / "config" / "config.yaml"))
    for key in ("per_device_batch_size", "gradient_accumulation_steps", "num_gpus"):  # matched batch sizes
        assert config["sft"][key] == base["sft"][key] and config["grpo"][key] == base["grpo"][key]
    assert jobs(out)["filter_traces"] == 1 and jobs(out)["sft"] == 1


@pytest.mark.integration
@pytest.mark.parametrize("recipe, teacher", [("audio-chains", "audio"), ("visual-chains", "visual")])
def test_single_teacher_chains_build_the_sft_set_from_the_teacher_traces_without_merging(workflow_dir, recipe, teacher):
    out, config = dry_run(workflow_dir, recipe)
    counts = jobs(out)
    assert config["filter"]["source"] == teacher and config["filter"]["mode"] == "both_correct"
    assert counts["merge_traces"] == 0 and f"results/{recipe}/merged/" not in out
    assert counts["teacher"] == 2 * 64 and counts["filter_traces"] == counts["sft"] == counts["grpo"] == 1
    (export,) = shells(out, "filter_traces")
    # the teachers' own rows: the source teacher's traces, and the other's answers for both_correct
    assert Counter(re.findall(rf"results/{recipe}/traces/(\w+)/\d+\.jsonl", export)) == {"visual": 64, "audio": 64}
    assert f"--config results/{recipe}/config.yaml" in export
    assert f"--train results/{recipe}/avrt20k/train.jsonl" in shells(out, "sft")[0]
    assert set(config["evaluation"]["models"]) == {"grpo"}


@pytest.mark.integration
@pytest.mark.parametrize("recipe, target, tags", [("answer-only", "answer_only", {"sft", "grpo"}),
                                                  ("format-only", "format_only", {"grpo"})])
def test_sft_controls_train_on_avrt20k_with_another_target(workflow_dir, recipe, target, tags):
    out, config = dry_run(workflow_dir, recipe)
    base = validate_config(load_yaml(REPO / "config" / "config.yaml"))
    assert config["sft"]["data"] == {**base["sft"]["data"], "target": target} and config["filter"] == base["filter"]
    counts = jobs(out)
    assert counts["merge_traces"] == 64 and counts["filter_traces"] == counts["sft"] == counts["grpo"] == 1
    assert f"--train results/{recipe}/avrt20k/train.jsonl" in shells(out, "sft")[0]
    assert set(config["evaluation"]["models"]) == tags


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
def test_a_sft_tag_without_an_sft_set_stops_the_workflow_naming_the_key(workflow_dir):
    (workflow_dir / "config/recipes/bad.yaml").write_text(
        (workflow_dir / "config/recipes/rl-only.yaml").read_text().replace("    sft: null", "    sft: {model: student, stage: sft}"))
    from avrt.demo.dry_run import write_dry_run_stubs

    overlay = write_dry_run_stubs(workflow_dir / "stubs", load_yaml(workflow_dir / "config/config.yaml"))
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/config.yaml", "config/recipes/bad.yaml",
                         str(overlay), check=False)
    assert proc.returncode != 0
    assert "config key 'evaluation.models.sft.stage' is sft, but this run has no SFT set" in proc.stdout + proc.stderr
