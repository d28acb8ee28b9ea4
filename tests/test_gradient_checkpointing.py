"""Gradient checkpointing in both training stages: the same loss and gradients as without it, on a
tiny random Qwen2.5-Omni thinker with frozen encoders, real synthetic clips and one CPU process."""

from __future__ import annotations

import pytest
import torch
from sft_fixtures import build_student_zoo, cpu_sft_config, prepare_synthetic_shard, student_spec
from transformers import TrainerCallback

from avrt.core.config import stage_config
from avrt.training.grpo import METRICS, GRPOInputs, train_grpo
from avrt.training.sft import SFTInputs, train_sft

STUDENT = stage_config("student", {})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    return prepare_synthetic_shard(tmp_path_factory.mktemp("gc_shard"), {"train": 2}, seconds=2.0, num_frames=2)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return student_spec(build_student_zoo(tmp_path_factory.mktemp("gc_zoo")) / "qwen2_5_omni")


class Probe(TrainerCallback):
    """What the first optimizer step saw: checkpointing on the model, caches of training forwards, gradients."""

    def __init__(self):
        self.checkpointing, self.caches, self.grads = [], [], None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def record(module, _inputs, output):
            if module.training:  # GRPO's rollouts run in eval mode and keep their cache
                self.caches.append(getattr(output, "past_key_values", None))

        model.register_forward_hook(record)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.checkpointing.append(model.is_gradient_checkpointing)

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_step(on: Probe, off: Probe) -> None:
    assert on.checkpointing == [True] and off.checkpointing == [False]
    assert on.caches and off.caches and all(c is None for c in on.caches + off.caches)
    assert on.grads.keys() == off.grads.keys() and len(on.grads) > 0
    assert not any(f".{n}".count(".visual.") or f".{n}".count(".audio_tower.") for n in on.grads)  # encoders stay frozen
    assert sum(g.abs().sum() for g in on.grads.values()) > 0
    for name, grad in on.grads.items():
        torch.testing.assert_close(grad, off.grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8}], ids=["full", "lora"])
def test_sft_step_with_checkpointing_has_the_loss_and_gradients_of_one_without(shard, spec, tmp_path, lora):
    inputs = SFTInputs(train=[str(shard.manifest)], media_indexes=[str(shard.media_index)])
    probes, losses = {}, {}
    for checkpointing in (True, False):
        probe = Probe()
        config = cpu_sft_config(max_steps=1, per_device_batch_size=2, lora=lora, gradient_checkpointing=checkpointing,
                                data={"source": "template"})
        summary = train_sft(config, STUDENT, spec, inputs, tmp_path / str(checkpointing) / "final", callbacks=[probe])
        probes[checkpointing], losses[checkpointing] = probe, summary["train_loss"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    assert_same_step(probes[True], probes[False])


def test_grpo_step_with_checkpointing_has_the_loss_and_gradients_of_one_without(shard, spec, tmp_path):
    import json

    inputs = GRPOInputs(manifests=[str(shard.manifest)], media_indexes=[str(shard.media_index)])
    probes, losses = {}, {}
    for checkpointing in (True, False):
        probe = Probe()
        config = stage_config("grpo", {
            "num_gpus": 1, "gradient_accumulation_steps": 1, "deepspeed": None, "bf16": False, "max_steps": 1,
            "max_completion_length": 6, "per_device_batch_size": 2, "beta": 0.5, "logging_steps": 1,
            "dataloader_num_workers": 0, "report_to": [], "gradient_checkpointing": checkpointing})
        run_dir = tmp_path / str(checkpointing)

        def vowel_share(completions, **_columns):  # a dense reward: advantages are not all 0
            return [sum(c in "aeiou" for c in text) / max(len(text), 1) for text in completions]

        train_grpo(config, STUDENT, spec, inputs, run_dir / "final", callbacks=[probe], rewards={"vowels": vowel_share})
        probes[checkpointing] = probe
        losses[checkpointing] = json.loads((run_dir / METRICS).read_text().splitlines()[0])["loss"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5, abs=1e-7)
    assert_same_step(probes[True], probes[False])
