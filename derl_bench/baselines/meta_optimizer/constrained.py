"""Grammar-constrained sampling: every sample is a meta-reward that ``parse`` accepts.

At each step the LM's logits are divided by the temperature, the ids that
:class:`~derl_bench.baselines.meta_optimizer.viability.GrammarConstraint` disallows get -inf,
and an id is drawn from the softmax (top_p = 1, temperature 0.7 in the official
``constrained_rollout.py``). EOS is allowed only after a valid meta-reward, and a character only
if the text can still be closed within ``max_chars``; a sample that still cannot end validly
(e.g. ``g1 / (g2 - g2)`` is inf on the probe rows) is redrawn, a bounded number of times. Each
sample keeps its masks so that the outer update can recompute the same log-probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from derl_bench.baselines.meta_optimizer.model import CharLM
from derl_bench.baselines.meta_optimizer.viability import GrammarConstraint
from derl_bench.baselines.meta_optimizer.vocab import BOS, CHARS, EOS, VOCAB_SIZE

__all__ = ["ConstrainedSample", "sample_constrained"]

_PLACEHOLDER = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
_PLACEHOLDER[EOS] = True


class ConstrainedSample(NamedTuple):
    """One constrained sample with what the outer update needs to recompute its log-probs."""

    text: str
    """The meta-reward, accepted by ``parse``; no leading or trailing space."""
    targets: torch.Tensor
    """int64, shape (T,): the emitted ids, characters then EOS (T = len(text) + 1)."""
    masks: torch.Tensor
    """bool, shape (T, VOCAB_SIZE): the ids allowed at each step (the sampling mask)."""


def sample_constrained(
    model: CharLM,
    constraint: GrammarConstraint,
    n: int,
    *,
    temperature: float,
    max_chars: int,
    generator: torch.Generator,
    max_resample_rounds: int = 20,
) -> list[ConstrainedSample]:
    """Draw ``n`` meta-rewards from ``model`` under the grammar mask.

    At each step the logits are divided by ``temperature``, disallowed ids get -inf, and an id
    is drawn from the softmax (top_p = 1, as in the official ``constrained_rollout.py``).
    Samples that get stuck (no valid ending within ``max_chars``) are redrawn.

    Args:
        model: The LM; it is put in eval mode and not changed.
        constraint: The grammar constraint of the domain's primitive set.
        n: Number of samples, >= 1.
        temperature: Softmax temperature, > 0 (paper code: 0.7).
        max_chars: Longest text in characters, in [4, 512].
        generator: Source of randomness; the same generator state gives the same samples.
        max_resample_rounds: How many times the stuck samples are redrawn.

    Returns:
        ``n`` samples in draw order; each ``text`` is accepted by ``parse``.

    Raises:
        ValueError: If ``n < 1``.
        RuntimeError: If some samples are still stuck after ``max_resample_rounds`` redraws.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    samples: list[ConstrainedSample] = []
    for _ in range(max_resample_rounds + 1):
        drawn = _draw(model, constraint, n - len(samples), temperature, max_chars, generator)
        samples.extend(s for s in drawn if s is not None)
        if len(samples) == n:
            return samples
    raise RuntimeError(
        f"{n - len(samples)} of {n} constrained samples found no valid ending within "
        f"{max_chars} characters after {max_resample_rounds} redraws; raise max_chars"
    )


@torch.no_grad()
def _draw(
    model: CharLM,
    constraint: GrammarConstraint,
    m: int,
    temperature: float,
    max_chars: int,
    generator: torch.Generator,
) -> list[ConstrainedSample | None]:
    was_training = model.training
    model.eval()
    states = [constraint.initial] * m
    texts = [""] * m
    ids: list[list[int]] = [[] for _ in range(m)]
    masks: list[list[torch.Tensor]] = [[] for _ in range(m)]
    active = [True] * m
    stuck = [False] * m
    inputs = torch.full((m, 1), BOS, dtype=torch.long)
    hidden = None
    for _ in range(max_chars + 1):
        logits, hidden = model(inputs, hidden)
        rows = []
        for i in range(m):
            row = None
            if active[i]:
                row = constraint.allowed_mask(states[i], texts[i], max_chars - len(texts[i]))
                if row is None:
                    active[i], stuck[i] = False, True
            rows.append(_PLACEHOLDER if row is None else row)  # placeholder keeps softmax defined
        mask = torch.stack(rows)
        scaled = (logits[:, -1] / temperature).masked_fill(~mask, float("-inf"))
        drawn = torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator)
        for i in range(m):
            if not active[i]:
                continue
            token = int(drawn[i, 0])
            ids[i].append(token)
            masks[i].append(rows[i])
            if token == EOS:
                active[i] = False
            else:
                char = CHARS[token]
                states[i] = constraint.options(states[i]).next_states[char]
                texts[i] += char
        if not any(active):
            break
        inputs = drawn
    model.train(was_training)
    out: list[ConstrainedSample | None] = []
    for i in range(m):
        if stuck[i] or not ids[i] or ids[i][-1] != EOS:
            out.append(None)
        else:
            targets = torch.tensor(ids[i], dtype=torch.long)
            out.append(ConstrainedSample(texts[i], targets, torch.stack(masks[i])))
    return out
