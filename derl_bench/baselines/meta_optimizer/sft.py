"""Cold-start SFT: teacher-forced next-character cross-entropy on the generated corpus.

The paper fine-tunes the Meta-Optimizer "on a small set of valid format examples" before the
outer GRPO (PAPER_FACTS.md §1); the official SFT script is not published. Here: Adam on
mini-batches drawn with replacement, loss averaged over the characters and EOS of each batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from derl_bench.baselines.meta_optimizer.model import CharLM, shift_inputs
from derl_bench.baselines.meta_optimizer.vocab import EOS, encode

__all__ = ["pad_targets", "train_sft"]


def pad_targets(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences with EOS.

    Args:
        sequences: int64 tensors of shape (T_i,), each ending with EOS.

    Returns:
        ``(targets, valid)``: int64 ids and a bool mask of real positions, both of shape
        (batch, max T_i).
    """
    length = max(len(s) for s in sequences)
    targets = torch.full((len(sequences), length), EOS, dtype=torch.long)
    valid = torch.zeros((len(sequences), length), dtype=torch.bool)
    for i, seq in enumerate(sequences):
        targets[i, : len(seq)] = seq
        valid[i, : len(seq)] = True
    return targets, valid


def train_sft(
    model: CharLM,
    corpus: Sequence[str],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    max_grad_norm: float = 1.0,
) -> list[float]:
    """Fit ``model`` to the corpus in place.

    Args:
        model: The LM to train (left in training mode).
        corpus: Meta-reward texts over the LM's alphabet, at least one.
        steps: Optimizer steps, >= 0.
        batch_size: Records per step, drawn with replacement.
        lr: Adam learning rate.
        generator: Draws the mini-batches.
        max_grad_norm: Gradient-norm clip.

    Returns:
        The mean cross-entropy per step, nats per character, length ``steps``.

    Raises:
        ValueError: If ``corpus`` is empty or has a character outside the alphabet.
    """
    if not corpus:
        raise ValueError("the SFT corpus is empty")
    encoded = [encode(text) for text in corpus]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        picks = torch.randint(len(encoded), (batch_size,), generator=generator).tolist()
        targets, valid = pad_targets([encoded[i] for i in picks])
        logits, _ = model(shift_inputs(targets))
        token_loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        loss = (token_loss * valid).sum() / valid.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
