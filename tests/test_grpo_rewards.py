"""GRPO reward components (AVRT Eq. 3-6): format, accuracy, length, and their selection from config."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from avrt.core.config import load_config
from avrt.training.rewards import (
    REWARD_FACTORIES,
    RewardBreakdown,
    accuracy_reward,
    build_rewards,
    format_reward,
    length_reward,
    make_reward,
    register_reward,
    score_completions,
    think_word_count,
)

REPO = Path(__file__).resolve().parents[1]
FORMAT, ACCURACY, LENGTH = format_reward(), accuracy_reward(), length_reward()  # paper values, b = 0.5


def words(n: int, sep: str = " ") -> str:
    return sep.join(f"w{i}" for i in range(n))


def output(think: str, answer: str = "B") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


G_99, G_100, G_200, G_201 = (math.exp(-((w - 100) ** 2) / 800) for w in (99, 100, 200, 201))
EMPTY = math.exp(-12.5)  # w = 0: (0 - 100)^2 / (2 * 20^2)

# (completion, ground-truth letter, n_options, format, accuracy, length)
CASES = {
    "well formed, 100 words": (output(words(100)), "B", 4, 1, 1, 1.0),
    "wrong letter": (output(words(100), "C"), "B", 4, 1, 0, 1.0),
    "99 words: no bonus": (output(words(99)), "B", 4, 1, 1, G_99),
    "200 words: bonus": (output(words(200)), "B", 4, 1, 1, G_200 + 0.5),
    "201 words: no bonus": (output(words(201)), "B", 4, 1, 1, G_201),
    "empty think": (output(""), "B", 4, 1, 1, EMPTY),
    "whitespace-only think": (output(" \n\t "), "B", 4, 1, 1, EMPTY),
    "tabs, newlines, runs of spaces count as one separator": (
        output("\n  " + words(100, sep=" \t\n  ") + "  \n"), "B", 4, 1, 1, 1.0),
    "whitespace around and between blocks": (
        "\n  <think>" + words(99) + "</think>\n\n<answer>\n B \n</answer>\n", "B", 4, 1, 1, G_99),
    "answer as option text": (output(words(100), "a dog barking"), "B", 4, 1, 0, 1.0),
    "letter followed by option text": (output(words(100), "B) a dog barking"), "B", 4, 1, 0, 1.0),
    "lower-case letter": (output(words(100), "b"), "B", 4, 1, 0, 1.0),
    "letter in parentheses": (output(words(100), "(B)"), "B", 4, 1, 1, 1.0),
    "letter with a full stop": (output(words(100), "B."), "B", 4, 1, 1, 1.0),
    "letter beyond the item's options": (output(words(100), "E"), "E", 4, 1, 0, 1.0),
    "missing </think>": ("<think>" + words(100) + "<answer>B</answer>", "B", 4, 0, 1, 0.0),
    "missing <think>": (words(100) + "</think><answer>B</answer>", "B", 4, 0, 1, 0.0),
    "missing answer tags": ("<think>" + words(100) + "</think>B", "B", 4, 0, 0, 0.0),
    "no tags at all": ("The answer is B.", "B", 4, 0, 0, 0.0),
    "repeated think block": (
        "<think>" + words(50) + "</think><think>" + words(50) + "</think><answer>B</answer>", "B", 4, 0, 1, 0.0),
    "repeated answer block": (output(words(100)) + "<answer>B</answer>", "B", 4, 0, 0, 0.0),
    "text before the think block": ("Sure. " + output(words(100)), "B", 4, 0, 1, 0.0),
    "text after the answer block": (output(words(100)) + " Done.", "B", 4, 0, 1, 0.0),
    "upper-case tags": ("<THINK>" + words(100) + "</THINK><ANSWER>B</ANSWER>", "B", 4, 0, 0, 0.0),
}


@pytest.mark.parametrize(("text", "label", "n_options", "fmt", "acc", "length"), CASES.values(), ids=CASES.keys())
def test_reward_components(text, label, n_options, fmt, acc, length):
    assert FORMAT([text]) == [fmt]
    assert ACCURACY([text], answer=[label], n_options=[n_options]) == [acc]
    assert LENGTH([text]) == [pytest.approx(length, rel=1e-12, abs=1e-15)]


def test_length_window_edges_and_cap():
    # 100 words: Gaussian peak 1 + bonus, capped at 1; b = 0 leaves the plain Gaussian.
    assert length_reward(bonus=0.0)([output(words(150))]) == [pytest.approx(math.exp(-3.125))]
    assert length_reward(bonus=0.5)([output(words(150))]) == [pytest.approx(math.exp(-3.125) + 0.5)]
    assert length_reward(bonus=0.5)([output(words(110))]) == [1.0]
    assert length_reward(bonus=0.0)([output(words(110))]) == [pytest.approx(math.exp(-0.125))]
    narrow = length_reward(mu=10, sigma=2, w_min=8, w_max=12, bonus=0.25)
    assert narrow([output(words(8)), output(words(7)), output(words(13))]) == pytest.approx(
        [math.exp(-4 / 8) + 0.25, math.exp(-9 / 8), math.exp(-9 / 8)])


def test_think_word_count_needs_the_strict_format():
    assert think_word_count(output("one two\nthree\tfour")) == 4
    assert think_word_count(output("")) == 0
    assert think_word_count("<think>one two</think>B") is None


def test_accuracy_compares_with_the_named_label_column():
    # SightSound-R1: reward agreement with the teacher's label, not the ground truth.
    teacher = accuracy_reward(label_column="teacher_answer")
    texts = [output("x", "A"), output("x", "C")]
    assert teacher(texts, answer=["C", "C"], teacher_answer=["A", "A"]) == [1.0, 0.0]
    assert ACCURACY(texts, answer=["C", "C"], teacher_answer=["A", "A"]) == [0.0, 1.0]


def test_accuracy_without_n_options_accepts_any_letter():
    assert ACCURACY([output("x", "E")], answer=["E"]) == [1.0]
    assert ACCURACY([output("x", "E")], answer=["E"], n_options=[5]) == [1.0]
    assert ACCURACY([output("x", "E")], answer=["E"], n_options=[4]) == [0.0]


def test_accuracy_rejects_missing_or_malformed_labels():
    with pytest.raises(KeyError, match="'answer'.*got columns \\['n_options'\\]"):
        ACCURACY([output("x")], n_options=[4])
    with pytest.raises(ValueError, match="completion 1: column 'answer' holds 'cat'"):
        ACCURACY([output("x"), output("x")], answer=["B", "cat"])
    with pytest.raises(ValueError, match="column 'answer' has 1 values for 2 completions"):
        ACCURACY([output("x"), output("x")], answer=["B"])


def test_rewards_reject_non_string_completions():
    with pytest.raises(TypeError, match="format reward: completion 0 is list"):
        FORMAT([[{"role": "assistant", "content": output("x")}]])


def test_rewards_take_trl_style_keyword_calls():
    # TRL's GRPOTrainer calls reward(prompts=..., completions=..., completion_ids=..., **columns, ...).
    kwargs = dict(prompts=["q", "q"], completions=[output(words(100)), "B"], completion_ids=[[1], [2]],
                  answer=["B", "B"], n_options=[4, 4], trainer_state=None)
    assert FORMAT(**kwargs) == [1.0, 0.0]
    assert ACCURACY(**kwargs) == [1.0, 0.0]
    assert LENGTH(**kwargs) == [1.0, 0.0]
    assert [f.__name__ for f in (FORMAT, ACCURACY, LENGTH)] == ["format", "accuracy", "length"]


def test_registry_names_and_unknown_name():
    assert sorted(REWARD_FACTORIES) == ["accuracy", "format", "length"]
    assert make_reward("length", mu=10, sigma=5, w_min=10, w_max=20, bonus=0.0)([output(words(10))]) == [1.0]
    with pytest.raises(ValueError, match=r"unknown reward 'lenght'; known rewards: \['accuracy', 'format', 'length'\]"):
        make_reward("lenght")


def test_a_registered_reward_is_built_by_name_and_a_name_is_taken_once(monkeypatch):
    monkeypatch.setattr("avrt.training.rewards.REWARD_FACTORIES", dict(REWARD_FACTORIES))
    from avrt.training import rewards

    @register_reward("brevity")
    def brevity_reward(limit: int = 3):
        def reward(completions, **_columns):
            return [1.0 if len(text.split()) <= limit else 0.0 for text in completions]
        return reward

    assert rewards.REWARD_FACTORIES["brevity"] is brevity_reward
    assert build_rewards({"rewards": ["brevity"], "brevity_reward": {"limit": 1}})["brevity"](["a", "a b"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="reward 'format' is already registered"):
        register_reward("format")(format_reward)
    assert rewards.REWARD_FACTORIES["format"] is format_reward


@pytest.mark.parametrize(("params", "message"), [
    ({"sigma": 0}, "sigma must be > 0"),
    ({"w_min": 201, "w_max": 200}, "w_min .* must not exceed w_max"),
    ({"bonus": -0.1}, "bonus must be >= 0"),
])
def test_length_reward_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        length_reward(**params)


def test_build_rewards_from_the_paper_config_sums_components():
    grpo = load_config(REPO / "config" / "config.yaml")["grpo"]
    rewards = build_rewards(grpo)
    assert list(rewards) == grpo["rewards"] == ["format", "accuracy", "length"]
    texts = [output(words(100), "B"), output(words(200), "C"), "B"]
    scored = score_completions(rewards, texts, answer=["B", "B", "B"], n_options=[4, 4, 4])
    assert scored.components == {
        "format": [1.0, 1.0, 0.0],
        "accuracy": [1.0, 0.0, 0.0],
        "length": [1.0, pytest.approx(G_200 + grpo["length_reward"]["bonus"]), 0.0],
    }
    assert scored.total == pytest.approx([3.0, 1.5 + G_200, 0.0])
    means = scored.means()
    assert means["reward"] == pytest.approx((4.5 + G_200) / 3)
    assert means["rewards/accuracy"] == pytest.approx(1 / 3)


def test_build_rewards_follows_the_length_settings_and_ablation():
    grpo = {"rewards": ["format", "accuracy"], "length_reward": {"mu": 100, "sigma": 20}}
    scored = score_completions(build_rewards(grpo), [output(words(100))], answer=["B"])
    assert list(scored.components) == ["format", "accuracy"]
    assert scored.total == [2.0]
    custom = {"rewards": ["length"], "length_reward": {"mu": 10, "sigma": 5, "w_min": 0, "w_max": 5, "bonus": 0.3}}
    assert score_completions(build_rewards(custom), [output(words(4))]).total == pytest.approx(
        [math.exp(-36 / 50) + 0.3])


def test_build_rewards_label_column_for_teacher_labels():
    rewards = build_rewards({"rewards": ["accuracy"], "length_reward": {}}, label_column="teacher_answer")
    assert score_completions(rewards, [output("x", "D")], teacher_answer=["D"], answer=["A"]).total == [1.0]


def test_build_rewards_reads_the_label_column_from_the_block():
    rewards = build_rewards({"rewards": ["accuracy"], "length_reward": {}, "label_column": "teacher_answer"})
    assert score_completions(rewards, [output("x", "D")], teacher_answer=["D"], answer=["A"]).total == [1.0]
    default = build_rewards({"rewards": ["accuracy"], "length_reward": {}, "label_column": None})
    assert score_completions(default, [output("x", "D")], teacher_answer=["D"], answer=["A"]).total == [0.0]


def test_an_empty_batch_has_nan_means_and_no_totals():
    assert score_completions({"format": FORMAT}, []) == RewardBreakdown(total=[], components={"format": []})
    means = RewardBreakdown(total=[], components={"format": []}).means()
    assert list(means) == ["reward", "rewards/format"] and all(math.isnan(v) for v in means.values())


def test_a_reward_returning_the_wrong_number_of_values_is_an_error():
    def short(completions, **_columns):
        return [1.0]

    with pytest.raises(ValueError, match="reward 'short' returned 1 values for 2 completions"):
        score_completions({"format": FORMAT, "short": short}, [output("x"), output("y")])


@pytest.mark.parametrize(("names", "message"), [
    ([], "grpo.rewards is empty"),
    (["format", "format"], r"lists \['format'\] more than once"),
    (["format", "brevity"], "unknown reward 'brevity'"),
])
def test_build_rewards_rejects_bad_selections(names, message):
    with pytest.raises(ValueError, match=message):
        build_rewards({"rewards": names, "length_reward": {}})
