"""`grpo.rollout_backend: vllm_colocate` on vLLM's CPU build: the rollout engine in the training
process, fed the policy's weights after an optimizer step.

The engine joins the process's torch.distributed group (vLLM's external launcher), so the check
runs in a child process of its own (this file run as a script) and reports JSON.

What vLLM's CPU build can host: the engine, its requests, and weight sync for every tensor it keeps
as loaded (token embeddings, RMSNorm weights): after a real AdamW step on those, the engine's
greedy output equals the updated policy's. What it cannot: its linear layers repack their weights
for the CPU GEMM kernels after loading and drop the loaded tensor
(`dispatch_cpu_unquantized_gemm(..., remove_weight=True)`), so pushing a decoder linear layer
fails with vLLM's "Attempted to load weight ... into parameter (torch.Size([0]))". The test pins
that error, so a vLLM that lifts the limit shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from models_fixtures import tiny_zoo  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve()


def test_colocated_engine_samples_from_the_policy_after_an_optimizer_step(tiny_zoo, tmp_path):  # noqa: F811
    out = tmp_path / "colocate.json"
    proc = subprocess.run([sys.executable, str(HERE), str(tiny_zoo / "qwen2_5_omni"), str(out)],
                          capture_output=True, text=True, timeout=600, cwd=HERE.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["engine_before_step"] == report["policy_before_step"]  # same model, same request, greedy
    assert report["policy_after_step"] != report["policy_before_step"]  # the step changed the policy's choice
    assert report["engine_before_sync"] == report["policy_before_step"]  # not synced yet: the old weights
    assert report["engine_after_sync"] == report["policy_after_step"]
    assert set(report["synced"]) >= {"thinker.model.embed_tokens.weight", "thinker.model.norm.weight"}
    assert "Attempted to load weight" in report["linear_sync_error"] and "torch.Size([0])" in report["linear_sync_error"]


def check(checkpoint: str, out: str) -> None:
    """Run in the child process: the measurements the test asserts on."""
    from dataclasses import replace

    import torch

    from avrt.models.adapters import GenerationRequest, get_adapter
    from avrt.models.backends import load_model
    from avrt.models.hf_backend import load_processor
    from avrt.models.saved_layout import hub_key
    from avrt.models.spec import ModelSpec
    from avrt.models.vllm_backend import sampling_kwargs
    from avrt.training.data import MediaLookup, StudentInputs
    from avrt.training.rollout import VLLMColocateRollout
    from models_fixtures import make_clip

    max_new = 8
    spec = ModelSpec.from_config("student", {
        "family": "qwen2_5_omni", "checkpoint": checkpoint, "dtype": "float32", "backend": "vllm",
        "enforce_eager": True, "max_model_len": 4096, "max_num_seqs": 4,
        "sampling": {"temperature": 0.0, "max_new_tokens": max_new}})
    adapter = get_adapter(spec.family)
    rollout = VLLMColocateRollout(spec, StudentInputs(spec, adapter, load_processor(spec), MediaLookup([])),
                                  stop_ids=[], pad_token_id=0, temperature=1.0, max_new_tokens=max_new,
                                  suppressed_ids=[], gpu_memory_utilization=0.1, process_index=0,
                                  local_process_index=0, num_processes=1)
    policy = load_model(replace(spec, backend="hf"))
    model, processor = policy.model, policy.processor
    request = GenerationRequest("r", "Which object makes the sound?", make_clip("c", size=112), ("frames", "audio"))
    prepared = adapter.prepare(request, spec, policy.chat_template)
    inputs = processor(**adapter.hf_processor_kwargs([prepared]), return_tensors="pt")
    generate_kwargs = adapter.hf_generate_kwargs([prepared])

    def policy_greedy() -> list[int]:
        model.eval()
        with torch.no_grad():
            ids = model.generate(**inputs, **generate_kwargs, do_sample=False, max_new_tokens=max_new,
                                 min_new_tokens=max_new, eos_token_id=None)
        return ids[0, inputs["input_ids"].shape[1]:].tolist()

    def engine_greedy() -> list[int]:
        vllm_request = adapter.vllm_request(prepared)
        vllm_request["prompt"] = rollout.backend.prompt_text(vllm_request["prompt"])
        params = {**sampling_kwargs(spec.sampling, seed=0), "ignore_eos": True}
        return list(rollout.backend.run([vllm_request], [params])[0].outputs[0].token_ids)

    report = {"policy_before_step": policy_greedy(), "engine_before_step": engine_greedy()}
    # One real optimizer step on what the CPU engine can take in: embeddings and RMSNorm weights
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("model.") and (name.endswith("embed_tokens.weight") or "norm" in name))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    loss = model(**inputs, **generate_kwargs, labels=inputs["input_ids"]).loss
    loss.backward()
    optimizer.step()
    report["policy_after_step"] = policy_greedy()
    report["engine_before_sync"] = engine_greedy()
    rollout.sync_weights(model)
    report["engine_after_sync"] = engine_greedy()
    rename = hub_key(model.config.model_type)
    report["synced"] = sorted(rename(n) for n, p in model.named_parameters() if p.requires_grad)

    model.model.layers[0].mlp.down_proj.weight.requires_grad_(True)  # a linear layer, packed by the CPU build
    try:
        rollout.sync_weights(model)
        report["linear_sync_error"] = ""
    except Exception as err:  # noqa: BLE001  (reported to the test, which names what it expects)
        report["linear_sync_error"] = f"{type(err).__name__}: {err}"
    Path(out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    check(sys.argv[1], sys.argv[2])
