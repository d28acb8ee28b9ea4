"""Config layering, defaults and errors that name the key."""

from __future__ import annotations

import re

import pytest

from avrt.core.config import ConfigError, deep_merge, load_config, load_schema, load_yaml, validate_config

from conftest import REPO, run_snakemake


def full_config() -> dict:
    return load_yaml(REPO / "config" / "config.yaml")


def test_full_config_carries_the_papers_recipe():
    cfg = load_config(REPO / "config" / "config.yaml")
    sft, grpo = cfg["sft"], cfg["grpo"]
    assert sft["per_device_batch_size"] * sft["gradient_accumulation_steps"] * sft["num_gpus"] == 32
    assert (sft["learning_rate"], sft["lr_scheduler"], sft["warmup_steps"]) == (2e-6, "cosine", 100)
    assert (sft["adam_beta1"], sft["adam_beta2"], sft["adam_epsilon"], sft["weight_decay"]) == (0.9, 0.999, 1e-8, 0.01)
    assert sft["deepspeed"] == "zero2_offload" and sft["bf16"] is True and sft["epochs"] == 1
    assert (grpo["num_generations"], grpo["epsilon"], grpo["beta"], grpo["temperature"]) == (4, 0.2, 0.01, 1.0)
    lr = grpo["length_reward"]
    assert (lr["mu"], lr["sigma"], lr["w_min"], lr["w_max"]) == (100, 20, 100, 200)
    assert cfg["media"]["num_frames"] == 8 and cfg["media"]["audio_seconds"] == 10.0
    assert cfg["student"]["freeze"] == ["visual", "audio_tower"]
    assert {t["modality"] for t in cfg["teachers"]} == {"frames", "audio"}
    assert cfg["models"]["visual_teacher"]["trust_remote_code"] is True
    assert cfg["models"]["merger"]["trust_remote_code"] is False  # default: off unless set


def test_schema_defaults_equal_the_full_config():
    """config.yaml spells out the schema's defaults: a run with an empty config is the paper's."""
    cfg = load_config(REPO / "config" / "config.yaml")
    minimal = validate_config({"run": cfg["run"], "models": cfg["models"], "teachers": cfg["teachers"],
                               "evaluation": {"benchmarks": cfg["evaluation"]["benchmarks"]}})
    for section in ("data", "media", "filter", "student", "sft", "grpo", "merger"):
        assert minimal[section] == cfg[section], section


def test_demo_config_is_valid_and_small():
    cfg = load_config(REPO / "config" / "demo.yaml")
    assert cfg["data"]["synthetic"]["clips"] and cfg["data"]["n_shards"] <= 4


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"bogus": 1}, r"unknown config key 'bogus'"),
        ({"sft": {"learning_rat": 1e-5}}, r"unknown config key 'learning_rat' under 'sft'"),
        ({"sft": {"learning_rate": "fast"}}, r"config key 'sft\.learning_rate': 'fast' is not of type 'number'"),
        ({"data": {"n_shards": 0}}, r"config key 'data\.n_shards': 0 is less than the minimum of 1"),
        ({"media": {"frame_sampling": "random"}}, r"config key 'media\.frame_sampling': 'random' is not one of"),
        ({"models": {"merger": {"family": "gpt"}}}, r"config key 'models\.merger\.family'"),
        ({"models": {"merger": {"checkpointt": "x"}}}, r"unknown config key 'checkpointt' under 'models\.merger'"),
        ({"teachers": [{"name": "visual", "model": "nope", "prompt": "p", "modality": "frames"}]},
         r"config key 'teachers\[0\]\.model': model 'nope' is not defined"),
        ({"data": {"synthetic": {"clips": {"train": 2}, "secs": 3}}}, r"unknown config key 'secs' under 'data\.synthetic'"),
        ({"evaluation": {"difficulty": {"teachers": ["visual", "nobody"]}}},
         r"config key 'evaluation\.difficulty\.teachers': 'nobody' is no frames or audio teacher"),
        ({"evaluation": {"difficulty": {"benchmarks": "omnibench"}}},
         r"unknown config key 'benchmarks' under 'evaluation\.difficulty'"),
        ({"teachers": [{"name": "visual", "model": "visual_teacher", "prompt": "visual_teachr", "modality": "frames"},
                      {"name": "audio", "model": "audio_teacher", "prompt": "audio_teacher", "modality": "audio"}]},
         r"config key 'teachers\[0\]\.prompt': no prompt 'visual_teachr' \(known: .*visual_teacher"),
        ({"merger": {"prompt": "mergr"}}, r"config key 'merger\.prompt': no prompt 'mergr'"),
        ({"media": {"sample_rate": 0}}, r"config key 'media\.sample_rate': 0 is less than the minimum"),
        ({"models": {"visual_teacher": {"revision": None}}},
         r"config key 'models\.visual_teacher\.revision': trust_remote_code runs the checkpoint's own code"),
        ({"models": {"visual_teacher": {"revision": "main"}}}, r"pin the commit it runs at \(a 40-hex hub commit, got 'main'\)"),
        ({"run": ".."}, r"config key 'run': '\.\.' does not match"),
        ({"evaluation": {"models": {"../x": {"model": "student"}}}}, r"config key 'evaluation\.models'"),
        ({"evaluation": {"benchmarks": {"a/../../b": {"annotations": "x.json"}}}}, r"config key 'evaluation\.benchmarks'"),
    ],
)
def test_bad_config_names_the_key(override, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_config(deep_merge(full_config(), override))


def test_every_hub_checkpoint_of_the_paper_config_is_pinned_to_a_commit():
    for name, spec in full_config()["models"].items():
        assert re.fullmatch(r"[0-9a-f]{40}", spec.get("revision") or ""), name


def test_remote_code_from_a_local_directory_needs_no_revision(tmp_path):
    local = {"models": {"visual_teacher": {"checkpoint": str(tmp_path), "revision": None}}}
    assert validate_config(deep_merge(full_config(), local))["models"]["visual_teacher"]["trust_remote_code"]


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: x\nmedia:\n  num_frames: [8\n  jpeg_quality: 90\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}:4:\d+: not valid YAML"):
        load_yaml(bad)


def test_difficulty_subsets_default_to_the_papers_choice():
    on = validate_config(deep_merge(full_config(), {"evaluation": {"difficulty": {}}}))
    assert on["evaluation"]["difficulty"] == {"benchmark": "omnibench", "teachers": ["visual", "audio"]}
    cfg = full_config()
    del cfg["evaluation"]["difficulty"]
    assert validate_config(cfg)["evaluation"]["difficulty"] is None  # off unless a config turns it on


def test_yaml_exponent_without_dot_is_read_as_a_number(tmp_path):
    """YAML 1.1 reads `2e-6` as a string; wherever the schema wants a number, validation reads the number."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("run: 1e3\nsft: {learning_rate: 2e-6, max_steps: 1e3}\n"
                       "models: {student: {sampling: {temperature: 5E-1}}}\n")
    written = load_yaml(overlay)
    assert written["sft"]["learning_rate"] == "2e-6" and written["run"] == "1e3"  # as YAML reads them
    cfg = validate_config(deep_merge(full_config(), written))
    assert cfg["sft"]["learning_rate"] == 2e-6
    assert cfg["sft"]["max_steps"] == 1000 and isinstance(cfg["sft"]["max_steps"], int)
    assert cfg["models"]["student"]["sampling"]["temperature"] == 0.5  # under models.<name> and $ref
    assert cfg["run"] == "1e3"  # a string key keeps the string
    with pytest.raises(ConfigError, match=r"config key 'sft\.learning_rate': '2e-6x' is not of type 'number'"):
        validate_config(deep_merge(full_config(), {"sft": {"learning_rate": "2e-6x"}}))


def test_config_reference_defaults_paste_back_as_the_defaults(tmp_path):
    """Each number in config/README.md's default column, pasted into a config file as printed
    (`2e-06`, a string to YAML), validates to that default."""
    import json

    tree, expected = {}, {}
    for row in (REPO / "config" / "README.md").read_text().splitlines():
        cells = row.split(" | ")
        if not row.startswith("| `") or not cells[1].startswith(("number", "integer")) or cells[2] in ("", "`null`"):
            continue
        path = tuple(cells[0].strip("| `").replace("<name>", "student").split("."))
        if any("[]" in key for key in path):
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = cells[2].strip("`")
        expected[path] = json.loads(cells[2].strip("`"))
    assert expected[("sft", "learning_rate")] == 2e-6 and len(expected) > 50

    def block(node: dict, indent: str = "") -> list[str]:
        return [line for key, value in node.items() for line in
                ([f"{indent}{key}:", *block(value, indent + "  ")] if isinstance(value, dict) else [f"{indent}{key}: {value}"])]

    pasted = tmp_path / "pasted.yaml"
    pasted.write_text("\n".join(block(tree)) + "\n")
    # pasting judge.samples turns the judge on (its default is off): give it the model it names
    judge_model = {"models": {"judge": full_config()["models"]["student"]}}
    cfg = validate_config(deep_merge(deep_merge(full_config(), judge_model), load_yaml(pasted)))
    assert cfg["judge"]["samples"] == 600
    for path, default in expected.items():
        value = cfg
        for key in path:
            value = value[key]
        assert value == default and type(value) is type(default), (".".join(path), value)


def test_config_reference_is_generated_from_the_schema():
    """config/README.md documents every key, and is exactly what the schema generates."""
    from avrt.config_docs import key_rows, render

    readme = (REPO / "config" / "README.md").read_text()
    assert readme == render(), "config/README.md is out of date: run `avrt config-docs`"
    schema = load_schema()
    paths = {row.split("`")[1] for rows in key_rows(schema).values() for row in rows}
    assert {"sft.learning_rate", "models.<name>.sampling.temperature", "teachers[].modality"} <= paths
    undocumented = sorted(row.split("`")[1] for rows in key_rows(schema).values() for row in rows if row.endswith("|  |"))
    assert not undocumented, f"schema keys without a description: {undocumented}"


@pytest.mark.integration
def test_snakemake_rejects_a_bad_key_before_any_job(workflow_dir):
    proc = run_snakemake(workflow_dir, "-n", "--config", "sft={learning_rat: 1}", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'learning_rat' under 'sft'" in proc.stdout + proc.stderr
    assert not (workflow_dir / "results").exists()


@pytest.mark.integration
def test_an_overlay_without_run_layers_on_the_papers_recipe(workflow_dir, tmp_path):
    """`--configfile overlay.yaml` alone means `--configfile config/config.yaml overlay.yaml`: no
    file names a `run`. A file that names one is a whole config and inherits nothing."""
    from avrt.demo.dry_run import write_dry_run_stubs

    stubs = write_dry_run_stubs(tmp_path / "stubs", full_config())  # an overlay too: no `run`
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("sft: {max_steps: 10, learning_rate: 5e-3}\n")  # Snakemake's YAML reads a string
    run_snakemake(workflow_dir, "-n", "--configfile", str(stubs), str(overlay))
    paper = load_config(REPO / "config" / "config.yaml")
    layered = load_yaml(workflow_dir / "results" / paper["run"] / "config.yaml")
    assert layered["models"] == paper["models"] and layered["teachers"] == paper["teachers"]
    assert layered["sft"] == {**paper["sft"], "max_steps": 10, "learning_rate": 5e-3}

    # a target goes before --configfile, or after `--` (after --configfile it would be read as a config file)
    target = f"results/{paper['run']}/data/manifest.jsonl"
    for args in ((target, "--configfile", str(stubs), str(overlay)), ("--configfile", str(stubs), str(overlay), "--", target)):
        out = run_snakemake(workflow_dir, "-n", *args).stdout
        assert re.search(r"^ingest_avqa +1$", out, re.M) and re.search(r"^total +1$", out, re.M), out[-2000:]

    run_snakemake(workflow_dir, "-n", "--configfile", "config/demo.yaml", str(overlay))
    demo = load_yaml(workflow_dir / "results" / "demo" / "config.yaml")
    assert demo["models"] == load_config(REPO / "config" / "demo.yaml")["models"]  # none of the paper's
    assert demo["sft"]["max_steps"] == 10
