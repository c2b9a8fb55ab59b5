"""The outer GRPO update of the Meta-Optimizer on one group of proposals (paper Eq. 5).

Per outer iteration the group's outer rewards (validation success) become advantages
(r - mean) / (std + eps) within the group; then ``ppo_epochs`` Adam steps on the whole group
minimise, averaged over all sampled tokens (verl's ``token-mean``),

    -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + kl_coef * k3(pi, pi_sft)
    - entropy_coef * H(pi),

where ``ratio = pi(token) / pi_old(token)`` against the policy that sampled the group and the
KL to the frozen SFT model uses the low-variance k3 estimator ``exp(d) - d - 1`` with
``d = log pi_sft - log pi`` clamped to [-10, 10] (verl ``low_var_kl``). Log-probabilities are
those of the sampling distribution: logits / temperature with the grammar mask recorded at
sampling time (disallowed ids get probability 0). Settings of the official
``run_qwen2_5_05b_instr_math_meta_rl.sh``: ppo_epochs 4, KL 0.001, entropy 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import torch

from derl_bench.baselines.meta_optimizer.config import DERLConfig
from derl_bench.baselines.meta_optimizer.constrained import ConstrainedSample
from derl_bench.baselines.meta_optimizer.model import CharLM, shift_inputs
from derl_bench.baselines.meta_optimizer.sft import pad_targets

__all__ = [
    "GRPOStats",
    "grpo_step",
    "group_advantages",
    "grpo_update",
    "outer_advantages",
    "masked_entropy",
    "token_log_probs",
]


class GRPOStats(NamedTuple):
    """Diagnostics of one outer update (the last PPO epoch unless noted)."""

    n_samples: int
    """Proposals in the update, after dropping invalid ones."""
    mean_reward: float
    """Mean outer reward of those proposals."""
    loss: float
    """Total loss of the last epoch."""
    kl: float
    """Token-mean k3 KL to the SFT model, before the last step."""
    clip_fraction: float
    """Share of tokens whose ratio was clipped in the last epoch, in [0, 1]."""


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Group-normalised advantages (r - mean) / (std + eps) (paper Eq. 5; std unbiased, as verl).

    Args:
        rewards: float32, shape (group_size,), group_size >= 2.
        eps: Added to the std so equal rewards give advantages of 0.

    Returns:
        float32, shape (group_size,).
    """
    return (rewards - rewards.mean()) / (rewards.std() + eps)


def outer_advantages(rewards: torch.Tensor, mode: str, eps: float = 1e-6) -> torch.Tensor:
    """The outer advantages of a group: the paper's Eq. 5 or the official code's raw scores.

    ``"group"``: (r - mean) / (std + eps) within the group (paper Eq. 5, as in the inner loop).
    ``"raw"``: r / (1 + eps). The official ``ray_trainer.fit_outer`` gives every rollout its own
    ``uid`` (``uuid4()`` per row), so verl's GRPO estimator sees groups of one, for which it
    uses mean 0 and std 1 (``core_algos.compute_grpo_outcome_advantage``): the advantage is the
    validation score itself.

    Args:
        rewards: float32, shape (group_size,), group_size >= 1 (>= 2 for ``"group"``).
        mode: ``"group"`` or ``"raw"``.
        eps: Added to the std (``"group"``) or to 1 (``"raw"``).

    Returns:
        float32, shape (group_size,).

    Raises:
        ValueError: If ``mode`` is unknown.
    """
    if mode == "group":
        return group_advantages(rewards, eps)
    if mode == "raw":
        return rewards / (1.0 + eps)
    raise ValueError(f"advantage={mode!r} must be 'group' or 'raw'")


def grpo_step(
    *,
    log_probs: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    old_log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor | None,
    advantages: torch.Tensor,
    parameters: Iterable[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    config: DERLConfig,
    entropy: Callable[[], torch.Tensor] | None = None,
) -> tuple[float, float, float]:
    """Run ``config.ppo_epochs`` clipped-surrogate steps on one group (any model).

    Loss per sampled token (verl ``token-mean``): ``-min(ratio * A, clip(ratio, 1 - eps,
    1 + eps) * A) + kl_coef * k3``, ``ratio = exp(log_pi - old_log_pi)``, ``k3 = exp(d) - d -
    1`` with ``d = ref_log_pi - log_pi`` clamped to [-10, 10] (verl ``low_var_kl``), minus
    ``entropy_coef`` times the entropy when ``entropy`` is given.

    Args:
        log_probs: Recomputes ``(log_probs, valid)`` of the group's tokens under the policy,
            with gradients: float32 and bool, shape (batch, T).
        old_log_probs: float32, shape (batch, T): the sampling policy's, no gradient.
        ref_log_probs: float32, shape (batch, T): the KL anchor's; None for no KL term.
        advantages: float32, shape (batch,).
        parameters: The trainable parameters (gradient-norm clip).
        optimizer: Steps them.
        config: Supplies ``ppo_epochs``, ``clip_ratio``, ``kl_coef``, ``entropy_coef`` and
            ``max_grad_norm``.
        entropy: Token-mean entropy of the policy, when ``entropy_coef > 0``.

    Returns:
        ``(loss, kl, clip_fraction)`` of the last epoch.
    """
    parameters = [p for p in parameters if p.requires_grad]
    adv = advantages.to(old_log_probs.device).unsqueeze(1)
    loss = kl = clip_fraction = torch.zeros(())
    for _ in range(config.ppo_epochs):
        new_log_probs, valid = log_probs()
        n_tokens = valid.sum()
        ratio = torch.exp(new_log_probs - old_log_probs)
        clipped = ratio.clamp(1 - config.clip_ratio, 1 + config.clip_ratio)
        token_loss = -torch.minimum(ratio * adv, clipped * adv)
        kl_tokens = torch.zeros_like(token_loss)
        if ref_log_probs is not None and config.kl_coef > 0:
            delta = (ref_log_probs - new_log_probs).clamp(-10, 10)
            kl_tokens = (torch.exp(delta) - delta - 1).clamp(-10, 10)
        loss = ((token_loss + config.kl_coef * kl_tokens) * valid).sum() / n_tokens
        if entropy is not None and config.entropy_coef > 0:
            loss = loss - config.entropy_coef * entropy()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        with torch.no_grad():
            kl = (kl_tokens * valid).sum() / n_tokens
            clip_fraction = (((ratio - clipped).abs() > 0) & valid).sum() / n_tokens
    return float(loss.detach()), float(kl), float(clip_fraction)


def _masked_log_softmax(
    model: CharLM, samples: Sequence[ConstrainedSample], temperature: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced log-softmax of logits / temperature with the sampling masks applied.

    Returns:
        ``(log_p, targets, valid, masks)``: float32 (batch, T, V) with -inf at disallowed ids,
        int64 (batch, T), bool (batch, T) for real positions, bool (batch, T, V).
    """
    targets, valid = pad_targets([s.targets for s in samples])
    masks = torch.ones((*targets.shape, samples[0].masks.shape[-1]), dtype=torch.bool)
    for i, sample in enumerate(samples):
        masks[i, : len(sample.targets)] = sample.masks
    logits, _ = model(shift_inputs(targets))
    log_p = torch.log_softmax((logits / temperature).masked_fill(~masks, float("-inf")), dim=-1)
    return log_p, targets, valid, masks


def token_log_probs(
    model: CharLM, samples: Sequence[ConstrainedSample], temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the sampled ids under the masked, tempered distribution.

    Args:
        model: The LM (policy or reference).
        samples: Constrained samples with their masks, at least one.
        temperature: The sampling temperature.

    Returns:
        ``(log_probs, valid)``: float32 and bool, shape (batch, max T); ``log_probs`` is 0 at
        padding (``valid`` False).
    """
    log_p, targets, valid, _ = _masked_log_softmax(model, samples, temperature)
    picked = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(~valid, 0.0), valid


def masked_entropy(
    model: CharLM, samples: Sequence[ConstrainedSample], temperature: float
) -> torch.Tensor:
    """Token-mean entropy of the masked, tempered distribution over the samples' positions.

    Returns:
        float32 scalar, nats, >= 0.
    """
    log_p, _, valid, masks = _masked_log_softmax(model, samples, temperature)
    safe = log_p.masked_fill(~masks, 0.0)  # no 0 * -inf (nan) at disallowed ids
    plogp = (safe.exp() * safe).masked_fill(~masks, 0.0)
    return -(plogp.sum(-1) * valid).sum() / valid.sum()


def grpo_update(
    policy: CharLM,
    reference: CharLM,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[ConstrainedSample],
    rewards: Sequence[float],
    config: DERLConfig,
) -> GRPOStats:
    """Run one outer GRPO update on a group, in place on ``policy``.

    Args:
        policy: The Meta-Optimizer being trained; it sampled ``samples``.
        reference: The frozen SFT model (KL anchor).
        optimizer: Adam over ``policy``'s parameters.
        samples: The group's valid proposals, at least 2.
        rewards: Their outer rewards (validation success in [0, 1]), same length.
        config: Supplies ``temperature``, ``ppo_epochs``, ``clip_ratio``, ``kl_coef``,
            ``entropy_coef``, ``max_grad_norm`` and ``advantage_eps``.

    Returns:
        Diagnostics of the update.

    Raises:
        ValueError: If fewer than 2 samples are given or the lengths differ.
    """
    if len(samples) < 2 or len(samples) != len(rewards):
        raise ValueError(
            f"need >= 2 samples with one reward each, got {len(samples)} samples and "
            f"{len(rewards)} rewards"
        )
    reward_tensor = torch.tensor(list(rewards), dtype=torch.float32)
    advantages = outer_advantages(reward_tensor, config.advantage, config.advantage_eps)
    with torch.no_grad():
        old_log_probs, _ = token_log_probs(policy, samples, config.temperature)
        ref_log_probs = old_log_probs
        if config.kl_reference == "sft":
            ref_log_probs, _ = token_log_probs(reference, samples, config.temperature)
    policy.train()
    loss, kl, clip_fraction = grpo_step(
        log_probs=lambda: token_log_probs(policy, samples, config.temperature),
        old_log_probs=old_log_probs,
        ref_log_probs=ref_log_probs,
        advantages=advantages,
        parameters=policy.parameters(),
        optimizer=optimizer,
        config=config,
        entropy=lambda: masked_entropy(policy, samples, config.temperature),
    )
    return GRPOStats(
        n_samples=len(samples),
        mean_reward=float(reward_tensor.mean()),
        loss=loss,
        kl=kl,
        clip_fraction=clip_fraction,
    )
