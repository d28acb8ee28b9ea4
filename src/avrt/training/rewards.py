"""GRPO reward components: format, accuracy and reasoning length (AVRT Eq. 3-6; SightSound-R1 Sec. 3.3).

Every reward is a function ``f(completions: list[str], **columns) -> list[float]``. TRL's
GRPOTrainer calls reward functions with keywords only (``prompts=``, ``completions=``,
``completion_ids=`` and one list per dataset column, already repeated once per completion), so
these functions fit there as well as into our own trainer; unused keywords are ignored.

- ``format``: 1 when the completion is exactly ``<think>...</think><answer>...</answer>`` with no
  repeated opening tag (`avrt.core.answers.is_strict_format`, the check evaluation uses), else 0.
- ``accuracy``: 1 when the letter in the single ``<answer>`` block (`avrt.core.answers.strict_answer_letter`:
  ``B``, ``(B)`` or ``B.``; a lower-case letter, option text or a letter beyond the item's options
  give no letter) equals the label column, else 0. AVRT compares with the ground truth
  (column ``answer``); SightSound-R1 rewards agreement with the teacher's label, i.e. the same
  function built with ``label_column`` naming the teacher-label column. The think block is not
  required here: format compliance is the format reward's job, and the paper sums the two.
- ``length``: R_len = min(1, exp(-(w - mu)^2 / (2 sigma^2)) + b * 1[w_min <= w <= w_max]) with w
  the number of whitespace-separated words (``str.split()``: spaces, tabs and newlines all
  separate) inside ``<think>``. A completion that is not in the strict format has no well-defined
  reasoning block and gets 0, so the length reward never pays for malformed output. An empty
  think block has w = 0 and, with the paper's mu and sigma, scores exp(-12.5), about 4e-6.

The total reward is the plain sum of the selected components (Eq. 3); `build_rewards` selects
them from the config's ``grpo.rewards`` list (parameters from ``grpo.<name>_reward``, e.g.
``grpo.length_reward``), and `score_completions` returns the total and each component for
logging. A new reward is a factory decorated with `register_reward` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import copy
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from avrt.core.answers import is_strict_format, strict_answer_letter, think_text

RewardFunction = Callable[..., list[float]]

LABEL_LETTER = re.compile(r"^[A-Z]$")
ALL_LETTERS = 26  # strict_answer_letter's bound when an item does not say how many options it has


@cache
def _grpo_defaults() -> dict:
    """The `grpo` config block as the schema fills it in (the one source of the rewards' defaults)."""
    from avrt.core.config import stage_config

    return stage_config("grpo", {})


def grpo_default(key: str) -> Any:
    """The schema's default of `grpo.<key>` (a copy)."""
    return copy.deepcopy(_grpo_defaults()[key])


def _named(reward: RewardFunction, name: str) -> RewardFunction:
    """Give a built reward its registry name: TRL logs each reward under ``__name__``."""
    reward.__name__ = reward.__qualname__ = name
    return reward


def _check_completions(completions: Sequence[str], reward: str) -> None:
    for i, text in enumerate(completions):
        if not isinstance(text, str):
            raise TypeError(f"{reward} reward: completion {i} is {type(text).__name__}, expected str")


def _column(columns: Mapping[str, Any], name: str, size: int, reward: str) -> Sequence[Any]:
    """Dataset column `name`, one value per completion."""
    if name not in columns:
        raise KeyError(f"{reward} reward needs the column {name!r}; got columns {sorted(columns)}")
    values = columns[name]
    if len(values) != size:
        raise ValueError(f"{reward} reward: column {name!r} has {len(values)} values for {size} completions")
    return values


# name (as `grpo.rewards` lists it) -> factory building the reward function
REWARD_FACTORIES: dict[str, Callable[..., RewardFunction]] = {}
Factory = TypeVar("Factory", bound=Callable[..., RewardFunction])


def register_reward(name: str) -> Callable[[Factory], Factory]:
    """Register the decorated factory under `name`, the name the config's ``grpo.rewards`` uses.

    `build_rewards` calls the factory with keyword arguments from the ``grpo`` config: the
    mapping ``grpo.<name>_reward`` when the config has one (e.g. ``grpo.length_reward``), and
    ``label_column=`` the run's label column when the factory takes that parameter.
    """

    def register(factory: Factory) -> Factory:
        if name in REWARD_FACTORIES:
            raise ValueError(f"reward {name!r} is already registered")
        REWARD_FACTORIES[name] = factory
        return factory

    return register


@register_reward("format")
def format_reward() -> RewardFunction:
    """R_format (Eq. 4): 1 for the strict think-then-answer format, else 0."""

    def reward(completions: Sequence[str], **_columns: Any) -> list[float]:
        _check_completions(completions, "format")
        return [1.0 if is_strict_format(text) else 0.0 for text in completions]

    return _named(reward, "format")


@register_reward("accuracy")
def accuracy_reward(label_column: str | None = None, n_options_column: str = "n_options") -> RewardFunction:
    """R_acc (Eq. 5): 1 when the answer letter equals the letter in `label_column`, else 0.

    `label_column` None is the schema's default `grpo.label_column` (``answer``, the ground truth).

    `n_options_column`, when present among the columns, bounds the accepted letters per item; when
    absent any letter A-Z is accepted (an out-of-range letter can then never match the label anyway).
    """
    if label_column is None:
        label_column = grpo_default("label_column")

    def reward(completions: Sequence[str], **columns: Any) -> list[float]:
        _check_completions(completions, "accuracy")
        labels = _column(columns, label_column, len(completions), "accuracy")
        if n_options_column in columns:
            n_options = _column(columns, n_options_column, len(completions), "accuracy")
        else:
            n_options = [ALL_LETTERS] * len(completions)
        rewards = []
        for i, (text, label, n) in enumerate(zip(completions, labels, n_options, strict=True)):
            if not isinstance(label, str) or not LABEL_LETTER.match(label.strip()):
                raise ValueError(
                    f"accuracy reward: completion {i}: column {label_column!r} holds {label!r}, "
                    "expected one option letter A-Z"
                )
            rewards.append(1.0 if strict_answer_letter(text, int(n)) == label.strip() else 0.0)
        return rewards

    return _named(reward, "accuracy")


def think_word_count(text: str) -> int | None:
    """Whitespace-separated words inside <think> of a strictly formatted output, else None."""
    think = think_text(text)
    return None if think is None else len(think.split())


def length_score(words: int, mu: float, sigma: float, w_min: float, w_max: float, bonus: float) -> float:
    """Eq. 6 for a word count: a Gaussian around `mu` plus `bonus` inside [w_min, w_max], capped at 1."""
    gaussian = math.exp(-((words - mu) ** 2) / (2.0 * sigma**2))
    in_window = w_min <= words <= w_max
    return min(1.0, gaussian + (bonus if in_window else 0.0))


@register_reward("length")
def length_reward(
    mu: float | None = None, sigma: float | None = None, w_min: float | None = None, w_max: float | None = None,
    bonus: float | None = None,
) -> RewardFunction:
    """R_length (Eq. 6) on the words inside <think>; 0 for output not in the strict format.

    A parameter left None takes the config schema's `grpo.length_reward` default: the paper's
    (Sec. 4.3) plus the chosen bonus b (not in the paper).
    """
    given = {"mu": mu, "sigma": sigma, "w_min": w_min, "w_max": w_max, "bonus": bonus}
    params = {**grpo_default("length_reward"), **{k: v for k, v in given.items() if v is not None}}
    mu, sigma, w_min, w_max, bonus = (params[k] for k in ("mu", "sigma", "w_min", "w_max", "bonus"))
    if sigma <= 0:
        raise ValueError(f"length reward: sigma must be > 0, got {sigma}")
    if w_min > w_max:
        raise ValueError(f"length reward: w_min ({w_min}) must not exceed w_max ({w_max})")
    if bonus < 0:
        raise ValueError(f"length reward: bonus must be >= 0, got {bonus}")

    def reward(completions: Sequence[str], **_columns: Any) -> list[float]:
        _check_completions(completions, "length")
        rewards = []
        for text in completions:
            words = think_word_count(text)
            rewards.append(0.0 if words is None else length_score(words, mu, sigma, w_min, w_max, bonus))
        return rewards

    return _named(reward, "length")


def make_reward(name: str, **params: Any) -> RewardFunction:
    """The reward called `name`, built with `params` (see each factory)."""
    try:
        factory = REWARD_FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known rewards: {sorted(REWARD_FACTORIES)}") from None
    return factory(**params)


def build_rewards(grpo_config: Mapping[str, Any], label_column: str | None = None) -> dict[str, RewardFunction]:
    """Reward functions named by ``grpo.rewards``, in that order, from a validated ``grpo`` config.

    ``label_column`` is the column the accuracy reward compares with: ``answer`` (ground truth,
    AVRT) or a teacher-label column (SightSound-R1); None reads it from the block's
    ``label_column`` (the schema's default where the block has none). Length settings the block
    leaves out take their schema defaults.
    """
    if label_column is None:
        label_column = grpo_config.get("label_column") or grpo_default("label_column")
    names = list(grpo_config["rewards"])
    if not names:
        raise ValueError(f"grpo.rewards is empty: select at least one of {sorted(REWARD_FACTORIES)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"grpo.rewards lists {duplicates} more than once; the total would count them twice")
    return {name: make_reward(name, **_config_params(name, grpo_config, label_column)) for name in names}


def _config_params(name: str, grpo_config: Mapping[str, Any], label_column: str) -> dict[str, Any]:
    """The factory's keyword arguments from the config (see `register_reward`)."""
    params = dict(grpo_config.get(f"{name}_reward") or {})
    factory = REWARD_FACTORIES.get(name)
    if factory is not None and "label_column" in inspect.signature(factory).parameters:
        params["label_column"] = label_column
    return params


@dataclass(frozen=True)
class RewardBreakdown:
    """Per-completion total reward (Eq. 3) and each component, in selection order."""

    total: list[float]
    components: dict[str, list[float]]

    def means(self) -> dict[str, float]:
        """Batch means for logging: ``reward`` and ``rewards/<name>``."""
        n = len(self.total)
        out = {"reward": sum(self.total) / n if n else math.nan}
        for name, values in self.components.items():
            out[f"rewards/{name}"] = sum(values) / n if n else math.nan
        return out


def score_completions(
    rewards: Mapping[str, RewardFunction], completions: Sequence[str], **columns: Any
) -> RewardBreakdown:
    """Run every reward on `completions` and sum them into the total."""
    components: dict[str, list[float]] = {}
    for name, reward in rewards.items():
        values = [float(v) for v in reward(completions=completions, **columns)]
        if len(values) != len(completions):
            raise ValueError(f"reward {name!r} returned {len(values)} values for {len(completions)} completions")
        components[name] = values
    total = [math.fsum(parts) for parts in zip(*components.values(), strict=True)] if components else []
    return RewardBreakdown(total=total, components=components)
