"""Character vocabulary of the Meta-Optimizer LM: the meta-reward alphabet plus EOS and BOS."""

from __future__ import annotations

import torch

from derl_bench.meta_reward import ALPHABET

__all__ = ["BOS", "CHARS", "EOS", "VOCAB_SIZE", "decode", "encode"]

CHARS: str = ALPHABET
"""Characters the LM can emit, in id order: ``CHARS[i]`` has id ``i`` (21 characters)."""
EOS: int = len(CHARS)
"""Id of end-of-sequence (21): the sample ends; allowed only after a valid meta-reward."""
BOS: int = len(CHARS) + 1
"""Id of beginning-of-sequence (22): the first input of every sample; never emitted."""
VOCAB_SIZE: int = len(CHARS) + 2
"""Number of ids (23); the LM's output layer covers all of them."""

_ID = {char: i for i, char in enumerate(CHARS)}


def encode(text: str) -> torch.Tensor:
    """Encode a meta-reward as the LM's target ids, ending with EOS.

    Args:
        text: Characters of :data:`CHARS` only, e.g. ``"g1 + 0.5 * g2"``.

    Returns:
        int64, shape (len(text) + 1,): the character ids followed by :data:`EOS`.

    Raises:
        ValueError: If ``text`` has a character outside the alphabet.
    """
    try:
        ids = [_ID[char] for char in text]
    except KeyError as error:
        raise ValueError(f"character {error.args[0]!r} of {text!r} is not in {CHARS!r}") from None
    return torch.tensor([*ids, EOS], dtype=torch.long)


def decode(ids: list[int] | torch.Tensor) -> str:
    """Turn ids back into text, stopping at the first EOS and skipping BOS.

    Args:
        ids: int ids, shape (T,).

    Returns:
        The characters before the first EOS.
    """
    chars = []
    for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
        if i == EOS:
            break
        if i != BOS:
            chars.append(CHARS[i])
    return "".join(chars)
