"""The ``cpu`` Meta-Optimizer: a small character-level GRU language model over meta-reward text.

The paper's Meta-Optimizer is Qwen2.5-0.5B-Instruct conditioned on one fixed task instruction
(PAPER_FACTS.md §1); as the instruction never changes, the ``cpu`` preset drops it and models
p(meta-reward) unconditionally, starting every sample from BOS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from derl_bench.baselines.meta_optimizer.config import DERLConfig
from derl_bench.baselines.meta_optimizer.vocab import BOS, VOCAB_SIZE

__all__ = ["CharLM", "build_model", "shift_inputs", "torch_threads"]


class CharLM(nn.Module):
    """Embedding -> stacked GRU -> linear head over :data:`VOCAB_SIZE` ids.

    Args:
        embed_dim: Embedding width.
        hidden_size: GRU state width.
        num_layers: Stacked GRU layers.
    """

    def __init__(self, *, embed_dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, VOCAB_SIZE)

    def forward(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute next-id logits for every input position.

        Args:
            inputs: int64, shape (batch, time): input ids, the first one BOS.
            hidden: float32, shape (num_layers, batch, hidden_size), or None for zeros.

        Returns:
            ``(logits, hidden)``: float32 logits of shape (batch, time, VOCAB_SIZE) and the
            final GRU state, shape (num_layers, batch, hidden_size).
        """
        output, hidden = self.gru(self.embed(inputs), hidden)
        return self.head(output), hidden


def build_model(config: DERLConfig, seed: int) -> CharLM:
    """Create a freshly initialised model, seeded without touching torch's global generator.

    Args:
        config: Supplies ``embed_dim``, ``hidden_size`` and ``num_layers``.
        seed: Initialisation seed; the same seed gives identical parameters.

    Returns:
        The model in training mode, float32, on the CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharLM(
            embed_dim=config.embed_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
        )


def shift_inputs(targets: torch.Tensor) -> torch.Tensor:
    """Build teacher-forcing inputs from targets: BOS then the targets without their last id.

    Args:
        targets: int64, shape (batch, time).

    Returns:
        int64, shape (batch, time).
    """
    bos = torch.full((targets.shape[0], 1), BOS, dtype=targets.dtype)
    return torch.cat([bos, targets[:, :-1]], dim=1)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    The model is so small that one thread is fastest; several threads on a busy machine make
    each GRU step tens of times slower.

    Args:
        n: Threads to use, >= 1; 0 leaves torch's setting alone.

    Yields:
        None.
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(previous)
