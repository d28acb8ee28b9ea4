"""The run manifest: versions, git state, prompt hashes, checksums and Slurm job ids."""

import hashlib
import json

from avrt.core.prompts import load_prompt
from avrt.provenance import slurm_job_ids, write_run_manifest


def test_run_manifest_records_what_produced_the_run(tmp_path, monkeypatch):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b.txt").write_text("b")
    for rule, wc, job in (("teacher", "shard_000", "101"), ("teacher", "shard_001", "102"), ("sft", "", "205")):
        d = tmp_path / ".snakemake" / "slurm_logs" / f"rule_{rule}" / wc
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{job}.log").write_text("log")
    manifest = write_run_manifest(tmp_path / "m.json", {"run": "r1", "sft": {"learning_rate": 2e-6}},
                                  [tmp_path / "a.jsonl", tmp_path / "dir"], repo=tmp_path)
    assert json.loads((tmp_path / "m.json").read_text()) == manifest
    assert manifest["artifacts"][str(tmp_path / "a.jsonl")]["sha256"] == hashlib.sha256(b'{"x": 1}\n').hexdigest()
    assert str(tmp_path / "dir" / "b.txt") in manifest["artifacts"]
    assert manifest["slurm_jobs"] == {"sft": ["205"], "teacher": ["101", "102"]}
    assert manifest["prompts"]["merger"] == load_prompt("merger").sha256
    assert manifest["libraries"]["transformers"] and manifest["libraries"]["snakemake"]
    assert manifest["config"]["sft"]["learning_rate"] == 2e-6 and manifest["run"] == "r1"
    assert manifest["git"] == {"commit": None, "dirty": None}  # not a git checkout


def test_slurm_job_ids_ignore_other_files(tmp_path):
    d = tmp_path / "rule_x"
    d.mkdir()
    (d / "notanid.log").write_text("")
    (d / "17.log").write_text("")
    assert slurm_job_ids(tmp_path) == {"x": ["17"]}


def test_run_manifest_command_records_the_validated_config_file(tmp_path, monkeypatch):
    import yaml

    from avrt.cli import main
    from avrt.core.config import load_config

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"run": "r2", "evaluation": {"models": {}}, "sft": {"learning_rate": 1.0e-5}}))
    (tmp_path / "a.txt").write_text("a")
    monkeypatch.chdir(tmp_path)
    assert main(["run-manifest", "--config", str(config), "--artifacts", "a.txt", "--out", "m.json"]) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["run"] == "r2" and manifest["config"] == json.loads(json.dumps(load_config(config)))
    assert manifest["config"]["sft"]["learning_rate"] == 1e-5 and manifest["config"]["sft"]["warmup_steps"] == 100
