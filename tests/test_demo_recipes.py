"""Paper recipes on the demo (`make demo-recipe RECIPE=...`): each runs end to end beside the demo,
makes only the stages it changes, and puts its numbers beside the demo's with `avrt compare`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from avrt.evaluation.tables import MISSING
from conftest import run_snakemake
from test_workflow import job_counts

pytestmark = pytest.mark.integration

# Each recipe's jobs: the rest are the demo's. To keep CI short the variants evaluate AVQA val and
# OmniBench (with its masks) only.
RECIPES = {
    "no-length-reward": {"grpo"},  # data, traces, merged, AVRT-20K and SFT are the demo's
    "rl-only": {"grpo"},  # data is the demo's; no traces, no SFT
    "audio-chains": {"filter_traces", "export_avrt20k", "trace_stats", "sft", "grpo"},  # the teachers' traces are the demo's
}
UPSTREAM_RULES = {"build_tiny_models", "synthesize_avqa", "ingest_avqa", "shard_manifest", "prepare_media",
                  "data_summary", "teacher", "merge_traces"}


@pytest.fixture(scope="session")
def demo_recipes(demo_run, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of the demo's workflow folder (results and Snakemake's records: the demo's own stays as it
    ran) after the three recipes ran in it as the Makefile's demo-recipe does: (the copy, each recipe's
    Snakemake log)."""
    workdir = tmp_path_factory.mktemp("demo_recipes")
    shutil.copytree(demo_run, workdir, symlinks=True, dirs_exist_ok=True)  # keeps the files' times
    overlay = tmp_path_factory.mktemp("recipes") / "two_benchmarks.yaml"
    overlay.write_text("evaluation: {only: [avqa_val, omnibench]}\n")
    logs = {}
    for name in RECIPES:
        proc = run_snakemake(workdir, "--cores", "2", "--profile", "profiles/local", "--configfile", "config/demo.yaml",
                             f"config/recipes/{name}.yaml", str(overlay), "--config", f"run=demo-{name}",
                             "upstream_run=demo", timeout=1800)
        logs[name] = proc.stdout + proc.stderr
    return workdir, logs


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_on_the_demo_makes_only_the_stages_it_changes(demo_recipes, name):
    workdir, logs = demo_recipes
    ran = set(job_counts(logs[name]))
    assert RECIPES[name] <= ran and not UPSTREAM_RULES & ran, sorted(ran)
    run = workdir / "results" / f"demo-{name}"
    grpo = json.loads((run / "checkpoints/grpo/final/grpo_summary.json").read_text())
    assert grpo["global_steps"] > 0
    assert (run / "eval/grpo/omnibench/audio_only.result.json").is_file()
    assert not (run / "media").exists() and not (run / "traces").exists()  # read from results/demo


def test_recipes_change_nothing_the_demo_made(demo_recipes):
    workdir, _ = demo_recipes
    again = run_snakemake(workdir, "--cores", "2", "-n", "--configfile", "config/demo.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_no_length_reward_recipe_trains_grpo_without_the_length_reward_from_the_demo_s_sft(demo_recipes):
    workdir, _ = demo_recipes
    run = workdir / "results/demo-no-length-reward"
    summary = json.loads((run / "checkpoints/grpo/final/grpo_summary.json").read_text())["run"]
    assert summary["rewards"] == ["accuracy", "format"]
    assert summary["student"]["checkpoint"] == "results/demo/checkpoints/sft/final"
    demo = json.loads((workdir / "results/demo/checkpoints/grpo/final/grpo_summary.json").read_text())["run"]
    assert demo["rewards"] == ["accuracy", "format", "length"]


def test_the_audio_chains_recipe_filters_the_audio_teacher_s_own_traces(demo_recipes):
    workdir, _ = demo_recipes
    counts = dict(line.split("\t") for line in
                  (workdir / "results/demo-audio-chains/avrt20k/filter_counts.tsv").read_text().splitlines()[1:])
    assert counts["source"] == "audio" and int(counts["traces"]) == 39  # every train question of the demo
    assert "merged" not in counts


def test_each_recipe_writes_its_table_beside_the_demo_s_rows_from_the_real_result_files(demo_recipes):
    """compare_runs (config `compare`) on real result files: the demo's base and GRPO rows and the
    recipe's; numbers equal the result files'; a run that does not exist shows as missing."""
    workdir, _ = demo_recipes
    table = workdir / "results/demo-no-length-reward/compare/table7"
    rows = list(csv.DictReader(table.with_suffix(".csv").open()))
    assert [r["run"] for r in rows] == ["demo (base)", "demo-no-length-reward", "demo"]

    def accuracy(run: str, tag: str) -> str:
        data = json.loads((workdir / "results" / run / "eval" / tag / "omnibench/both.result.json").read_text())
        return f"{100 * data['metrics']['accuracy']:.1f}"

    assert [r["omnibench"] for r in rows] == [accuracy("demo", "base"), accuracy("demo-no-length-reward", "grpo"),
                                              accuracy("demo", "grpo")]
    assert rows[0]["omnibench_delta"] == "" and rows[1]["omnibench_delta"] == (
        f"{float(rows[1]['omnibench']) - float(rows[0]['omnibench']):+.1f}")
    dailyomni = [r["dailyomni"] for r in rows]  # the recipe's run evaluated no DailyOmni: missing, not 0
    assert dailyomni[1] == "" and dailyomni[0] and dailyomni[2]
    # Table 5's rows name runs of other recipes: rl-only ran as demo-rl-only, so results/rl-only is missing
    table5 = (workdir / "results/demo-audio-chains/compare/table5.md").read_text()
    assert f"| rl-only | {MISSING} |" in table5 and "no results of tag grpo in results/rl-only" in table5
    assert all((table.with_suffix(ext)).stat().st_size for ext in (".md", ".tex", ".png"))
