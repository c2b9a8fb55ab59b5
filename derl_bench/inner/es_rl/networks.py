"""Policy and value networks of the ES+RL hybrid, with a batched forward for ES populations."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "Policy", "ValueNetwork"]


class MLP(nn.Module):
    """A tanh MLP whose forward can also run one parameter vector per batch row.

    Initialisation as in CleanRL's ``ppo.py``: orthogonal weights with gain sqrt(2) on hidden
    layers and ``out_gain`` on the output layer, zero biases.

    Args:
        in_dim: Input size.
        hidden_sizes: Hidden layer widths.
        out_dim: Output size.
        out_gain: Orthogonal-init gain of the output layer (0.01 for policy heads, 1 for values).
    """

    def __init__(
        self, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, out_gain: float
    ) -> None:
        super().__init__()
        sizes = (in_dim, *hidden_sizes, out_dim)
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            nn.init.orthogonal_(layer.weight, gain=out_gain if last else math.sqrt(2))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP.

        Args:
            x: float32, shape (batch, in_dim).

        Returns:
            float32, shape (batch, out_dim).
        """
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x

    def forward_batched(self, flat_params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Apply row ``i``'s own parameters to input row ``i`` (one batched matmul per layer).

        Args:
            flat_params: float32, shape (batch, num_params), each row laid out like
                ``torch.nn.utils.parameters_to_vector(self.parameters())``.
            x: float32, shape (batch, in_dim).

        Returns:
            float32, shape (batch, out_dim).
        """
        offset = 0
        h = x.unsqueeze(1)
        for i, layer in enumerate(self.layers):
            out_f, in_f = layer.weight.shape
            w = flat_params[:, offset : offset + out_f * in_f].view(-1, out_f, in_f)
            offset += out_f * in_f
            b = flat_params[:, offset : offset + out_f].unsqueeze(1)
            offset += out_f
            h = torch.baddbmm(b, h, w.transpose(1, 2))
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        return h.squeeze(1)


class Policy(nn.Module):
    """Categorical (``Discrete``) or diagonal Gaussian (``Box``) policy over an MLP body.

    The body outputs logits (discrete) or the action mean (continuous); a continuous policy
    also has a state-independent learned ``log_std``. Sampled Gaussian actions are clipped to
    the action bounds before they reach the env; log-probabilities are those of the unclipped
    sample. ES perturbs only the body (see :class:`ESRLHybrid`).

    Args:
        state_dim: Observation size.
        action_dim: Number of actions (discrete) or action size (continuous).
        hidden_sizes: Hidden layer widths of the body.
        continuous: ``True`` for a ``Box`` action space.
        action_low: float32, shape (action_dim,): lower action bounds (continuous only).
        action_high: float32, shape (action_dim,): upper action bounds (continuous only).
        init_log_std: Initial log standard deviation (continuous only).
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden_sizes: tuple[int, ...],
        *,
        continuous: bool,
        action_low: np.ndarray | None = None,
        action_high: np.ndarray | None = None,
        init_log_std: float = -0.5,
    ) -> None:
        super().__init__()
        self.continuous = continuous
        self.action_dim = action_dim
        self.body = MLP(state_dim, hidden_sizes, action_dim, out_gain=0.01)
        if continuous:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))
            low = torch.as_tensor(action_low, dtype=torch.float32).reshape(action_dim)
            high = torch.as_tensor(action_high, dtype=torch.float32).reshape(action_dim)
            self.register_buffer("action_low", low)
            self.register_buffer("action_high", high)

    def log_prob_entropy(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and the policy entropy at ``obs``.

        Args:
            obs: float32, shape (batch, state_dim).
            actions: int64, shape (batch,) (discrete) or float32, shape (batch, action_dim)
                (continuous, unclipped samples).

        Returns:
            ``(log_prob, entropy)``, each float32 of shape (batch,), in nats.
        """
        out = self.body(obs)
        if self.continuous:
            dist = torch.distributions.Normal(out, self.log_std.exp())
            return dist.log_prob(actions).sum(-1), dist.entropy().sum(-1)
        logp = torch.log_softmax(out, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1), entropy

    def sample(
        self,
        out: torch.Tensor,
        *,
        greedy: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Turn body outputs into actions.

        Args:
            out: float32, shape (batch, action_dim): logits or means from the body.
            greedy: Take the argmax / the mean instead of sampling.
            generator: Torch generator for sampling (``None``: the global one).

        Returns:
            ``(raw, env_action, log_prob)``: ``raw`` is what the RL step trains on (int64
            (batch,) or float32 (batch, action_dim), unclipped); ``env_action`` is what the env
            receives (clipped to bounds when continuous); ``log_prob`` float32 (batch,) of
            ``raw`` (zeros when greedy).
        """
        if self.continuous:
            if greedy:
                raw = out
            else:
                noise = torch.randn(out.shape, generator=generator)
                raw = out + self.log_std.exp() * noise
            env_action = torch.clamp(raw, self.action_low, self.action_high)
            if greedy:
                return raw, env_action, torch.zeros(out.shape[0])
            logp = torch.distributions.Normal(out, self.log_std.exp()).log_prob(raw).sum(-1)
            return raw, env_action, logp
        if greedy:
            raw = out.argmax(-1)
            return raw, raw, torch.zeros(out.shape[0])
        logp_all = torch.log_softmax(out, dim=-1)
        raw = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
        return raw, raw, logp_all.gather(-1, raw.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, greedy: bool = True, generator: torch.Generator | None = None
    ) -> int | np.ndarray:
        """Choose an action for one observation.

        Args:
            obs: One observation, shape (state_dim,) (any real dtype).
            greedy: Argmax / mean action if ``True``; sample from the policy otherwise.
            generator: Torch generator for sampling (``None``: the global one).

        Returns:
            An ``int`` (discrete) or a float32 array of shape (action_dim,) within the action
            bounds (continuous).
        """
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
        _, env_action, _ = self.sample(self.body(x), greedy=greedy, generator=generator)
        if self.continuous:
            return env_action[0].numpy().astype(np.float32)
        return int(env_action[0])


class ValueNetwork(nn.Module):
    """State-value baseline V(s) (the critic), a tanh MLP with a scalar output.

    Args:
        state_dim: Observation size.
        hidden_sizes: Hidden layer widths.
    """

    def __init__(self, state_dim: int, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.body = MLP(state_dim, hidden_sizes, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Estimate values.

        Args:
            obs: float32, shape (batch, state_dim).

        Returns:
            float32, shape (batch,): discounted return estimates in reward units.
        """
        return self.body(obs).squeeze(-1)
