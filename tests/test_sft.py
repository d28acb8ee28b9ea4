"""SFT stage on tiny random models, real synthetic clips and one CPU process."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from sft_fixtures import (build_student_zoo, cpu_sft_config, export_avrt20k_by_the_stages, prepare_synthetic_shard,
                          student_spec, write_avrt20k)

from avrt.core.answers import is_strict_format, strict_answer_letter
from avrt.core.rows import MediaRow, TrainingExample, write_rows
from avrt.models.adapters import get_adapter
from avrt.models.hf_backend import load_processor
from avrt.training.batches import IGNORE_INDEX, SFTCollator
from avrt.core.datasets import read_avrt20k
from avrt.training.data import (
    FORMAT_ONLY_FILLER,
    MediaLookup,
    SFTDataset,
    StudentInputs,
    attach_media,
    examples_from_avrt20k,
    load_examples,
    template_trace,
)
from avrt.core.config import stage_config
from avrt.training.sft import SFTInputs, train_sft

STUDENT = stage_config("student", {})


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    return prepare_synthetic_shard(tmp_path_factory.mktemp("sft_shard"), {"train": 4, "val": 2})


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build_student_zoo(tmp_path_factory.mktemp("sft_zoo"))


@pytest.fixture(scope="module")
def omni_inputs(shard, zoo):
    spec = student_spec(zoo / "qwen2_5_omni")
    return StudentInputs(spec, get_adapter(spec.family), load_processor(spec), MediaLookup([shard.media_index]))


def template_inputs(shard) -> SFTInputs:
    return SFTInputs(train=[str(shard.manifest)], val=[str(shard.manifest)], media_indexes=[str(shard.media_index)])


def thinker_state(path) -> dict[str, torch.Tensor]:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path, dtype=torch.float32).state_dict()


# ---- data --------------------------------------------------------------------------------------
def test_template_traces_are_strict_and_carry_the_ground_truth(shard):
    examples = load_examples("template", [shard.manifest], "train")
    assert len(examples) == len(shard.qa_rows("train")) > 0
    for ex, row in zip(examples, shard.qa_rows("train")):
        assert isinstance(ex, TrainingExample) and ex.sample_id == row.sample_id
        assert is_strict_format(ex.completion)
        assert strict_answer_letter(ex.completion) == row.gold_letter == ex.gold_letter
        assert row.choices[row.answer_index] in ex.completion
    assert {ex.sample_id for ex in load_examples("template", [shard.manifest], "val")} == \
           {r.sample_id for r in shard.qa_rows("val")}


def test_sft_targets_of_the_controls_come_from_the_exported_rows_fake_backend(shard, omni_inputs, tmp_path):
    """sft.data.target on AVRT-20K rows the trace stages wrote: trace is the row's av_reasoning,
    answer_only its ground-truth letter alone, format_only the strict format around the one filler
    with that letter (paper Table 0.A.2); SFT labels exactly that target and its end-of-turn token."""
    train = export_avrt20k_by_the_stages(shard, tmp_path)
    rows = read_avrt20k(train)
    assert len(rows) == len(shard.qa_rows("train")) + len(shard.qa_rows("val")) > 1
    targets = {t: load_examples("avrt20k", [train], "train", target=t) for t in ("trace", "answer_only", "format_only")}
    for i, row in enumerate(rows):
        trace, answer, form = (targets[t][i] for t in ("trace", "answer_only", "format_only"))
        assert trace.completion == row.av_reasoning and row.sample_id in trace.completion
        assert answer.completion == row.answer and len(answer.completion) == 1
        assert form.completion == f"<think>{FORMAT_ONLY_FILLER}</think><answer>{row.answer}</answer>"
        assert is_strict_format(form.completion) and strict_answer_letter(form.completion) == row.answer
        assert trace.replace(completion=None) == answer.replace(completion=None) == form.replace(completion=None)
    for target in ("answer_only", "format_only"):
        item = omni_inputs.encode_sft(targets[target][0])
        labelled = item["labels"] != IGNORE_INDEX
        assert omni_inputs.tokenizer.decode(item["input_ids"][labelled]) == targets[target][0].completion + "<|im_end|>"
    with pytest.raises(ValueError, match=r"config key 'sft.data.target': unknown target 'letters'"):
        load_examples("avrt20k", [train], "train", target="letters")


def test_labels_cover_exactly_the_assistant_trace_and_its_end_of_turn(shard, omni_inputs):
    examples = load_examples("template", [shard.manifest], "train")[:2]
    items = [omni_inputs.encode_sft(ex) for ex in examples]
    tokenizer = omni_inputs.tokenizer
    for ex, item in zip(examples, items):
        labelled = item["labels"] != IGNORE_INDEX
        assert tokenizer.decode(item["input_ids"][labelled]) == ex.completion + "<|im_end|>"
        # labels are the input ids themselves (the model shifts them), on one contiguous tail
        assert torch.equal(item["labels"][labelled], item["input_ids"][labelled])
        first = int(labelled.nonzero()[0])
        assert labelled[first:].all() and not labelled[:first].any()
        prompt = tokenizer.decode(item["input_ids"][:first])
        assert prompt.endswith("<|im_start|>assistant\n") and ex.question in prompt
        # every media placeholder token sits in the unlabelled prompt
        for token in ("<|VIDEO|>", "<|AUDIO|>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            assert (item["input_ids"][:first] == token_id).sum() > 0
            assert not (item["input_ids"][labelled] == token_id).any()

    shorter = replace(examples[1], completion="<think>x</think><answer>A</answer>")
    batch = SFTCollator(tokenizer.pad_token_id, torch.float32)([items[0], omni_inputs.encode_sft(shorter)])
    lengths = [items[0]["input_ids"].shape[0], batch["attention_mask"][1].sum().item()]
    assert batch["input_ids"].shape == (2, max(lengths))
    short = min(range(2), key=lambda i: lengths[i])
    pad = batch["attention_mask"][short] == 0
    assert pad.sum() == abs(lengths[0] - lengths[1]) > 0
    assert (batch["labels"][short][pad] == IGNORE_INDEX).all()
    assert (batch["input_ids"][short][pad] == tokenizer.pad_token_id).all()
    assert batch["use_audio_in_video"] is True
    assert batch["video_grid_thw"].shape[0] == batch["input_features"].shape[0] == 2


def test_media_go_in_at_the_clips_own_frame_rate(shard, omni_inputs):
    """Qwen2.5-Omni aligns video with audio by time: 4 frames over 4 s is 1 fps, not its default 2."""
    example = load_examples("template", [shard.manifest], "train")[0]
    item = omni_inputs.encode_sft(example)
    clip = omni_inputs.media.load(example.video_name)
    assert clip.frames.shape[0] == 4 and clip.frames_fps == pytest.approx(1.0)
    temporal_patch = omni_inputs.processor.video_processor.temporal_patch_size
    assert item["video_second_per_grid"].tolist() == pytest.approx([temporal_patch / clip.frames_fps])
    assert item["video_grid_thw"][0, 0] == clip.frames.shape[0] // temporal_patch
    # the audio features cover the clip's 4 s of 16 kHz audio (Whisper frames of 10 ms)
    assert item["feature_attention_mask"].sum() == pytest.approx(clip.audio.size / 160, abs=1)


def test_examples_without_prepared_media_are_counted_and_left_out(shard, tmp_path):
    rows = shard.qa_rows("train")
    lost = rows[0].replace(video_name="SYNGONE0000000_000000")
    failed_index = tmp_path / "failed.jsonl"
    write_rows(failed_index, [MediaRow(video_name="SYNBROKEN", clip_path="SYNBROKEN.mp4", params="x", status="failed",
                                       reason="media_failed", detail="DecordError: cannot decode")])
    broken = rows[1].replace(video_name="SYNBROKEN")
    path = write_avrt20k(tmp_path / "train.jsonl", [*rows, lost, broken],
                         lambda r: template_trace(r.choices, r.answer_index))
    kept, skipped = attach_media(examples_from_avrt20k([path]), MediaLookup([shard.media_index, failed_index]))
    assert len(kept) == len(rows)
    assert skipped == {"not_in_media_index": 1, "media_media_failed": 1}
    refs = shard.clip_refs()
    assert all(ex.clip == refs[ex.video_name] for ex in kept)  # each kept example holds its clip


def test_examples_take_the_clip_their_row_carries(shard, omni_inputs, tmp_path):
    """Our exports carry each row's clip: training reads it from there, no media index needed."""
    rows = shard.qa_rows("train")
    refs = shard.clip_refs()
    failed = MediaRow(video_name=rows[1].video_name, clip_path="x.mp4", params="x", status="failed",
                      reason="media_failed", detail="DecordError")
    clips = {**refs, rows[1].video_name: refs[rows[1].video_name].replace(media=failed)}
    path = write_avrt20k(tmp_path / "train.jsonl", rows, lambda r: template_trace(r.choices, r.answer_index), clips)
    examples = examples_from_avrt20k([path])
    assert [ex.clip for ex in examples] == [clips[r.video_name] for r in rows]
    assert [ex.gold_letter for ex in examples] == [r.gold_letter for r in rows]
    # the row's own (failed) clip wins over a prepared one in the media indexes
    kept, skipped = attach_media(examples, MediaLookup([shard.media_index]))
    assert skipped == {"media_media_failed": sum(r.video_name == rows[1].video_name for r in rows)}
    ok = [ex for ex in examples if ex.clip.media.ok]
    kept, skipped = attach_media(ok, MediaLookup([]))
    assert kept == ok and not skipped
    inputs = StudentInputs(omni_inputs.spec, omni_inputs.adapter, omni_inputs.processor, MediaLookup([]))
    request = inputs.request(kept[0])
    assert request.media.video_name == kept[0].video_name and request.modalities == ("frames", "audio")
    assert torch.equal(inputs.encode_sft(kept[0])["input_ids"], omni_inputs.encode_sft(kept[0])["input_ids"])


def test_released_schema_parquet_is_read_as_given(shard, tmp_path):
    import pandas as pd

    rows = shard.qa_rows("train")[:3]
    released = pd.DataFrame([{"sample_id": r.sample_id, "video_name": r.video_name,
                              "question": r.question, "choices": list(r.choices), "answer": r.gold_letter,
                              "question_relation": "Both", "question_type": "Which",
                              "av_reasoning": " <think>t</think><answer>A</answer>\n"} for r in rows])
    released.to_parquet(tmp_path / "af3_kimivl.parquet")
    examples = load_examples("released", [tmp_path / "af3_kimivl.parquet"], "train")
    assert [e.sample_id for e in examples] == [r.sample_id for r in rows]
    assert all(e.completion == "<think>t</think><answer>A</answer>" and isinstance(e.choices, tuple) for e in examples)
    assert all(e.clip is None for e in examples)  # found by video_name in the media indexes
    kept, _ = attach_media(examples, MediaLookup([shard.media_index]))
    assert [e.clip for e in kept] == [shard.clip_refs()[r.video_name] for r in rows]


# ---- training ------------------------------------------------------------------------------------
def test_training_lowers_the_loss_and_leaves_frozen_encoders_bit_identical(shard, zoo, tmp_path):
    base = zoo / "qwen2_5_omni"
    final = tmp_path / "sft" / "final"
    summary = train_sft(cpu_sft_config(data={"source": "template"}, max_steps=12, learning_rate=2.0e-3),
                        STUDENT, student_spec(base), template_inputs(shard), final)
    losses = [p["loss"] for p in summary["loss_curve"]]
    assert summary["global_steps"] == 12 and len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1
    assert summary["eval_loss"] is not None and summary["examples"] == {"train": 12, "val": 6}

    before, after = thinker_state(base), thinker_state(final)
    assert before.keys() == after.keys()
    frozen = [k for k in before if f".{k}".count(".visual.") or f".{k}".count(".audio_tower.")]
    trained = [k for k in before if k not in frozen]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert sum(not torch.equal(before[k], after[k]) for k in trained) >= len(trained) - 2  # lm weights moved
    assert summary["frozen_parameters"]["visual"] == sum(before[k].numel() for k in frozen if f".{k}".count(".visual."))


def test_final_checkpoint_loads_through_the_model_layer(shard, zoo, tmp_path):
    from avrt.models.backends import load_model

    final = tmp_path / "final"
    train_sft(cpu_sft_config(data={"source": "template"}, max_steps=2), STUDENT,
              student_spec(zoo / "qwen2_5_omni"), template_inputs(shard), final)
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
            "chat_template.jinja", "sft_summary.json"} <= {p.name for p in final.iterdir()}
    spec = student_spec(final, sampling={"temperature": 0.0, "max_new_tokens": 4})
    backend = load_model(spec)
    inputs = StudentInputs(spec, backend.adapter, backend.processor, MediaLookup([shard.media_index]))
    example: TrainingExample = load_examples("template", [shard.manifest], "val")[0]
    [completion] = backend.generate([inputs.request(example)])
    assert completion.completion_tokens >= 1 and completion.prompt_tokens > 100


def test_resume_after_preemption_continues_the_same_schedule_and_data_order(shard, zoo, tmp_path, monkeypatch):
    from transformers import TrainerCallback

    seen: list[str] = []
    original = SFTDataset.__getitem__
    monkeypatch.setattr(SFTDataset, "__getitem__", lambda self, i: (seen.append(self.examples[i].sample_id),
                                                                    original(self, i))[1])

    class Record(TrainerCallback):
        def __init__(self, crash_at=None):
            self.logs, self.crash_at = {}, crash_at

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == self.crash_at:
                raise RuntimeError("preempted")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in logs:
                self.logs[state.global_step] = (logs["learning_rate"], logs["loss"])

    config = cpu_sft_config(data={"source": "template"}, max_steps=6, save_steps=3, warmup_steps=2)
    spec, inputs = student_spec(zoo / "qwen2_5_omni"), template_inputs(shard)
    straight = Record()
    train_sft(config, STUDENT, spec, inputs, tmp_path / "a" / "final", callbacks=[straight])
    order_straight = list(seen)

    seen.clear()
    with pytest.raises(RuntimeError, match="preempted"):
        train_sft(config, STUDENT, spec, inputs, tmp_path / "b" / "final", callbacks=[Record(crash_at=3)])
    assert (tmp_path / "b" / "checkpoint-3" / "trainer_state.json").is_file()
    assert not (tmp_path / "b" / "final").exists()
    seen.clear()
    resumed = Record()
    summary = train_sft(config, STUDENT, spec, inputs, tmp_path / "b" / "final", callbacks=[resumed])

    assert summary["resumed_from"] == str(tmp_path / "b" / "checkpoint-3")
    assert sorted(resumed.logs) == [4, 5, 6]
    for step in (4, 5, 6):
        lr, loss = resumed.logs[step]
        assert lr == pytest.approx(straight.logs[step][0], rel=1e-9)
        assert loss == pytest.approx(straight.logs[step][1], rel=1e-4)  # same weights and optimizer state
    assert seen[:3] == order_straight[3:6]  # the data order goes on where it stopped
    a, b = thinker_state(tmp_path / "a" / "final"), thinker_state(tmp_path / "b" / "final")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_a_resumed_run_summarises_the_whole_run_as_an_uninterrupted_one_does(shard, zoo, tmp_path):
    """Logging every 2 steps and saving every 3: the resumed attempt's summary still covers steps 1 to 6."""
    from transformers import TrainerCallback

    class Preempt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 3:  # checkpoint-3 was written, step 4 never ends
                raise RuntimeError("preempted")

    class TrainerLoss(TrainerCallback):
        """The Trainer's own mean loss over the steps of one `train()` call."""

        value = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if "train_loss" in logs:
                self.value = logs["train_loss"]

    config = cpu_sft_config(data={"source": "template"}, max_steps=6, save_steps=3, logging_steps=2)
    spec, inputs = student_spec(zoo / "qwen2_5_omni"), template_inputs(shard)
    trainer_loss = TrainerLoss()
    straight = train_sft(config, STUDENT, spec, inputs, tmp_path / "a" / "final", callbacks=[trainer_loss])
    with pytest.raises(RuntimeError, match="preempted"):
        train_sft(config, STUDENT, spec, inputs, tmp_path / "b" / "final", callbacks=[Preempt()])
    resumed = train_sft(config, STUDENT, spec, inputs, tmp_path / "b" / "final")

    assert resumed["resumed_from"] == str(tmp_path / "b" / "checkpoint-3")
    assert straight["train_loss"] == pytest.approx(trainer_loss.value, rel=1e-6)
    assert resumed["train_loss"] == straight["train_loss"]
    # a checkpoint ends a logging window, so the resumed attempt logs the windows the straight run logs
    assert [p["step"] for p in straight["loss_curve"]] == [1, 2, 3, 4, 6]
    assert resumed["loss_curve"] == straight["loss_curve"]


def test_rerunning_a_finished_run_changes_nothing_and_an_unpublished_one_is_only_published(shard, zoo, tmp_path):
    """max_steps 3 ends inside an epoch of 8 batches: resumed from checkpoint-3, the Trainer would train a step 4."""
    import shutil

    config = cpu_sft_config(data={"source": "template"}, max_steps=3, save_steps=2, lr_scheduler="constant_with_warmup",
                            warmup_steps=0)
    spec, inputs = student_spec(zoo / "qwen2_5_omni"), template_inputs(shard)
    final = tmp_path / "final"
    summary = train_sft(config, STUDENT, spec, inputs, final)
    weights = final / "model.safetensors"
    published = (weights.read_bytes(), weights.stat().st_mtime_ns)

    def checkpoints():
        return sorted(p.name for p in tmp_path.glob("checkpoint-*"))

    assert checkpoints() == ["checkpoint-2", "checkpoint-3"]
    assert train_sft(config, STUDENT, spec, inputs, final) == summary  # finished: nothing to do
    assert (weights.read_bytes(), weights.stat().st_mtime_ns) == published
    assert checkpoints() == ["checkpoint-2", "checkpoint-3"]

    # killed after its last checkpoint, while publishing final/
    shutil.rmtree(final)
    (tmp_path / ".final.partial").mkdir()
    republished = train_sft(config, STUDENT, spec, inputs, final)
    assert checkpoints() == ["checkpoint-2", "checkpoint-3"]
    assert republished["resumed_from"] == str(tmp_path / "checkpoint-3")
    assert {**republished, "resumed_from": None} == summary
    assert weights.read_bytes() == published[0]


def test_lora_trains_adapters_only_and_saves_a_merged_qwen2_audio(shard, zoo, tmp_path):
    from transformers import Qwen2AudioForConditionalGeneration

    base = zoo / "qwen2_audio"
    config = cpu_sft_config(data={"source": "template"}, max_steps=3, learning_rate=1.0e-2,
                            lora={"r": 8, "alpha": 16})
    summary = train_sft(config, STUDENT, student_spec(base, family="qwen2_audio"), template_inputs(shard),
                        tmp_path / "final")
    counts = summary["parameters"]
    assert 0 < counts["trainable"] < counts["total"] / 5
    assert summary["frozen_parameters"]["visual"] == 0 and summary["frozen_parameters"]["audio_tower"] > 0

    before = Qwen2AudioForConditionalGeneration.from_pretrained(base).state_dict()
    after = Qwen2AudioForConditionalGeneration.from_pretrained(tmp_path / "final").state_dict()
    assert before.keys() == after.keys()  # merged: a plain checkpoint, no adapter weights
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"))
                           and "audio_tower" not in k for k in changed)


def test_a_misspelt_freeze_name_is_an_error(zoo):
    from avrt.training.student import freeze_modules, load_student

    spec = student_spec(zoo / "qwen2_5_omni")
    model = load_student(spec, get_adapter(spec.family))
    with pytest.raises(ValueError, match=r"student\.freeze.*\['visaul'\]"):
        freeze_modules(model, ["visaul"])


# ---- launch, DeepSpeed, checkpoints ------------------------------------------------------------------
def test_launch_prefix_starts_one_process_per_gpu():
    from avrt.training.launch import launch_prefix, slurm_resources

    assert launch_prefix(1, 1) == "avrt"
    assert launch_prefix(4, 1) == "torchrun --standalone --nproc-per-node 4 -m avrt"
    multi = launch_prefix(4, 2)
    assert multi.startswith("srun --nodes 2 --ntasks-per-node 1 ")
    assert "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d" in multi
    assert '--rdzv-endpoint "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)":29500' in multi
    assert multi.endswith("-m avrt")
    assert slurm_resources(4, 1) == {"gpu": 4}
    assert slurm_resources(4, 2) == {"nodes": 2, "mpi": "srun", "tasks": 8, "slurm_extra": "--gpus-per-node=4"}
    with pytest.raises(ValueError):
        launch_prefix(0, 1)


def test_deepspeed_config_follows_the_preset_and_leaves_values_to_the_trainer():
    from avrt.training.launch import deepspeed_config

    offload = deepspeed_config("zero2_offload")
    assert offload["zero_optimization"]["stage"] == 2
    assert offload["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "offload_optimizer" not in deepspeed_config("zero2")["zero_optimization"]
    # the config's sft values reach DeepSpeed through the training arguments, never twice
    assert offload["optimizer"]["params"] == {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}
    assert offload["train_micro_batch_size_per_gpu"] == offload["gradient_accumulation_steps"] == "auto"
    with pytest.raises(ValueError, match="sft.deepspeed"):
        deepspeed_config("zero3")


def test_a_deepspeed_preset_without_the_package_fails_before_loading_anything(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a))
    with pytest.raises(RuntimeError, match="sft.deepspeed.*not installed"):
        train_sft(cpu_sft_config(deepspeed="zero2_offload"), STUDENT, student_spec(tmp_path / "none"),
                  SFTInputs(train=[], media_indexes=[]), tmp_path / "final")


def test_checkpoint_dir_resumes_complete_checkpoints_of_the_same_run_only(tmp_path):
    from avrt.training.checkpoints import prepare_run_dir

    def checkpoint(step, complete):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text("{}")
        return path

    run = {"sft": {"learning_rate": 1e-3}, "train_digest": "abc"}
    assert prepare_run_dir(tmp_path, run) is None
    two, four, six = checkpoint(2, True), checkpoint(4, True), checkpoint(6, False)  # six: cut short mid-save
    assert prepare_run_dir(tmp_path, run) == four
    assert two.exists() and four.exists() and not six.exists()
    assert prepare_run_dir(tmp_path, {**run, "train_digest": "other"}) is None  # other data: start afresh
    assert not two.exists() and not four.exists()
    assert json.loads((tmp_path / "run.json").read_text())["train_digest"] == "other"


def test_a_starting_checkpoint_retrained_under_the_same_path_is_a_new_run(tmp_path):
    """GRPO after a rerun of SFT reads the same path with new weights: it must not resume into them."""
    import os

    from avrt.training.checkpoints import prepare_run_dir
    from avrt.training.student import student_record

    start = tmp_path / "sft_final"
    start.mkdir()
    (start / "model.safetensors").write_bytes(b"v1")
    spec = student_spec(start)
    out = tmp_path / "grpo"
    prepare_run_dir(out, {"student": student_record(spec, {"freeze": []})})
    (out / "checkpoint-6").mkdir()
    (out / "checkpoint-6" / "trainer_state.json").write_text("{}")
    assert prepare_run_dir(out, {"student": student_record(spec, {"freeze": []})}) == out / "checkpoint-6"
    (start / "model.safetensors").write_bytes(b"v2")
    os.utime(start / "model.safetensors", ns=(1, 1))
    assert prepare_run_dir(out, {"student": student_record(spec, {"freeze": []})}) is None
    assert not (out / "checkpoint-6").exists()


def test_sft_command_reads_the_run_config(tmp_path, monkeypatch):
    """`avrt sft --config`: the sft and student blocks and the student's model spec come from the file."""
    import yaml

    from avrt.cli import main
    from avrt.training import sft as sft_module

    config = {"run": "t", "models": {"tiny": {"family": "qwen2_5_omni", "checkpoint": str(tmp_path / "ckpt")}},
              "student": {"model": "tiny", "freeze": ["visual"]}, "sft": {"max_steps": 3, "deepspeed": None},
              "evaluation": {"models": {}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    calls = []
    monkeypatch.setattr(sft_module, "train_sft", lambda *args: calls.append(args))
    assert main(["sft", "--config", str(tmp_path / "config.yaml"), "--train", "t.jsonl", "--media", "m.jsonl",
                 "--out", str(tmp_path / "final")]) == 0
    [(sft, student, spec, inputs, out, checkpoints)] = calls
    assert sft == stage_config("sft", {"max_steps": 3, "deepspeed": None})
    assert student == {"model": "tiny", "freeze": ["visual"]}
    assert (spec.name, spec.family, spec.checkpoint) == ("tiny", "qwen2_5_omni", str(tmp_path / "ckpt"))
    assert inputs == SFTInputs(train=["t.jsonl"], val=[], media_indexes=["m.jsonl"]) and checkpoints is None
