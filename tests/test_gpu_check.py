"""scripts/gpu_check/run.py: its tiny CPU run, its processor-free inputs and its failure reporting.

The GPU figures themselves need a GPU; these tests hold the code path, the input shapes and the
result format to what the training code and the real Qwen2.5-Omni processor do.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from itertools import groupby

import numpy as np
import pytest
import torch

from conftest import REPO

KIT_PATH = REPO / "scripts" / "gpu_check" / "run.py"
BUNDLED_3B = REPO / "src" / "avrt" / "models" / "configs" / "Qwen--Qwen2.5-Omni-3B.json"
# Packages of the pipeline that a GPU machine may lack: the kit must run without any of them.
ABSENT_ON_DEVICE = ("decord", "librosa", "av", "vllm", "snakemake", "jsonschema", "PIL", "torchvision", "soundfile",
                    "soxr", "cv2", "tensorboard", "deepspeed")
MEASUREMENT_FIELDS = {"name", "status", "note", "step_s", "tokens_per_step", "tokens_per_s", "model_tflops_per_step",
                      "achieved_tflops", "mfu", "peak_memory_gb", "start_memory_gb", "timed_steps", "parts_s",
                      "derived", "settings"}


@pytest.fixture(scope="module")
def kit():
    spec = importlib.util.spec_from_file_location("gpu_check_run", KIT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def media_roles(ids: list[int], roles: dict[int, str]) -> list[tuple[str, int]]:
    """Run lengths of the media span (first to last media token), text ids left out."""
    media = [i for i, token in enumerate(ids) if token in roles]
    span = ids[media[0] : media[-1] + 1]
    return [(roles[token], len(list(run))) for token, run in groupby(span)]


def config_roles(config) -> dict[int, str]:
    return {config.vision_start_token_id: "vision_bos", config.vision_end_token_id: "vision_eos",
            config.audio_start_token_id: "audio_bos", config.audio_end_token_id: "audio_eos",
            config.video_token_index: "video", config.audio_token_index: "audio"}


# ---- the tiny run -------------------------------------------------------------------------------
def test_tiny_run_end_to_end_without_the_pipeline_only_packages(tmp_path):
    """The device command on the CPU, with the packages a GPU machine may lack made unimportable."""
    out = tmp_path / "gpu_check.json"
    launcher = (f"import runpy, sys\nfor name in {ABSENT_ON_DEVICE!r}:\n    sys.modules[name] = None\n"
                f"sys.argv = ['run.py', '--tiny', '--out', {str(out)!r}]\n"
                f"runpy.run_path({str(KIT_PATH)!r}, run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", launcher], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "measurement" in proc.stdout and "MFU = model FLOPs" in proc.stdout

    report = json.loads(out.read_text())
    assert report["mode"] == "tiny" and report["deepspeed_used"] is False
    assert "needs CUDA" in report["deepspeed_note"]
    assert {"torch", "transformers", "peft", "deepspeed", "numpy"} <= set(report["versions"])
    assert report["versions"]["deepspeed"] is None
    assert "6*T*S" in report["flops_formula"] and report["elapsed_s"] < report["budget_s"]
    assert report["model"]["frozen"].keys() == {"visual", "audio_tower"}

    rows = {m["name"]: m for m in report["measurements"]}
    assert list(rows) == ["sft_torch_adamw", "grpo_no_ckpt", "grpo_ckpt", "generate"]
    for row in rows.values():
        assert set(row) == MEASUREMENT_FIELDS
        assert row["status"] == "ok", row
        assert row["step_s"] > 0 and row["tokens_per_s"] > 0 and row["model_tflops_per_step"] > 0
        assert row["timed_steps"] == 1
        assert row["mfu"] is None and row["peak_memory_gb"] is None  # a CPU: no peak FLOP/s, no CUDA memory
    assert "no ZeRO" in rows["sft_torch_adamw"]["note"]
    sft = rows["sft_torch_adamw"]
    assert sft["parts_s"].keys() == {"forward_backward_s", "optimizer_s"}
    assert sft["derived"]["step_s_at_accumulation_8"] == pytest.approx(
        8 * sft["parts_s"]["forward_backward_s"] + sft["parts_s"]["optimizer_s"])
    generate = rows["generate"]
    assert generate["step_s"] == pytest.approx(generate["parts_s"]["prefill_s"] + generate["parts_s"]["decode_s"])
    decode = generate["derived"]["decode_tokens_per_s"]
    assert decode > 0 if generate["parts_s"]["decode_s"] > 0 else decode is None
    assert rows["grpo_no_ckpt"]["settings"]["gradient_checkpointing"] is False
    assert rows["grpo_ckpt"]["settings"]["gradient_checkpointing"] is True
    assert rows["grpo_ckpt"]["parts_s"].keys() == {"reference_forward_s", "policy_forward_backward_s"}

    # paper config: 8 frames, 10 s of audio, G = 4, per-device batch 1
    inputs = report["inputs"]
    prompt = inputs["prompt_tokens"]
    assert prompt == 250 + inputs["video_tokens"] + inputs["audio_tokens"] + 4
    assert rows["grpo_ckpt"]["settings"]["rows"] == 4
    assert rows["grpo_ckpt"]["tokens_per_step"] == 4 * (prompt + inputs["completion_tokens"])
    assert rows["generate"]["tokens_per_step"] == 4 * rows["generate"]["settings"]["max_new_tokens"]
    assert rows["sft_torch_adamw"]["tokens_per_step"] == prompt + inputs["completion_tokens"]


def test_fake_oom_is_reported_not_raised(kit, tmp_path, monkeypatch, one_torch_thread):
    """A CUDA out-of-memory error in a GRPO step becomes that row's result; the next row still runs."""
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 18.00 GiB")

    monkeypatch.setattr(kit, "grpo_step", out_of_memory)
    code = kit.main(["--tiny", "--only", "grpo_no_ckpt", "generate", "--out", str(tmp_path / "r.json")])
    assert code == 0
    rows = {m["name"]: m for m in json.loads((tmp_path / "r.json").read_text())["measurements"]}
    assert rows["grpo_no_ckpt"]["status"] == "oom"
    assert "Tried to allocate 18.00 GiB" in rows["grpo_no_ckpt"]["note"]
    assert rows["grpo_no_ckpt"]["step_s"] is None
    assert rows["generate"]["status"] == "ok"


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA H200", 989),
    ("NVIDIA H100 NVL", None), ("NVIDIA H200 NVL", None), ("NVIDIA A100-SXM4-80GB", None),
])
def test_peak_flops_by_gpu_name_and_unknown_gpus_get_no_mfu(kit, name, tflops):
    assert kit.peak_for(name) == (tflops and tflops * 1e12)


def test_a_spent_budget_skips_the_remaining_measurements(kit, tmp_path, one_torch_thread):
    code = kit.main(["--tiny", "--budget-s", "0", "--out", str(tmp_path / "r.json")])
    rows = json.loads((tmp_path / "r.json").read_text())["measurements"]
    assert code == 0 and [r["status"] for r in rows] == ["skipped"] * 4
    assert all("time budget of 0 s spent" in r["note"] for r in rows)


# ---- the inputs, against the real processor and the training code -------------------------------
def test_inputs_match_what_the_real_processor_gives_a_training_clip(kit, tmp_path, one_torch_thread):
    """8 frames of 640x360 with their 10 s audio track through the real Qwen2.5-Omni processor (the tiny
    zoo's: same video budget, patching and Whisper features) as the student's adapter calls it."""
    from avrt.core.media import resized_dims
    from avrt.demo.zoo import build_zoo
    from avrt.models.adapters import PreparedPrompt, get_adapter
    from avrt.models.media_inputs import MediaInputs
    from transformers import AutoProcessor

    build_zoo(tmp_path, families=("qwen2_5_omni",))
    processor = AutoProcessor.from_pretrained(tmp_path / "qwen2_5_omni")
    height, width = kit.frame_size(640)
    assert (width, height) == resized_dims(1280, 720, 640)
    frames = np.random.default_rng(0).integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    media = MediaInputs(frames=frames, frames_fps=8 / 10.0, audio=np.zeros(160_000, np.float32))
    adapter = get_adapter("qwen2_5_omni")
    text = adapter.render([{"role": "user", "content": [*adapter.media_content(media), {"type": "text", "text": "Q"}]}])
    real = processor(**adapter.hf_processor_kwargs([PreparedPrompt("x", text, media)]), return_tensors="pt")

    config = kit.thinker_config(BUNDLED_3B)
    layout = kit.media_layout(config, 8, height, width, 10.0, 16_000)
    ours = kit.prompt_inputs(config, layout, 250, torch.Generator().manual_seed(0))
    assert set(ours) == set(real)
    for key in ("pixel_values_videos", "input_features", "feature_attention_mask", "video_grid_thw"):
        assert ours[key].shape == real[key].shape, key
    assert ours["video_grid_thw"].tolist() == real["video_grid_thw"].tolist()
    assert ours["feature_attention_mask"].sum() == real["feature_attention_mask"].sum()
    assert ours["video_second_per_grid"].tolist() == pytest.approx(real["video_second_per_grid"].tolist())

    tokenizer = processor.tokenizer
    zoo_roles = {tokenizer.convert_tokens_to_ids(t): r for t, r in (
        ("<|vision_bos|>", "vision_bos"), ("<|vision_eos|>", "vision_eos"), ("<|audio_bos|>", "audio_bos"),
        ("<|audio_eos|>", "audio_eos"), ("<|VIDEO|>", "video"), ("<|AUDIO|>", "audio"))}
    expected = media_roles(real["input_ids"][0].tolist(), zoo_roles)
    assert media_roles(ours["input_ids"][0].tolist(), config_roles(config)) == expected
    # 2 s chunks: four temporal grids of 299 video tokens, each followed by 50 audio tokens, the last 100
    assert expected[2:4] == [("video", 299), ("audio", 50)] and expected[-3] == ("audio", 100)

    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

    lengths = torch.arange(1, 3001)
    _, tokens = Qwen2_5OmniAudioEncoder._get_feat_extract_output_lengths(None, lengths)
    assert [kit.audio_token_count(n) for n in lengths.tolist()] == tokens.tolist()


def test_the_3b_student_is_built_and_counted_as_avrt_plan_counts_it(kit):
    """The real student's sizes: 1,196 video and 250 audio tokens (plan.py's defaults), 3.40B trainable."""
    from avrt.plan import Workload

    config = kit.thinker_config(BUNDLED_3B)
    layout = kit.media_layout(config, 8, *kit.frame_size(640), 10.0, 16_000)
    assert (layout["video_tokens"], layout["audio_tokens"]) == (Workload().video_tokens, Workload().audio_tokens)
    assert layout["video_patches"] == 4 * layout["video_tokens"] and layout["patch_dim"] == 3 * 2 * 14 * 14
    assert (layout["mel_bins"], layout["mel_frames"], layout["mel_frames_valid"]) == (128, 3000, 1000)

    with torch.device("meta"):
        model = kit.transformers.Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    frozen = kit.freeze(model, ["visual", "audio_tower"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert round(trainable / 1e9, 2) == 3.40
    flops = kit.FlopModel.of(model, frozen)
    assert flops.trainable == flops.decoder == trainable - model.get_input_embeddings().weight.numel()
    assert (flops.layers, flops.hidden) == (36, 2048)


def test_log_probs_freeze_and_deepspeed_config_agree_with_the_training_code(kit, one_torch_thread):
    from avrt.training.launch import deepspeed_config
    from avrt.training.rollout import completion_logps
    from avrt.training.student import freeze_modules

    torch.manual_seed(0)
    config = kit.thinker_config(None)
    model = kit.build_thinker(config, torch.device("cpu"), []).eval()
    with torch.device("meta"):
        reference = kit.transformers.Qwen2_5OmniThinkerForConditionalGeneration._from_config(config)
    assert kit.freeze(model, ["visual", "audio_tower"]) == freeze_modules(reference, ["visual", "audio_tower"])

    layout = kit.media_layout(config, 2, 56, 56, 2.0, 16_000)
    prompt = kit.prompt_inputs(config, layout, 8, torch.Generator().manual_seed(1))
    batch = kit.group_batch([prompt], 2, pad_token_id=0, feature_dtype=torch.bfloat16)
    ids = torch.randint(0, kit.text_vocab(config), (2, 5))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ours = kit.completion_logps(model, batch, ids, mask, 1.0)
        theirs = completion_logps(model, batch, {"use_audio_in_video": True}, ids, mask, 1.0)
    assert torch.equal(ours, theirs)

    sft = {"bf16": True, "learning_rate": 2e-6, "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8,
           "weight_decay": 0.01, "max_grad_norm": 1.0}
    filled = kit.filled_deepspeed_config("zero2_offload", sft, rows=1, hidden=2048)
    assert "auto" not in json.dumps(filled)
    assert filled["zero_optimization"] == {**deepspeed_config("zero2_offload")["zero_optimization"],
                                           "reduce_bucket_size": 2048 * 2048}
    assert filled["optimizer"]["params"]["betas"] == [0.9, 0.999] and filled["gradient_clipping"] == 1.0
