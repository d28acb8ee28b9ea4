"""The extension steps of CONTRIBUTING.md, followed as written: a benchmark, a reward and a model
family are added through their registries and used through the normal code paths. Every
registration is removed again by its fixture, so no other test sees it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from models_fixtures import make_clip

import avrt.core.config
from avrt.core.config import ConfigError, load_schema, stage_config
from avrt.demo.synthetic_benchmarks import (
    SOUND_QUESTION,
    WRITERS,
    Scenes,
    _write_jsonl,
    _write_wav,
    generate,
    synthetic_layouts,
    synthetic_writer,
)
from avrt.evaluation import load_benchmark, score
from avrt.evaluation.adapters.common import (
    MediaRoot,
    gold_from_text,
    id_field,
    parse_rows,
    read_jsonl_rows,
    require,
    string_list,
)
from avrt.evaluation.official_rules import OfficialJudgement
from avrt.evaluation.records import BenchmarkRecord
from avrt.evaluation.registry import BENCHMARKS, BenchmarkSpec, FileLayout, register_benchmark
from avrt.models.adapters import ADAPTERS, FamilyAdapter, GenerationRequest, get_adapter, register_adapter
from avrt.models.spec import ModelSpec
from avrt.training.rewards import (
    REWARD_FACTORIES,
    RewardFunction,
    build_rewards,
    register_reward,
    score_completions,
    think_word_count,
)


@pytest.fixture
def edit_schema(tmp_path, monkeypatch) -> Callable[[Callable[[dict], None]], None]:
    """Apply an edit to a copy of config.schema.yaml that the config loaders then read (as the
    documented edit of src/avrt/core/schema/config.schema.yaml would); undone after the test."""
    path = tmp_path / "config.schema.yaml"
    schema = load_schema()

    def edit(change: Callable[[dict], None]) -> None:
        change(schema)
        path.write_text(yaml.safe_dump(schema, sort_keys=False))
        monkeypatch.setattr(avrt.core.config, "SCHEMA_PATH", path)

    return edit


# ---- a benchmark ------------------------------------------------------------------------------
TOY = "toybench"


def read_toybench(annotations: Path, media: MediaRoot):
    """Step 1, the reader: one JSONL row per item (id, question, choices, answer text, audio)."""

    def parse(row: dict, rid: str) -> BenchmarkRecord:
        question, audio = require(row, "question", "audio")
        options = tuple(string_list(row.get("choices"), "choices"))
        gold_letter, gold_text = gold_from_text(options, row.get("answer"))
        return BenchmarkRecord(id=rid, benchmark=TOY, question=question, options=options,
                               gold_letter=gold_letter, gold_text=gold_text, audio=media.path(audio))

    return parse_rows(read_jsonl_rows(annotations), id_field("id"), parse)


def judge_toybench(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    """The benchmark's own scorer: the output's first character is the letter."""
    letter = output.strip()[:1] or None
    return OfficialJudgement(letter, letter == record.gold_letter)


def write_toybench(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    """Step 3, the synthetic writer: the clips' sounds, and which object makes each."""
    rows = []
    for i, c in enumerate(scenes.clips):
        _write_wav(media / f"syn_{i}.wav", c.audio)
        rows.append({"id": f"syntoy_{i}", "question": SOUND_QUESTION, "choices": c.sound_choices,
                     "answer": c.sound_class, "audio": f"syn_{i}.wav"})
    _write_jsonl(annotations, rows)


@pytest.fixture
def toybench():
    try:
        spec = register_benchmark(BenchmarkSpec(  # step 2, the registry entry
            TOY, "ToyBench", "extra", read_toybench, judge_toybench, "first character of the output",
            FileLayout("toybench/toybench.jsonl", "toybench/audio"),
        ))
        synthetic_writer(TOY)(write_toybench)
        yield spec
    finally:
        BENCHMARKS.pop(TOY, None)
        WRITERS.pop(TOY, None)


def test_a_new_benchmark_is_synthesised_loaded_and_scored(toybench, tmp_path):
    assert list(synthetic_layouts())[-1] == TOY  # eval-synth (and the demo workflow) now writes it
    files = generate(tmp_path, items=2, seconds=1.0, width=32, height=32, fps=4, benchmarks=[TOY])
    assert files == {TOY: {"annotations": str(tmp_path / "toybench/toybench.jsonl"),
                           "media_dir": str(tmp_path / "toybench/audio")}}
    records, report = load_benchmark(TOY, **files[TOY])
    assert len(records) == 2 and not report.malformed and not report.missing_media
    first, second = records
    wrong = next(letter for letter in second.option_letters if letter != second.gold_letter)
    result = score(records, {first.id: f"<think>It rings.</think><answer>{first.gold_letter}</answer>",
                             second.id: f"<think>It hums.</think><answer>{wrong}</answer>"})
    assert result.benchmark == TOY and result.official_rule == "first character of the output"
    assert result.accuracy("strict") == 0.5
    assert result.accuracy("official") == 0.0  # "<think>..." starts with no option letter


def test_a_registered_benchmark_without_a_synthetic_writer_is_a_clear_error():
    try:
        register_benchmark(BenchmarkSpec(TOY, "ToyBench", "extra", read_toybench, None, "none",
                                         FileLayout("toybench/toybench.jsonl", "toybench/audio")))
        with pytest.raises(LookupError, match=r"'toybench' is registered but has no synthetic writer.*"
                                              r"@synthetic_writer\('toybench'\)"):
            synthetic_layouts()
    finally:
        BENCHMARKS.pop(TOY, None)


def test_a_benchmark_name_is_registered_once():
    with pytest.raises(ValueError, match="'mmar' is already registered"):
        register_benchmark(BENCHMARKS["mmar"])


def test_every_synthetic_benchmark_is_read_by_its_own_adapter(tmp_path):
    """Each registered benchmark's writer puts its files where its layout says its reader looks."""
    files = generate(tmp_path, items=2, seconds=1.0, width=32, height=32, fps=4)
    assert set(files) == {name for name, spec in BENCHMARKS.items() if spec.group != "in_domain"}
    for name, paths in files.items():
        records, report = load_benchmark(name, **paths)
        assert len(records) == 2, name
        assert not report.malformed and not report.missing_media, (name, report)


# ---- a reward ---------------------------------------------------------------------------------
def brevity_reward(max_words: int = 20) -> RewardFunction:
    """Step 1: 1 when the reasoning is at most `max_words` words long, else 0."""

    def reward(completions, **_columns) -> list[float]:
        return [1.0 if (w := think_word_count(text)) is not None and w <= max_words else 0.0 for text in completions]

    reward.__name__ = "toy_brevity"
    return reward


def add_brevity_to_schema(schema: dict) -> None:
    """Step 2: the name in grpo.rewards' enum, and its parameter block grpo.toy_brevity_reward."""
    grpo = schema["properties"]["grpo"]["properties"]
    grpo["rewards"]["items"]["enum"].append("toy_brevity")
    grpo["toy_brevity_reward"] = {
        "type": "object", "additionalProperties": False, "default": {}, "description": "Brevity reward.",
        "properties": {"max_words": {"type": "integer", "minimum": 1, "default": 20, "description": "Word cap."}},
    }


@pytest.fixture
def brevity():
    try:
        yield register_reward("toy_brevity")(brevity_reward)
    finally:
        REWARD_FACTORIES.pop("toy_brevity", None)


def test_a_new_reward_is_selected_by_the_config_and_summed(brevity, edit_schema):
    with pytest.raises(ConfigError, match=r"'toy_brevity' is not one of"):  # known to the config after step 2
        stage_config("grpo", {"rewards": ["toy_brevity"]})
    edit_schema(add_brevity_to_schema)
    grpo = stage_config("grpo", {"rewards": ["format", "toy_brevity"], "toy_brevity_reward": {"max_words": 3}})
    rewards = build_rewards(grpo, label_column=grpo["label_column"])  # as the GRPO trainer builds them
    assert list(rewards) == ["format", "toy_brevity"]
    short, long = "<think>a b c</think><answer>B</answer>", "<think>a b c d</think><answer>B</answer>"
    breakdown = score_completions(rewards, [short, long, "B"], answer=["B", "B", "B"])
    assert breakdown.components["toy_brevity"] == [1.0, 0.0, 0.0]
    assert breakdown.total == [2.0, 1.0, 0.0]


def test_the_config_lists_exactly_the_registered_rewards():
    enum = load_schema()["properties"]["grpo"]["properties"]["rewards"]["items"]["enum"]
    assert set(enum) == set(REWARD_FACTORIES)


def test_a_reward_name_is_registered_once():
    with pytest.raises(ValueError, match="'length' is already registered"):
        register_reward("length")(brevity_reward)


# ---- a model family ---------------------------------------------------------------------------
TOY_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{% if m.content is string %}{{ m.content }}{% else %}"
    "{% for c in m.content %}{% if c.type == 'audio' %}<|audio|>{% else %}{{ c.text }}{% endif %}{% endfor %}"
    "{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture
def toy_family():
    try:
        @register_adapter
        class ToyAudioAdapter(FamilyAdapter):  # step 1
            family = "toy_audio"
            modalities = frozenset({"audio"})
            chat_template = TOY_TEMPLATE
            hf_model_class = "Qwen2AudioForConditionalGeneration"
            end_of_turn = "<|end|>"

            def media_content(self, media):
                return [{"type": "audio"}] if media.has_audio else []

            def hf_processor_kwargs(self, batch):
                kwargs = super().hf_processor_kwargs(batch)
                if batch[0].media.has_audio:
                    kwargs.update(audio=[p.media.audio for p in batch], sampling_rate=batch[0].media.sample_rate)
                return kwargs

            def vllm_multi_modal_data(self, media):
                return {"audio": [(media.audio, media.sample_rate)]} if media.has_audio else {}

        yield ToyAudioAdapter
    finally:
        ADAPTERS.pop("toy_audio", None)


def add_toy_family_to_schema(schema: dict) -> None:
    """Step 2: the family name in $defs/model_spec/properties/family/enum."""
    schema["$defs"]["model_spec"]["properties"]["family"]["enum"].append("toy_audio")


def test_a_new_family_renders_its_prompts(toy_family, edit_schema):
    entry = {"family": "toy_audio", "checkpoint": "tiny/toy_audio", "system_prompt": "Be brief."}
    with pytest.raises(ConfigError, match=r"'family': 'toy_audio' is not one of"):  # known after step 2
        ModelSpec.from_config("toy", entry)
    edit_schema(add_toy_family_to_schema)
    spec = ModelSpec.from_config("toy", entry)
    adapter = get_adapter(spec.family)
    assert isinstance(adapter, toy_family)
    request = GenerationRequest("q1", "What makes the sound?", make_clip("a", seconds=2.0), ("audio",))
    prepared = adapter.prepare(request, spec)
    assert prepared.text == ("<|system|>Be brief.<|end|>\n<|user|><|audio|>What makes the sound?<|end|>\n"
                             "<|assistant|>")
    assert prepared.media.has_audio and not prepared.media.has_frames
    assert len(prepared.media.audio) == 2 * prepared.media.sample_rate
    vllm = adapter.vllm_request(prepared)
    assert vllm["prompt"] == prepared.text and np.array_equal(vllm["multi_modal_data"]["audio"][0][0],
                                                              prepared.media.audio)
    assert adapter.hf_processor_kwargs([prepared])["sampling_rate"] == prepared.media.sample_rate
    with pytest.raises(ValueError, match=r"request 'q2': family 'toy_audio' cannot take \['frames'\]"):
        adapter.prepare(GenerationRequest("q2", "Q?", make_clip("b"), ("frames",)), spec)


def test_a_family_is_registered_once():
    with pytest.raises(ValueError, match="'qwen2_audio' is already registered"):
        register_adapter(type(ADAPTERS["qwen2_audio"]))
