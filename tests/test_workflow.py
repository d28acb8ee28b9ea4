"""The Snakemake workflow itself: lint, the full-scale DAG, and a real run of the demo."""

from __future__ import annotations

import csv
import json
import re
import subprocess

import pytest

from conftest import BIN, run_snakemake

pytestmark = pytest.mark.integration


def job_counts(dry_run_stdout: str) -> dict[str, int]:
    table = dry_run_stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean(workflow_dir):
    for configfile in ("config/config.yaml", "config/demo.yaml"):  # the paper (the default) and the demo
        proc = run_snakemake(workflow_dir, "--lint", "--configfile", configfile, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_finds_nothing_to_reformat(repo_root):
    """The rules are formatted as `snakefmt` writes them (settings: pyproject.toml [tool.snakefmt])."""
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"run `snakefmt Snakefile workflow`:\n{proc.stdout}{proc.stderr}"


def test_full_scale_dag_has_one_job_per_shard(workflow_dir, tmp_path):
    """57,335 QA in 64 shards: the DAG is O(shards), built without reading any clip."""
    from avrt.core.config import load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs

    overlay = write_dry_run_stubs(tmp_path, load_yaml(workflow_dir / "config/config.yaml"))
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/config.yaml", str(overlay))
    counts = job_counts(proc.stdout)
    assert counts["prepare_media"] == 64 and counts["teacher"] == 2 * 64 and counts["merge_traces"] == 64
    assert counts["ingest_avqa"] == counts["shard_manifest"] == counts["filter_traces"] == 1
    assert counts["sft"] == counts["grpo"] == 1
    # base, sft and grpo rows, each on 8 benchmarks; OmniBench also masked twice
    assert counts["eval_records"] == 8 and counts["evaluate"] == 3 * (8 + 2)
    # Table 8: each of the two teachers answers OmniBench once
    assert counts["evaluate_teacher"] == counts["score_teacher"] == 2
    assert "synthesize_avqa" not in counts and "build_tiny_models" not in counts
    assert counts["merge_adapter"] == 1  # the audio teacher's think adapter, merged for vLLM once
    assert counts["total"] <= 4 * 64 + 100


def test_sightsound_recipe_trains_on_its_own_traces_and_labels_at_full_scale(workflow_dir, tmp_path):
    from avrt.core.config import deep_merge, load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs

    files = ["config/config.yaml", "config/recipes/sightsound-r1.yaml"]
    layered = deep_merge(*(load_yaml(workflow_dir / f) for f in files))
    overlay = write_dry_run_stubs(tmp_path, layered)
    out = run_snakemake(workflow_dir, "-n", "--configfile", *files, str(overlay)).stdout
    counts = job_counts(out)
    assert counts["teacher"] == counts["sightsound_consensus"] == counts["agfv"] == 64
    assert "merge_traces" not in counts and counts["sft"] == counts["grpo"] == 1
    assert counts["eval_records"] == 3 and counts["evaluate"] == 3 * 3  # base, sft, grpo x 3 benchmarks
    assert "evaluate_teacher" not in counts  # no difficulty subsets (Table 8) in this recipe
    sft = re.search(r"rule sft:\n\s+input: (.*?)\n", out).group(1)
    assert "results/sightsound-r1/sightsound/sft/train.jsonl" in sft and "avrt20k" not in sft
    grpo = re.search(r"rule grpo:\n\s+input: (.*?)\n", out).group(1)
    assert grpo.count("results/sightsound-r1/sightsound/consensus/") == 64  # the teacher's labels
    # the paper's 8 GPUs for SFT and GRPO; the 32B teacher over the 2 GPUs of its tensor parallelism
    gpus = {rule: re.search(rf"rule {rule}:.*?resources: .*?\bgpu=(\d+)", out, re.S).group(1)
            for rule in ("sft", "grpo", "teacher", "agfv")}
    assert gpus == {"sft": "8", "grpo": "8", "teacher": "2", "agfv": "1"}


def test_demo_generates_through_vllm_as_a_cluster_does(demo_run):
    """The audio teacher, merger and evaluation (the base, SFT and GRPO students; the teachers' Table 8
    runs) each start a vLLM engine (its CPU build); the audio teacher's loads the checkpoint rule
    merge_adapter merged the think adapter into. The visual teacher's stand-in runs on transformers
    (config/demo.yaml says why)."""
    logs = demo_run / "results/demo/logs"
    for rule in ("teacher", "merge_traces", "evaluate", "evaluate_teacher"):
        files = sorted((logs / rule).rglob("*.log"))
        assert files, rule
        engines = {str(f.relative_to(logs)): "Initializing a V1 LLM engine" in f.read_text() for f in files}
        on_hf = {name for name in engines if name.startswith(("teacher/visual/", "evaluate_teacher/visual/"))}
        assert {name for name, engine in engines.items() if not engine} == on_hf, rule
    assert {f.relative_to(logs / "evaluate").parts[0] for f in (logs / "evaluate").rglob("*.log")} == {
        "base", "sft", "grpo"}
    [merged] = (demo_run / "results/demo/models/merged").iterdir()
    for log in (logs / "teacher/audio").glob("*.log"):
        assert f"model='results/demo/models/merged/{merged.name}'" in log.read_text()


def test_demo_runs_end_to_end_and_reruns_nothing(demo_run, tmp_path):
    workflow_dir = demo_run
    run = workflow_dir / "results/demo"
    summary = json.loads((run / "data/data_summary.json").read_text())
    assert summary["media"]["failed"] == 0 and summary["media"]["audio_padded_clips"] == 1
    assert summary["dropped_qa"] == {"clip_check/clip_corrupt": 3, "clip_check/clip_missing": 3,
                                     "clip_check/no_audio_track": 3}
    assert summary["usable_qa"] == {"train": 39, "val": 24}
    # every usable train QA has one row per teacher and one merged row
    for teacher in ("visual", "audio"):
        rows = [json.loads(x) for p in sorted((run / "traces" / teacher).glob("*.jsonl")) for x in p.read_text().splitlines()]
        assert len(rows) == 39 and {r["teacher"] for r in rows} == {teacher}
    merged = [x for p in sorted((run / "merged").glob("*.jsonl")) for x in p.read_text().splitlines()]
    assert len(merged) == 39
    counts = dict(line.split("\t") for line in (run / "avrt20k/filter_counts.tsv").read_text().splitlines()[1:])
    assert counts["merged"] == "39" and counts["mode"] == "both_correct"
    # the warmed-up teachers are right more often than a guess would be, and AVRT-20K holds at least
    # a tenth of the train questions: those both teachers got right, merged in the strict format
    for teacher in ("visual", "audio"):
        assert int(counts[f"teacher/{teacher}/correct"]) > float(counts[f"teacher/{teacher}/correct_by_chance"])
    kept = int(counts["train"]) + int(counts["val"])
    assert kept == int(counts["kept"]) >= 0.1 * 39
    stats = json.loads((run / "avrt20k/stats.json").read_text())["splits"]["train"]  # and its plots
    assert stats["samples"] == int(counts["train"]) and stats["format_compliance_percent"] == 100.0
    assert stats["think_tokens"]["mean"] > 0 and sum(q["count"] for q in stats["question_type"].values()) == stats["samples"]
    # SFT trains on that AVRT-20K; then GRPO from its checkpoint; each leaves a loadable final checkpoint
    sft = json.loads((run / "checkpoints/sft/final/sft_summary.json").read_text())
    grpo = json.loads((run / "checkpoints/grpo/final/grpo_summary.json").read_text())
    assert sft["source"] == "avrt20k" and sft["examples"] == {"train": int(counts["train"]), "val": int(counts["val"])}
    assert sft["global_steps"] > 0 and sft["loss_curve"][-1]["loss"] < sft["loss_curve"][0]["loss"]
    assert grpo["global_steps"] == 12 and grpo["prompts"] == 39  # every train question of the shards
    # the demo's SFT is long enough for the tiny student to answer AVQA in the strict format (on vLLM:
    # with vLLM's own audio-in-video positions, 5 of 16 were; avrt.models.vllm_omni)
    from avrt.core.answers import is_strict_format

    answers = [json.loads(x)["output"] for x in (run / "eval/sft/avqa_val/both.predictions.jsonl").read_text().splitlines()]
    assert sum(map(is_strict_format, answers)) >= 0.8 * len(answers) == 0.8 * 24
    table3 = (run / "tables/table3.md").read_text()
    assert table3.startswith("| Model | AVQA | DailyOmni | OmniBench |")
    assert all(f"| {tag} |" in table3 for tag in ("base", "sft", "grpo"))
    assert "| base | omnibench |" in (run / "tables/table4.md").read_text()
    assert (run / "tables/table9.md").read_text().startswith("| Model | Acc. (%) ↑ | IFE (%) ↓ | Logic Err (%) ↓ |")
    table8 = (run / "tables/table8.md").read_text()  # OmniBench by the two teachers' correctness
    assert table8.startswith("| Model | Easy (n=") and all(f"| {tag} |" in table8 for tag in ("base", "sft", "grpo"))

    again = run_snakemake(workflow_dir, "--cores", "2", "-n", "--configfile", "config/demo.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr
    # --forcerun a shard-level rule: it and what depends on it, nothing upstream
    forced = job_counts(run_snakemake(workflow_dir, "--cores", "2", "-n", "--configfile", "config/demo.yaml",
                                      "--forcerun", "prepare_media").stdout)
    assert forced["prepare_media"] == 2 and forced["teacher"] == 4 and forced["merge_traces"] == 2
    assert not {"ingest_avqa", "synthesize_avqa", "build_tiny_models"} & set(forced)
    # training reads the media, so the trained students are evaluated again; the base model is not
    assert forced["sft"] == forced["grpo"] == 1 and forced["evaluate"] == 2 * 11
    # a changed config key re-runs the stages that read it and what follows, nothing upstream
    overlay = tmp_path / "merger_reasoning.yaml"
    overlay.write_text("merger: {teacher_text: reasoning}\n")
    changed = job_counts(run_snakemake(workflow_dir, "--cores", "2", "-n", "--configfile", "config/demo.yaml",
                                       str(overlay)).stdout)
    assert changed["merge_traces"] == 2 and changed["filter_traces"] == changed["export_avrt20k"] == 1
    assert changed["sft"] == 1  # it trains on AVRT-20K, made from the merged traces
    assert not {"prepare_media", "teacher", "ingest_avqa", "build_tiny_models"} & set(changed)
    # --until stops after a stage
    until = job_counts(run_snakemake(workflow_dir, "--cores", "2", "-n", "--configfile", "config/demo.yaml",
                                     "--forcerun", "shard_manifest", "--until", "prepare_media").stdout)
    assert set(until) == {"shard_manifest", "prepare_media", "total"}


def test_the_demo_reports_what_each_stage_cost(demo_run, tmp_path):
    """Every heavy rule's jobs are benchmarked; the cost table sums them per stage; the report shows it."""
    run = demo_run / "results/demo"
    jobs = json.loads((run / "costs/jobs.json").read_text())
    assert {job["rule"] for job in jobs} == {
        "synthesize_avqa", "ingest_avqa", "prepare_media", "build_tiny_models", "teacher", "merge_traces",
        "filter_traces", "export_avrt20k", "trace_stats", "sft", "grpo", "synthesize_benchmarks", "evaluate",
        "evaluate_teacher", "merge_adapter"}
    assert len(jobs) == len(list((run / "logs/benchmarks").rglob("*.jsonl")))  # one record per job
    assert all(job["wall_s"] > 0 and job["slurm_job_id"] is None for job in jobs)  # a local run: no Slurm
    gpus = {job["rule"]: job["gpus"] for job in jobs}
    # GPUs from the config: the tiny teachers' tensor_parallel_size, the demo's sft/grpo num_gpus
    assert (gpus["teacher"], gpus["merge_traces"], gpus["sft"], gpus["prepare_media"]) == (1, 1, 1, 0)
    with open(run / "costs/stage_costs.csv") as f:
        rows = {row["stage"]: row for row in csv.DictReader(f)}
    assert rows.keys() == gpus.keys()
    teacher_wall = sum(job["wall_s"] for job in jobs if job["rule"] == "teacher") / 3600
    assert float(rows["teacher"]["gpu_h"]) == pytest.approx(teacher_wall, rel=1e-3)
    assert rows["sft"]["runtime_limit_h"] == "24"  # the workflow profile's 1440 minutes

    report = tmp_path / "report.html"
    run_snakemake(demo_run, "--cores", "1", "--configfile", "config/demo.yaml", "--report", str(report))
    html = report.read_text(errors="replace")
    assert "stage_costs.png" in html and "Cost" in html


def test_an_unknown_benchmark_in_evaluation_only_stops_the_run_naming_the_key(workflow_dir):
    overlay = workflow_dir / "only.yaml"
    overlay.write_text("evaluation: {only: [omnibench, mmau]}\n")
    proc = run_snakemake(workflow_dir, "-n", "--configfile", "config/demo.yaml", str(overlay), check=False)
    assert proc.returncode != 0
    assert "config key 'evaluation.only': ['mmau'] not among the benchmarks" in proc.stderr + proc.stdout
