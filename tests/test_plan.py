"""`avrt plan`: the reference students built on the meta device, frozen as training freezes them."""

from __future__ import annotations

import json

import pytest

from avrt.cli import main
from avrt.core.config import load_config
from avrt.models.spec import model_spec
from avrt.plan import Workload, activation_bytes, model_shape, plan

CONFIG = "config/config.yaml"


def spec_of(checkpoint: str):
    config = load_config(CONFIG)
    config["models"]["student"]["checkpoint"] = checkpoint
    return config, model_spec(config, "student")


@pytest.mark.parametrize(("checkpoint", "trainable_b"), [("Qwen/Qwen2.5-Omni-3B", 3.40), ("Qwen/Qwen2.5-Omni-7B", 7.62)])
def test_the_students_train_their_language_model_and_head_with_both_encoders_frozen(checkpoint, trainable_b):
    config, spec = spec_of(checkpoint)
    shape = model_shape(spec, list(config["student"]["freeze"]))
    assert set(shape.frozen) == {"visual", "audio_tower"} and all(n > 0.5e9 for n in shape.frozen.values())
    assert round(shape.trainable / 1e9, 2) == trainable_b
    assert shape.total == shape.trainable + sum(shape.frozen.values())


def test_lora_leaves_only_the_adapters_trainable():
    config, spec = spec_of("Qwen/Qwen2.5-Omni-3B")
    shape = model_shape(spec, list(config["student"]["freeze"]), {"r": 8, "alpha": 16, "dropout": 0.05,
                                                                 "target_modules": ["q_proj", "v_proj"]})
    # r x (in + out) per projection: q 2048 -> 2048, v 2048 -> 256, over 36 layers
    assert shape.trainable == 36 * 8 * ((2048 + 2048) + (2048 + 256))


def test_checkpointing_keeps_one_layer_input_per_layer_instead_of_its_activations():
    _, spec = spec_of("Qwen/Qwen2.5-Omni-3B")
    shape = model_shape(spec, ["visual", "audio_tower"])
    full, kept = activation_bytes(shape, 4, 1000, False, 2), activation_bytes(shape, 4, 1000, True, 2)
    per_layer = full / shape.layers
    assert kept == pytest.approx(shape.layers * 4 * 1000 * shape.hidden * 2 + per_layer)
    assert kept < full / 5


def test_the_paper_grpo_needs_checkpointing_for_the_7b_on_80_gb():
    config, _ = spec_of("Qwen/Qwen2.5-Omni-7B")
    sft, grpo = plan(config)
    assert grpo["total_ckpt_gb"] < 80 < grpo["total_no_ckpt_gb"] and grpo["fits_with"] == "checkpointing"
    assert grpo["reference_gb"] == pytest.approx(grpo["weights_gb"])  # beta 0.01: a bf16 reference per GPU
    assert grpo["tokens_per_step"] == 1 * 4 * 8 * 4 * (Workload().prompt_tokens + 512)
    assert grpo["steps"] == -(-40_127 // 32) and sft["steps"] == -(-18_279 // 32)
    assert grpo["gpu_hours_ckpt"] > grpo["gpu_hours_no_ckpt"] > 0


def test_plan_command_prints_a_table_and_json(capsys):
    assert main(["plan", "--config", CONFIG, "--mfu", "0.5"]) == 0
    table = capsys.readouterr().out
    assert "| per GPU | sft | grpo |" in table and "total_ckpt_gb" in table
    assert main(["plan", "--config", CONFIG, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in out["stages"]] == ["sft", "grpo"] and out["workload"]["mfu"] == 0.35
