"""GRPO advantages and loss against hand-computed numbers and a plain-Python reference."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from avrt.training import grpo_math
from avrt.training.grpo_math import group_advantages, k3_kl

# ---------------------------------------------------------------- advantages


def test_advantages_of_known_groups_use_the_sample_std():
    # [1, 0, 0, 0]: mean 0.25, sample std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5.
    # [2, 0, 2, 0]: mean 1, sample std sqrt(4 / 3).  [3, 1, 2, 2]: mean 2, sample std sqrt(2 / 3).
    rewards = torch.tensor([1.0, 0, 0, 0, 2, 0, 2, 0, 3, 1, 2, 2])
    half_root3, root6_over_2 = math.sqrt(3) / 2, math.sqrt(6) / 2
    expected = [1.5, -0.5, -0.5, -0.5,
                half_root3, -half_root3, half_root3, -half_root3,
                root6_over_2, -root6_over_2, 0.0, 0.0]
    assert group_advantages(rewards, 4, eps=0.0).tolist() == pytest.approx(expected, abs=1e-6)


def test_advantages_default_eps_is_trls():
    adv = group_advantages(torch.tensor([1.0, 0, 0, 0]), 4)
    assert adv.tolist() == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001], rel=1e-6)


def test_zero_variance_groups_get_exactly_zero():
    # 0.1 and 0.7 do not average back to themselves exactly in floating point.
    rewards = torch.tensor([1.0, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.7, 0, 0, 0, 0, 1, 0, 1, 0])
    adv = group_advantages(rewards, 4, eps=0.0)
    assert torch.isfinite(adv).all()
    assert adv[:16].tolist() == [0.0] * 16
    assert adv[16:].tolist() == pytest.approx([0.866025, -0.866025, 0.866025, -0.866025], abs=1e-5)


def test_advantages_ignore_reward_offset_and_scale():
    rewards = torch.tensor([0.3, 2.0, 1.1, 0.0, 5.0, 4.0, 4.5, 4.2])
    base = group_advantages(rewards, 4, eps=0.0)
    assert group_advantages(3.0 * rewards + 7.0, 4, eps=0.0).tolist() == pytest.approx(base.tolist(), abs=1e-5)
    # Each group is normalised on its own: each sums to 0 and has sample variance 1.
    for group in base.view(2, 4):
        assert group.sum().item() == pytest.approx(0.0, abs=1e-5)
        assert group.var(correction=1).item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("rewards", "size", "message"), [
    (torch.ones(2, 4), 4, "must be 1-D"),
    (torch.ones(6), 4, "6 rewards do not split into groups of 4"),
    (torch.ones(4), 1, "group_size must be >= 2"),
    (torch.tensor([0.0, float("nan"), 1.0, 1.0]), 4, r"completions \[1\] are not finite"),
])
def test_advantages_reject_bad_input(rewards, size, message):
    with pytest.raises(ValueError, match=message):
        group_advantages(rewards, size)


def test_groups_of_two_completions_are_allowed():
    assert group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.5]), 2, eps=0.0).tolist() == pytest.approx(
        [1 / math.sqrt(2), -1 / math.sqrt(2), 0.0, 0.0])


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64, torch.bfloat16])
def test_advantages_are_float32_whatever_the_reward_dtype(dtype):
    adv = group_advantages(torch.tensor([1, 0, 0, 0, 2, 2, 2, 2], dtype=dtype), 4, eps=0.0)
    assert adv.dtype == torch.float32
    assert adv.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0])


# ---------------------------------------------------------------- loss

EPS, BETA = 0.2, 0.01  # the paper's clip range and KL weight (grpo.epsilon, grpo.beta)
grpo_loss = partial(grpo_math.grpo_loss, epsilon=EPS, beta=BETA)
# Three completions of 4, 2 and 3 tokens (right padding). Log-ratios logp - logp_old chosen to hit
# every branch: +0.5 (ratio 1.65, above 1 + eps), -0.5 (0.61, below 1 - eps), +-0.05 (inside).
POLICY = [[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.5, 0.0, 0.0], [-2.5, -0.7, -1.2, 0.0]]
LOG_RATIO = [[0.5, -0.5, 0.05, 0.0], [0.5, -0.5, 0.0, 0.0], [-0.05, 0.3, -0.3, 0.0]]
OLD = [[p - d for p, d in zip(row, drow)] for row, drow in zip(POLICY, LOG_RATIO)]
REF = [[-1.3, -1.6, -0.5, -2.0], [-0.4, -1.0, 0.0, 0.0], [-2.0, -0.9, -1.1, 0.0]]
ADVANTAGES = [1.2, -0.8, 0.5]  # positive: +0.5 clips, -0.5 does not; negative: the other way round
MASK = [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]


def reference(policy, old, ref, adv, mask, eps, beta):
    """GRPO objective written out token by token: loss, d loss / d policy, and the metrics."""
    batch = len(policy)
    loss, grads = 0.0, [[0.0] * len(row) for row in policy]
    kl_sum = clipped = ratio_sum = tokens = 0.0
    for i in range(batch):
        n = sum(mask[i])
        seq = 0.0
        for t in range(len(policy[i])):
            if not mask[i][t]:
                continue
            ratio = math.exp(policy[i][t] - old[i][t])
            clipped_ratio = min(max(ratio, 1 - eps), 1 + eps)
            surrogate = min(ratio * adv[i], clipped_ratio * adv[i])
            kl = math.exp(ref[i][t] - policy[i][t]) - (ref[i][t] - policy[i][t]) - 1
            seq += -(surrogate - beta * kl)
            is_clipped = (ratio > 1 + eps and adv[i] > 0) or (ratio < 1 - eps and adv[i] < 0)
            d_surrogate = 0.0 if is_clipped else adv[i] * ratio  # d(ratio)/d(logp) = ratio
            d_kl = 1.0 - math.exp(ref[i][t] - policy[i][t])
            grads[i][t] = (-d_surrogate + beta * d_kl) / (max(n, 1) * batch)
            kl_sum += kl
            clipped += is_clipped
            ratio_sum += ratio
            tokens += 1
        loss += seq / max(n, 1)
    metrics = {"kl": kl_sum / tokens, "clip_fraction": clipped / tokens, "ratio_mean": ratio_sum / tokens}
    return loss / batch, grads, metrics


def tensors(requires_grad=True):
    policy = torch.tensor(POLICY, requires_grad=True)
    old = torch.tensor(OLD, requires_grad=requires_grad)
    ref = torch.tensor(REF, requires_grad=requires_grad)
    adv = torch.tensor(ADVANTAGES, requires_grad=requires_grad)
    return policy, old, ref, adv, torch.tensor(MASK, dtype=torch.bool)


def test_loss_matches_the_reference_with_clipping_and_kl():
    policy, old, ref, adv, mask = tensors()
    out = grpo_loss(policy, adv, mask, old_logps=old, ref_logps=ref, epsilon=EPS, beta=BETA)
    want_loss, want_grads, want_metrics = reference(POLICY, OLD, REF, ADVANTAGES, MASK, EPS, BETA)
    assert out.loss.item() == pytest.approx(want_loss, rel=1e-6)
    assert out.metrics() == pytest.approx(want_metrics, rel=1e-6)
    assert out.metrics()["clip_fraction"] == pytest.approx(3 / 9)  # the three clipped tokens above

    out.loss.backward()
    assert policy.grad.tolist() == [pytest.approx(row, abs=1e-7) for row in want_grads]
    # Clipped tokens get only the KL gradient; padded tokens none.
    assert policy.grad[0, 0].item() == pytest.approx(BETA * (1 - math.exp(-0.3)) / (4 * 3), abs=1e-8)
    assert policy.grad[1, 2:].tolist() == [0.0, 0.0]


def test_gradients_flow_only_through_the_policy():
    policy, old, ref, adv, mask = tensors(requires_grad=True)
    grpo_loss(policy, adv, mask, old_logps=old, ref_logps=ref, epsilon=EPS, beta=BETA).loss.backward()
    assert policy.grad is not None and policy.grad.abs().sum() > 0
    assert old.grad is None and ref.grad is None and adv.grad is None


def test_kl_term_scales_with_beta():
    policy, old, ref, adv, mask = tensors(requires_grad=False)
    without = grpo_loss(policy, adv, mask, old_logps=old, ref_logps=ref, epsilon=EPS, beta=0.0)
    with_kl = grpo_loss(policy, adv, mask, old_logps=old, ref_logps=ref, beta=0.5)
    ref_loss_0, _, metrics = reference(POLICY, OLD, REF, ADVANTAGES, MASK, EPS, 0.0)
    ref_loss_half, _, _ = reference(POLICY, OLD, REF, ADVANTAGES, MASK, EPS, 0.5)
    assert without.loss.item() == pytest.approx(ref_loss_0, rel=1e-6)
    assert with_kl.loss.item() == pytest.approx(ref_loss_half, rel=1e-6)
    assert with_kl.loss.item() > without.loss.item()
    assert without.kl.item() == pytest.approx(metrics["kl"], rel=1e-6)  # still logged at beta = 0


def test_k3_is_zero_at_the_reference_and_positive_elsewhere():
    logp = torch.tensor([-1.0, -2.0, -0.1])
    assert k3_kl(logp, logp).tolist() == [0.0, 0.0, 0.0]
    assert (k3_kl(logp, logp + torch.tensor([0.3, -0.3, 1.0])) > 0).all()
    assert k3_kl(torch.tensor([-1.0]), torch.tensor([-0.5])).item() == pytest.approx(math.exp(0.5) - 0.5 - 1)


def test_per_sequence_averaging_is_not_per_token():
    # One long and one short completion, advantage +1 and -1, ratio 1: GRPO averages each
    # completion first, so the loss is -(1 - 1) / 2 = 0; a token-level (DAPO) mean would be -(10 - 1) / 11.
    policy = torch.zeros(2, 10, requires_grad=True)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :] = True
    mask[1, :1] = True
    out = grpo_loss(policy, torch.tensor([1.0, -1.0]), mask, beta=0.0)
    assert out.loss.item() == pytest.approx(0.0, abs=1e-7)
    out.loss.backward()
    assert policy.grad[0, :].tolist() == pytest.approx([-1 / 20] * 10)
    assert policy.grad[1, 0].item() == pytest.approx(1 / 2)


def test_padding_values_are_ignored_even_when_not_finite():
    policy, old, ref, adv, mask = tensors(requires_grad=False)
    clean = grpo_loss(policy, adv, mask, old_logps=old, ref_logps=ref)
    dirty_policy = policy.detach().masked_fill(~mask, float("nan")).requires_grad_(True)
    dirty = grpo_loss(dirty_policy, adv, mask, old_logps=old.masked_fill(~mask, float("-inf")),
                      ref_logps=ref.masked_fill(~mask, float("inf")))
    assert dirty.loss.item() == pytest.approx(clean.loss.item(), rel=1e-7)
    assert dirty.metrics() == pytest.approx(clean.metrics(), rel=1e-7)
    dirty.loss.backward()
    assert torch.isfinite(dirty_policy.grad).all()
    assert (dirty_policy.grad[~mask] == 0).all()


def test_empty_completion_counts_as_zero_in_the_mean():
    policy = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]], requires_grad=True)
    mask = torch.tensor([[True, True], [False, False]])
    out = grpo_loss(policy, torch.tensor([2.0, 5.0]), mask, beta=0.0)
    assert out.loss.item() == pytest.approx(-2.0 / 2)  # on-policy: ratio 1, loss -(mean over G of A_i)


def test_on_policy_without_old_logps():
    # num_iterations = 1: ratio exp(logp - logp.detach()) = 1, gradient -A_i / (|o_i| G).
    policy, _, ref, adv, mask = tensors(requires_grad=False)
    policy.requires_grad_(True)
    out = grpo_loss(policy, adv, mask, ref_logps=ref, beta=0.0)
    assert out.ratio_mean.item() == 1.0 and out.clip_fraction.item() == 0.0
    assert out.loss.item() == pytest.approx(-sum(ADVANTAGES) / 3, rel=1e-6)
    out.loss.backward()
    lengths = [4, 2, 3]
    for i, row in enumerate(policy.grad.tolist()):
        assert row[: lengths[i]] == pytest.approx([-ADVANTAGES[i] / (lengths[i] * 3)] * lengths[i])


def test_bfloat16_log_probs_are_computed_in_float32():
    policy = torch.tensor(POLICY, dtype=torch.bfloat16, requires_grad=True)
    old = torch.tensor(OLD, dtype=torch.bfloat16)
    ref = torch.tensor(REF, dtype=torch.bfloat16)
    mask = torch.tensor(MASK, dtype=torch.bool)
    out = grpo_loss(policy, torch.tensor(ADVANTAGES), mask, old_logps=old, ref_logps=ref)
    as_float = [t.float().tolist() for t in (policy, old, ref)]
    want, _, _ = reference(*as_float, ADVANTAGES, MASK, EPS, BETA)
    assert out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(want, rel=1e-6)
    out.loss.backward()
    assert policy.grad.dtype == torch.bfloat16


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ref_logps": None, "beta": 0.01}, "beta=0.01 needs ref_logps"),
    ({"epsilon": 0.0}, "epsilon must be > 0"),
    ({"beta": -1.0}, "beta must be >= 0"),
    ({"advantages": torch.zeros(2)}, r"advantages must have shape \(3,\)"),
    ({"completion_mask": torch.ones(3, 5)}, r"completion_mask has shape \(3, 5\)"),
    ({"old_logps": torch.zeros(2, 4)}, r"old_logps has shape \(2, 4\)"),
    ({"ref_logps": torch.zeros(3, 3)}, r"ref_logps has shape \(3, 3\), policy_logps \(3, 4\)"),
])
def test_loss_rejects_bad_input(kwargs, message):
    policy, old, ref, adv, mask = tensors(requires_grad=False)
    args = {"advantages": adv, "completion_mask": mask, "old_logps": old, "ref_logps": ref, **kwargs}
    with pytest.raises(ValueError, match=message):
        grpo_loss(policy, **args)


def test_loss_rejects_log_probs_that_are_not_batch_by_tokens():
    with pytest.raises(ValueError, match=r"policy_logps must be \(batch, tokens\), got shape \(4,\)"):
        grpo_loss(torch.zeros(4), torch.zeros(4), torch.ones(4))


def test_loss_is_float32_with_float64_advantages():
    policy, old, ref, adv, mask = tensors(requires_grad=False)
    out = grpo_loss(policy, adv.double(), mask, old_logps=old, ref_logps=ref)
    want, _, _ = reference(POLICY, OLD, REF, ADVANTAGES, MASK, EPS, BETA)
    assert out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(want, rel=1e-6)


def test_metrics_of_a_single_token_batch():
    out = grpo_loss(torch.tensor([[-1.0, 0.0]]), torch.tensor([1.0]), torch.tensor([[True, False]]),
                    old_logps=torch.tensor([[-1.5, 0.0]]), ref_logps=torch.tensor([[-1.0, 0.0]]))
    assert out.ratio_mean.item() == pytest.approx(math.exp(0.5), rel=1e-6)
    assert out.clip_fraction.item() == 1.0 and out.kl.item() == 0.0


def test_zero_advantage_tokens_are_never_counted_as_clipped():
    # An all-equal group's completions get advantage exactly 0: both branches of the min are 0.
    policy = torch.tensor([[-1.0, -1.0]])
    out = grpo_loss(policy, torch.zeros(1), torch.ones(1, 2), old_logps=torch.tensor([[-2.0, 0.0]]), beta=0.0)
    assert out.clip_fraction.item() == 0.0 and out.loss.item() == 0.0


def exact_log(value: float) -> float:
    """A float32 x with exp(x) == value exactly in torch (found next to log(value))."""
    x = torch.tensor(math.log(value))
    for _ in range(200):
        got = torch.exp(x).item()
        if got == value:
            return x.item()
        x = torch.nextafter(x, torch.tensor(-math.inf if got > value else math.inf))
    pytest.skip(f"no float32 log of {value} found")


def test_ratios_exactly_at_the_clip_bounds_are_not_counted_as_clipped():
    # epsilon 0.5: the bounds 0.5 and 1.5 are exact in binary; clamp leaves such a ratio unchanged.
    policy = torch.tensor([[exact_log(0.5)], [exact_log(1.5)]])
    out = grpo_math.grpo_loss(policy, torch.tensor([-1.0, 1.0]), torch.ones(2, 1), old_logps=torch.zeros(2, 1),
                              epsilon=0.5, beta=0.0)
    assert out.ratio_mean.item() == 1.0
    assert out.clip_fraction.item() == 0.0


@pytest.mark.integration
def test_advantages_match_trl_group_scaling():
    # TRL 1.16 GRPOTrainer, scale_rewards="group": (r - group mean) / (nanstd(group) + 1e-4).
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([2.5, 1.0, 0.0, 1.7, 0.2, 3.0, 3.0, 1.0, 0.0, 0.0, 1.0, 2.0])
    grouped = rewards.view(-1, 4)
    trl = (grouped - grouped.mean(dim=1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    assert group_advantages(rewards, 4).tolist() == pytest.approx(trl.flatten().tolist(), rel=1e-6)
