"""The GRPO objective as AVRT (Sec. 3.2, 4.3) and SightSound-R1 (Sec. 3.3) write it, after DeepSeekMath.

Advantages (AVRT Eq. 2): A_i = (r_i - mean(r)) / std(r) over the G completions of one prompt,
the same for every token of completion i.

- std is the sample standard deviation (Bessel's correction, divisor G - 1). DeepSeekMath writes
  only "std"; TRL 1.16 (`nanstd` in `trl/trainer/utils.py`, used by GRPOTrainer with
  ``scale_rewards="group"``) and verl (`torch.std`) both use the sample std, and the AVRT first
  author's earlier GRPO code (a TRL GRPOTrainer subclass) inherits TRL's. With G = 4 the sample std
  is sqrt(4/3) times the population std, so advantages are 0.87 times the population-normalised ones.
- ``eps`` (default 1e-4, TRL's) is added to std, as TRL and verl do: a group whose rewards differ
  only by rounding (dense length rewards) then gets near-zero advantages instead of +-1.
- A group whose rewards are all equal gets advantage exactly 0 (no NaN, no rounding residue): it
  carries no preference, and TRL reaches ~0 only through eps.

Loss (DeepSeekMath Eq. 3, SightSound-R1 Eq. 2), minimised as the negative of the objective:

    L = (1/G) sum_i (1/|o_i|) sum_t -( min(rho_it A_i, clip(rho_it, 1-eps, 1+eps) A_i)
                                        - beta * KL_it )
    rho_it = exp(logp_it - logp_old_it)
    KL_it  = exp(ref_it - logp_it) - (ref_it - logp_it) - 1      (k3, DeepSeekMath Eq. 4)

with eps = 0.2 and beta = 0.01 in AVRT. Tokens are averaged within each completion first, then
over completions (GRPO's per-sequence normalisation; DAPO instead divides by the batch's token
count). Padding is excluded through ``completion_mask``; a completion with no tokens contributes 0
and still counts in the mean over completions, as in TRL.

Against TRL 1.16's GRPOTrainer (`_generate_and_score_completions`, `_compute_loss`):
- Same: rewards summed then normalised per group (``multi_objective_aggregation=
  "sum_then_normalize"``, ``scale_rewards="group"``), sample std + 1e-4; token-level ratio with
  symmetric clipping (``epsilon=epsilon_high=0.2``, ``importance_sampling_level="token"``); the k3
  KL added per token before averaging; ``loss_type="grpo"`` averaging; the clip fraction counts
  tokens where the clipped branch is active (ratio < 1-eps with A < 0, or > 1+eps with A > 0),
  TRL's ``clip_ratio/region_mean``.
- TRL's defaults differ from the paper (``loss_type="dapo"``, ``beta=0``, ``num_generations=8``):
  here the paper's choices are the only behaviour.
- Here: all-equal groups get exactly 0 (above); non-finite rewards are an error (TRL turns a
  reward function's None into NaN and drops it from the baseline, but ours always return floats);
  the loss is computed in float32 whatever the log-prob dtype, because in bfloat16 ratios near 1
  round to 1 (8-bit mantissa) and clipping is decided on noise; the loss is not divided by the
  gradient-accumulation steps (the trainer does that). TRL's options the paper does not use
  (two-sided ``delta``, vLLM importance-sampling correction, entropy masking) are left out.
- When old log-probs are not given (one gradient step per generation batch, TRL's
  ``num_iterations=1`` case) the ratio is exp(logp - logp.detach()) = 1 with the policy gradient
  A * grad(logp), as in TRL.

Metrics are token-weighted means over all unpadded tokens of the batch (TRL's
``global_masked_mean`` on one process).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRL_ADVANTAGE_EPS = 1e-4


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = TRL_ADVANTAGE_EPS) -> torch.Tensor:
    """Group-normalised advantages (AVRT Eq. 2) for rewards laid out prompt by prompt.

    `rewards` is 1-D with the G completions of each prompt next to each other (prompt 0's G
    completions, then prompt 1's, ...: TRL's ``repeat_interleave`` layout). Returns float32 of the
    same shape.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (one per completion), got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 for a sample std, got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"rewards at completions {bad} are not finite")
    grouped = rewards.detach().to(torch.float32).view(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, correction=1, keepdim=True)
    advantages = (grouped - mean) / (std + eps)
    all_equal = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)
    return torch.where(all_equal, torch.zeros_like(advantages), advantages).view(-1)


@dataclass(frozen=True)
class GRPOLoss:
    """The loss to backpropagate and detached 0-d metrics for logging."""

    loss: torch.Tensor
    kl: torch.Tensor | None  # mean k3 KL to the reference; None when no reference was given
    clip_fraction: torch.Tensor
    ratio_mean: torch.Tensor

    def metrics(self) -> dict[str, float]:
        out = {"clip_fraction": self.clip_fraction.item(), "ratio_mean": self.ratio_mean.item()}
        if self.kl is not None:
            out["kl"] = self.kl.item()
        return out


def k3_kl(policy_logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(ref - logp) - (ref - logp) - 1 >= 0."""
    delta = ref_logps - policy_logps
    return torch.exp(delta) - delta - 1.0


def grpo_loss(
    policy_logps: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    old_logps: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
    *,
    epsilon: float,
    beta: float,
) -> GRPOLoss:
    """GRPO loss on per-token log-probs of the sampled completion tokens.

    policy_logps, old_logps, ref_logps, completion_mask: (B, T), right-padded completions;
    advantages: (B,). Gradients flow only through `policy_logps`: old and reference log-probs and
    advantages are constants. Values at padded positions are ignored, even NaN or -inf.
    """
    if policy_logps.dim() != 2:
        raise ValueError(f"policy_logps must be (batch, tokens), got shape {tuple(policy_logps.shape)}")
    shape = policy_logps.shape
    for name, tensor in (("completion_mask", completion_mask), ("old_logps", old_logps), ("ref_logps", ref_logps)):
        if tensor is not None and tensor.shape != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, policy_logps {tuple(shape)}")
    if advantages.shape != shape[:1]:
        raise ValueError(f"advantages must have shape ({shape[0]},), got {tuple(advantages.shape)}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and ref_logps is None:
        raise ValueError(f"beta={beta} needs ref_logps (the reference model's log-probs)")

    valid = completion_mask.bool()
    weight = valid.to(torch.float32)

    def masked(logps: torch.Tensor) -> torch.Tensor:
        # Zero padded positions before any exp: NaN/inf there would otherwise leak into gradients.
        return torch.where(valid, logps.to(torch.float32), 0.0)

    logps = masked(policy_logps)
    old = logps.detach() if old_logps is None else masked(old_logps.detach())
    adv = advantages.detach().to(torch.float32).unsqueeze(1)

    ratio = torch.exp(logps - old)
    clipped_ratio = torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon)
    per_token = -torch.min(ratio * adv, clipped_ratio * adv)

    per_token_kl = None
    if ref_logps is not None:
        per_token_kl = k3_kl(logps, masked(ref_logps.detach()))
        per_token = per_token + beta * per_token_kl

    tokens_per_completion = weight.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * weight).sum(dim=1) / tokens_per_completion).mean()

    n_tokens = weight.sum().clamp(min=1.0)

    def token_mean(values: torch.Tensor) -> torch.Tensor:
        return (values.detach() * weight).sum() / n_tokens

    kl = None if per_token_kl is None else token_mean(per_token_kl)
    clip_active = ((ratio < 1.0 - epsilon) & (adv < 0)) | ((ratio > 1.0 + epsilon) & (adv > 0))
    return GRPOLoss(
        loss=loss,
        kl=kl,
        clip_fraction=token_mean(clip_active.to(torch.float32)),
        ratio_mean=token_mean(ratio),
    )
