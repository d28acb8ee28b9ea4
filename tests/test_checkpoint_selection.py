"""Checkpoint selection by validation accuracy (`avrt select-checkpoint`, SightSound-R1 Sec. 4.1).

Real parts: tiny zoo students trained by SFT on a synthetic AVQA shard (a LoRA Qwen2-Audio as the
SightSound-R1 recipe trains it, and a fully fine-tuned Qwen2.5-Omni thinker as AVRT does), saving
a checkpoint every few steps; validation records written by `avrt eval-records` from the synthetic
release's val split (AVQA's official schema); answers from the tiny models through `run_inference`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sft_fixtures import build_student_zoo, cpu_sft_config, prepare_synthetic_shard

from avrt.checkpoint_selection import (
    Candidate,
    CheckpointScore,
    best_of,
    candidate_spec,
    candidates,
    write_in_final_form,
    run_record,
    select_checkpoint,
)
from avrt.cli import main
from avrt.core.config import stage_config, validate_config
from avrt.evaluation.records import read_records
from avrt.evaluation.scoring import read_predictions, score
from avrt.models.spec import model_spec
from avrt.training.sft import SFTInputs, train_sft


# ---- the argmax and its tie rule ----------------------------------------------------------------
def test_the_highest_accuracy_wins_and_a_tie_goes_to_the_later_step():
    scores = [CheckpointScore("checkpoint-2", 2, 0.50, 8), CheckpointScore("checkpoint-4", 4, 0.75, 8),
              CheckpointScore("checkpoint-6", 6, 0.625, 8), CheckpointScore("final", 8, 0.25, 8)]
    assert best_of(scores).name == "checkpoint-4"
    assert best_of(list(reversed(scores))).name == "checkpoint-4"  # order does not matter
    tied = [CheckpointScore("checkpoint-2", 2, 0.5, 8), CheckpointScore("checkpoint-4", 4, 0.5, 8),
            CheckpointScore("checkpoint-6", 6, 0.25, 8)]
    assert best_of(tied).name == "checkpoint-4"
    assert best_of([*tied, CheckpointScore("final", 8, 0.5, 8)]).name == "final"
    with pytest.raises(ValueError, match="no checkpoint"):
        best_of([])


def test_candidates_are_complete_checkpoints_and_final_at_its_own_step(tmp_path):
    for step in (2, 4, 6, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if step != 6:  # cut short while saving: no trainer_state.json
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    final = tmp_path / "final"
    final.mkdir()
    with pytest.raises(ValueError, match=r"final: no sft_summary.json"):
        candidates(tmp_path, final, "sft_summary.json")
    (final / "sft_summary.json").write_text(json.dumps({"global_steps": 8}))
    found = candidates(tmp_path, final, "sft_summary.json")
    assert [(c.name, c.step) for c in found] == [("checkpoint-2", 2), ("checkpoint-4", 4), ("final", 8)]
    assert found[-1].path == final


# ---- real runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A prepared synthetic shard, the tiny students, and val records made by `avrt eval-records`."""
    root = tmp_path_factory.mktemp("selection")
    shard = prepare_synthetic_shard(root, {"train": 4, "val": 2})
    zoo = build_student_zoo(root / "zoo")
    release = root / "release"
    records = root / "records" / "avqa_val.jsonl"
    assert main(["eval-records", "--benchmark", "avqa_val", "--annotations", str(release / "annotations" / "val_qa.json"),
                 "--media-dir", str(release / "videos"), "--output", str(records),
                 "--report", str(root / "records" / "avqa_val.load_report.json")]) == 0
    return shard, zoo, records


def run_config(zoo: Path, family: str, sft: dict) -> dict:
    """A run config as the workflow writes it: the tiny student, answering greedily in a few tokens."""
    return validate_config({
        "run": "selection",
        "models": {"student": {"family": family, "checkpoint": str(zoo / family), "backend": "hf", "dtype": "float32",
                               "batch_size": 8, "sampling": {"temperature": 0.0, "max_new_tokens": 12}}},
        "student": {"model": "student"},
        "media": {"num_frames": 4, "frame_max_side": 64, "audio_seconds": 4.0},
        "sft": sft,
        "evaluation": {"chunk_size": 8},
    })


def train(shard, config: dict, out: Path) -> Path:
    inputs = SFTInputs(train=[str(shard.manifest)], val=[], media_indexes=[str(shard.media_index)])
    train_sft(config["sft"], config["student"], model_spec(config, "student"), inputs, out / "final")
    return out / "final"


@pytest.fixture(scope="module")
def lora_run(world, tmp_path_factory):
    """SightSound-R1's SFT: LoRA on Qwen2-Audio, every checkpoint kept (4 steps, one saved every 2)."""
    shard, zoo, records = world
    sft = cpu_sft_config(data={"source": "template"}, max_steps=4, save_steps=2, save_total_limit=None,
                         learning_rate=1.0e-2, lora={"r": 8, "alpha": 16}, select_checkpoint="best_val")
    config = run_config(zoo, "qwen2_audio", sft)
    final = train(shard, config, tmp_path_factory.mktemp("lora") / "sft")
    return config, final, records


@pytest.fixture(scope="module")
def full_run(world, tmp_path_factory):
    """AVRT's SFT: full fine-tuning of the Qwen2.5-Omni thinker (2 steps, one saved every step)."""
    shard, zoo, records = world
    sft = cpu_sft_config(data={"source": "template"}, max_steps=2, save_steps=1, save_total_limit=None)
    config = run_config(zoo, "qwen2_5_omni", sft)
    final = train(shard, config, tmp_path_factory.mktemp("full") / "sft")
    return config, final, records


class NoModel:
    """A backend that must not be asked: every answer should come from the cache."""

    def generate(self, requests):
        raise AssertionError(f"the model was asked again for {len(requests)} request(s)")


def model_state(path: Path) -> dict[str, torch.Tensor]:
    weights = {}
    for file in sorted(path.glob("model*.safetensors")):
        weights.update(load_file(file))
    return weights


def test_every_checkpoint_is_scored_on_the_val_records_and_the_argmax_is_published(lora_run, tmp_path):
    config, final, records = lora_run
    run_dir = final.parent
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    (tmp_path / "config.yaml").write_text(json.dumps(config))
    best = run_dir / "best"
    assert main(["select-checkpoint", "--config", str(tmp_path / "config.yaml"), "--stage", "sft", "--records",
                 str(records), "--final", str(final), "--out", str(best), "--scores", str(tmp_path / "scores.json"),
                 "--table", str(tmp_path / "scores.md")]) == 0

    table = json.loads((tmp_path / "scores.json").read_text())
    rows = [CheckpointScore.from_dict(r) for r in table["checkpoints"]]
    n_records = len(read_records(records))
    # checkpoint-4 is the step final/ was published at: final/ answers for it
    assert [(r.name, r.step, r.n) for r in rows] == [("checkpoint-2", 2, n_records), ("final", 4, n_records)]
    assert table["benchmark"] == "avqa_val" and table["tie_rule"] == "later step"
    for row in rows:  # each accuracy is the scoring of that checkpoint's own cached answers
        predictions = read_predictions(run_dir / "selection" / f"{row.name}.predictions.jsonl")
        assert len(predictions) == n_records
        assert row.accuracy == score(read_records(records), predictions).metrics["accuracy"]
    assert CheckpointScore.from_dict(table["best"]) == best_of(rows)
    markdown = (tmp_path / "scores.md").read_text()
    assert "| 2 | checkpoint-2 |" in markdown and f"Published as `best/`: {best_of(rows).name}" in markdown

    # best/ is the winner, in final/'s form: merged weights, the processor, no adapters, no summary
    selection = json.loads((best / "selection.json").read_text())
    assert (selection["name"], selection["accuracy"]) == (best_of(rows).name, best_of(rows).accuracy)
    names = {p.name for p in best.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors", "sft_summary.json", "optimizer.pt"}
    winner = final if best_of(rows).name == "final" else run_dir / best_of(rows).name
    if winner == final:
        expected = model_state(final)
    else:  # a LoRA checkpoint: its adapters merged into the base, as evaluation loaded it
        expected = merged_state(config, winner, final, tmp_path / "reference")
    got = model_state(best)
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)

    # a rerun answers from the cache: no model is loaded or asked
    again = select_checkpoint(config, "sft", records, final, tmp_path / "best_again", backend=NoModel())
    assert again == table


@pytest.mark.integration
def test_on_vllm_a_lora_checkpoint_is_scored_from_its_merge_which_is_then_removed(lora_run, tmp_path):
    """vLLM applies no LoRA to Qwen2-Audio ("does not support LoRA yet"): a LoRA candidate is merged
    as final/ is, answers from that merge on a real vLLM engine, and the merge is removed."""
    config, final, records = lora_run
    run_dir = tmp_path / "sft"
    shutil.copytree(final.parent, run_dir, ignore=shutil.ignore_patterns("selection", "best"))
    student = {**config["models"]["student"], "backend": "vllm", "enforce_eager": True, "engine_in_process": True,
               "skip_mm_profiling": True, "gpu_memory_utilization": 0.1, "max_model_len": 4096, "max_num_seqs": 4}
    on_vllm = validate_config({**config, "models": {"student": student}})
    table = select_checkpoint(on_vllm, "sft", records, run_dir / "final", tmp_path / "best")
    n_records = len(read_records(records))
    assert [(r["name"], r["n"]) for r in table["checkpoints"]] == [("checkpoint-2", n_records), ("final", n_records)]
    assert not (run_dir / "selection" / "merged").exists()
    assert (tmp_path / "best" / "selection.json").is_file()


def merged_state(config: dict, checkpoint: Path, final: Path, out: Path) -> dict[str, torch.Tensor]:
    from avrt.models.adapters import get_adapter
    from avrt.models.hf_backend import load_hf_model

    candidate = Candidate(checkpoint.name, int(checkpoint.name.split("-")[1]), checkpoint)
    spec = candidate_spec(candidate, model_spec(config, "student"), final, run_record(final.parent))
    load_hf_model(spec, get_adapter(spec.family)).save_pretrained(out)
    return model_state(out)


def test_a_lora_checkpoint_is_published_merged_and_loads_through_the_model_layer(lora_run, tmp_path):
    from avrt.models.backends import load_model

    config, final, records = lora_run
    checkpoint = final.parent / "checkpoint-2"
    assert (checkpoint / "adapter_config.json").is_file()  # the trainer saved adapters only
    candidate = Candidate("checkpoint-2", 2, checkpoint)
    spec = candidate_spec(candidate, model_spec(config, "student"), final, run_record(final.parent))
    assert (spec.checkpoint, spec.adapter, spec.processor) == (str(config["models"]["student"]["checkpoint"]),
                                                              str(checkpoint), str(final))
    write_in_final_form(candidate, spec, final, tmp_path / "best", "sft_summary.json", {"name": "checkpoint-2"})
    published, base = model_state(tmp_path / "best"), model_state(Path(config["models"]["student"]["checkpoint"]))
    assert published.keys() == model_state(final).keys()
    assert any(not torch.equal(published[k], base[k]) for k in published)  # the adapters are in
    assert any(not torch.equal(published[k], model_state(final)[k]) for k in published)  # step 2, not step 4
    backend = load_model(model_spec(validate_config({**config, "models": {"student": {
        **config["models"]["student"], "checkpoint": str(tmp_path / "best")}}}), "student"))
    assert backend.processor is not None


def test_a_full_checkpoint_is_scored_with_finals_processor_and_published_as_it_was_saved(full_run, tmp_path):
    config, final, records = full_run
    run_dir = final.parent
    table = select_checkpoint(config, "sft", records, final, tmp_path / "best")
    assert [(r["name"], r["step"]) for r in table["checkpoints"]] == [("checkpoint-1", 1), ("final", 2)]
    assert all(r["n"] == len(read_records(records)) for r in table["checkpoints"])

    checkpoint = run_dir / "checkpoint-1"
    candidate = Candidate("checkpoint-1", 1, checkpoint)
    spec = candidate_spec(candidate, model_spec(config, "student"), final, run_record(run_dir))
    assert (spec.checkpoint, spec.processor, spec.adapter) == (str(checkpoint), str(final), None)
    write_in_final_form(candidate, spec, final, tmp_path / "from_checkpoint", "sft_summary.json", {"name": "checkpoint-1"})
    out = tmp_path / "from_checkpoint"
    # the trainer's thinker weights, published in the whole model's layout that vLLM loads; the
    # checkpoint they were linked from keeps its own
    saved, published = load_file(checkpoint / "model.safetensors"), load_file(out / "model.safetensors")
    assert published.keys() == {f"thinker.{k}" for k in saved} and not any(k.startswith("thinker.") for k in saved)
    assert all(torch.equal(published[f"thinker.{k}"], v) for k, v in saved.items())
    assert (out / "chat_template.jinja").read_bytes() == (final / "chat_template.jinja").read_bytes()
    assert {p.name for p in final.iterdir()} - {"sft_summary.json"} <= {p.name for p in out.iterdir()}
    assert not {"optimizer.pt", "trainer_state.json", "sft_summary.json"} & {p.name for p in out.iterdir()}


def test_without_a_run_record_a_checkpoint_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no run.json"):
        run_record(tmp_path)


def test_the_schema_defaults_to_the_final_checkpoint_as_avrt_reports():
    for stage in ("sft", "grpo"):
        block = stage_config(stage, {})
        assert (block["select_checkpoint"], block["select_benchmark"]) == ("final", "avqa_val")


# ---- the workflow ---------------------------------------------------------------------------------
def dry_run(workflow_dir: Path, stubs: Path, files: list[str], *extra: str, check: bool = True):
    """`snakemake -n` on config files layered as given, with stub AVQA and benchmark files of the official size."""
    from avrt.core.config import deep_merge, load_yaml
    from avrt.demo.dry_run import write_dry_run_stubs
    from conftest import run_snakemake

    layered: dict = {}
    for name in files:
        layered = deep_merge(layered, load_yaml(workflow_dir / name))
    overlay = write_dry_run_stubs(stubs, layered)
    return run_snakemake(workflow_dir, "-n", "--configfile", *files, str(overlay), *extra, check=check)


def inputs_of(out: str, rule: str, output_part: str) -> str:
    """The input line of the dry-run job of `rule` whose output names `output_part`."""
    for job in out.split("\nrule ")[1:]:
        if job.startswith(f"{rule}:") and output_part in job.split("output: ")[1].split("\n")[0]:
            return job.split("input: ")[1].split("\n")[0]
    raise AssertionError(f"no {rule} job writing {output_part!r} in the dry run")


@pytest.mark.integration
def test_the_sightsound_recipe_selects_both_stages_and_later_stages_load_best(workflow_dir, tmp_path):
    run = "results/sightsound-r1/checkpoints"
    out = dry_run(workflow_dir, tmp_path, ["config/config.yaml", "config/recipes/sightsound-r1.yaml"]).stdout
    assert out.count("rule select_checkpoint:") == 2
    for stage in ("sft", "grpo"):
        assert inputs_of(out, "select_checkpoint", f"{run}/{stage}/best") == (
            f"{run}/{stage}/final, results/sightsound-r1/eval/records/avqa_val.jsonl")
        assert f"{run}/{stage}/best" in inputs_of(out, "evaluate", f"eval/{stage}/mmau_test_mini/")
    assert inputs_of(out, "grpo", f"{run}/grpo/final").startswith(f"{run}/sft/best, ")


@pytest.mark.integration
def test_the_avrt_recipe_selects_nothing_and_later_stages_load_final(workflow_dir, tmp_path):
    run = "results/avrt-3b/checkpoints"
    out = dry_run(workflow_dir, tmp_path, ["config/config.yaml"]).stdout
    assert "select_checkpoint" not in out and "/best" not in out
    assert inputs_of(out, "grpo", f"{run}/grpo/final").startswith(f"{run}/sft/final, ")
    assert f"{run}/grpo/final" in inputs_of(out, "evaluate", "eval/grpo/omnibench/both")
    # one stage only: GRPO starts from SFT's final checkpoint, evaluation loads GRPO's best
    (workflow_dir / "grpo_best.yaml").write_text("grpo: {select_checkpoint: best_val, save_total_limit: null}\n")
    out = dry_run(workflow_dir, tmp_path, ["config/config.yaml", "grpo_best.yaml"]).stdout
    assert out.count("rule select_checkpoint:") == 1
    assert inputs_of(out, "grpo", f"{run}/grpo/final").startswith(f"{run}/sft/final, ")
    assert f"{run}/grpo/best" in inputs_of(out, "evaluate", "eval/grpo/omnibench/both")
    assert f"{run}/sft/final" in inputs_of(out, "evaluate", "eval/sft/omnibench/both")


@pytest.mark.integration
@pytest.mark.parametrize("overlay, message", [
    ("sft: {select_checkpoint: best_val}",  # the default save_total_limit (2) would delete the older checkpoints
     "config key 'sft.save_total_limit' is 2: with sft.select_checkpoint best_val every checkpoint competes"),
    ("grpo: {select_checkpoint: best_val, save_total_limit: null, select_benchmark: mmar}\nevaluation: {only: [omnibench]}",
     "config key 'grpo.select_benchmark': 'mmar' is not evaluated in this run (evaluated: ['omnibench'])"),
])
def test_a_selection_that_cannot_run_stops_the_workflow_naming_the_key(workflow_dir, tmp_path, overlay, message):
    (workflow_dir / "bad.yaml").write_text(overlay + "\n")
    proc = dry_run(workflow_dir, tmp_path, ["config/config.yaml", "bad.yaml"], check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
