"""MLP policies for vector-observation inner envs (classic control)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium
import numpy as np
import torch
from torch import nn

__all__ = ["MLPBatch", "MLPPolicy", "MLPStep"]


class MLPStep(NamedTuple):
    """What :meth:`MLPPolicy.log_prob` needs to re-score one action."""

    observation: np.ndarray
    """float32, shape (obs_dim,)."""
    action: Any
    """int (discrete) or float32 array (action_dim,) — the sampled action before clipping."""


@dataclass(frozen=True)
class MLPBatch:
    """Step records stacked into tensors (:meth:`MLPPolicy.stack_records`).

    Attributes:
        observations: float32, shape (n, obs_dim).
        actions: int64 (n,) (Discrete) or float32 (n, action_dim) (Box, unclipped samples).
    """

    observations: torch.Tensor
    actions: torch.Tensor

    def take(self, index: torch.Tensor) -> MLPBatch:
        """The records at ``index`` (int64 tensor of positions), in that order."""
        return MLPBatch(self.observations[index], self.actions[index])


class MLPPolicy(nn.Module):
    """A two-hidden-layer tanh MLP policy; categorical (Discrete) or Gaussian (Box) actions.

    The Gaussian head has a state-independent learned log-std (initial ``init_log_std``); the
    action sent to the env is clipped to the Box bounds while the unclipped sample is scored
    (the usual PPO treatment). Implements :class:`~derl_bench.inner.policies.base.EpisodePolicy`.

    Args:
        observation_space: A 1-D ``Box`` (obs_dim,).
        action_space: ``Discrete(n)`` or a 1-D ``Box`` (action_dim,).
        hidden: Width of both hidden layers.
        seed: Initialises the weights (``torch.Generator``), so the same seed gives the same
            initial policy.
        init_log_std: Initial log standard deviation of the Gaussian head (Box only).

    Raises:
        TypeError: If a space is of another kind.
    """

    def __init__(
        self,
        observation_space: gymnasium.spaces.Space,
        action_space: gymnasium.spaces.Space,
        *,
        hidden: int = 64,
        seed: int = 0,
        init_log_std: float = -0.5,
    ) -> None:
        super().__init__()
        if (
            not isinstance(observation_space, gymnasium.spaces.Box)
            or len(observation_space.shape) != 1
        ):
            raise TypeError(f"MLPPolicy needs a 1-D Box observation space, got {observation_space}")
        self.discrete = isinstance(action_space, gymnasium.spaces.Discrete)
        if self.discrete:
            out = int(action_space.n)  # type: ignore[attr-defined]
        elif isinstance(action_space, gymnasium.spaces.Box) and len(action_space.shape) == 1:
            out = int(action_space.shape[0])
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))
        else:
            raise TypeError(
                f"MLPPolicy needs a Discrete or 1-D Box action space, got {action_space}"
            )
        obs_dim = int(observation_space.shape[0])
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, out),
        )
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / np.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.zero_()
            self.net[-1].weight.mul_(0.01)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((out,), float(init_log_std)))

    def _distribution(self, observations: torch.Tensor) -> torch.distributions.Distribution:
        out = self.net(observations)
        if self.discrete:
            return torch.distributions.Categorical(logits=out)
        return torch.distributions.Normal(out, self.log_std.exp().expand_as(out))

    @torch.no_grad()
    def act(
        self,
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
        *,
        generator: torch.Generator,
        greedy: bool = False,
    ) -> tuple[list[Any], list[MLPStep]]:
        """Choose one action per observation (see ``EpisodePolicy.act``).

        Returns:
            ``(actions, records)``: ints (Discrete) or float32 arrays clipped to the Box.
        """
        obs = torch.as_tensor(np.stack(observations), dtype=torch.float32)
        out = self.net(obs)
        if self.discrete:
            if greedy:
                chosen = out.argmax(dim=-1)
            else:
                probs = torch.softmax(out, dim=-1)
                chosen = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            actions = chosen.tolist()
            records = [MLPStep(o, a) for o, a in zip(obs.numpy(), actions, strict=True)]
            return actions, records
        if greedy:
            raw = out
        else:
            noise = torch.randn(out.shape, generator=generator)
            raw = out + noise * self.log_std.exp()
        clipped = torch.maximum(torch.minimum(raw, self.high), self.low)
        # One conversion per batch; each action / record is a row of it (float32, (action_dim,)).
        actions = list(clipped.numpy().astype(np.float32))
        records = [MLPStep(o, r) for o, r in zip(obs.numpy(), raw.numpy().copy(), strict=True)]
        return actions, records

    def stack_records(self, step_records: Sequence[MLPStep]) -> MLPBatch:
        """Stack records once, so that minibatches are tensor slices (see ``policies.base``)."""
        return _stack(step_records, discrete=self.discrete)

    def log_prob(self, step_records: Sequence[MLPStep] | MLPBatch) -> torch.Tensor:
        """Log-probability of each recorded action, float32 (n,), with gradient.

        Args:
            step_records: Records from :meth:`act`, or an :class:`MLPBatch` of them.
        """
        batch = (
            step_records
            if isinstance(step_records, MLPBatch)
            else _stack(step_records, discrete=self.discrete)
        )
        dist = self._distribution(batch.observations)
        if self.discrete:
            return dist.log_prob(batch.actions)
        return dist.log_prob(batch.actions).sum(dim=-1)


def _stack(step_records: Sequence[MLPStep], *, discrete: bool) -> MLPBatch:
    obs = torch.as_tensor(np.stack([r.observation for r in step_records]), dtype=torch.float32)
    if discrete:
        return MLPBatch(obs, torch.as_tensor([int(r.action) for r in step_records]))
    actions = torch.as_tensor(np.stack([r.action for r in step_records]), dtype=torch.float32)
    return MLPBatch(obs, actions)
