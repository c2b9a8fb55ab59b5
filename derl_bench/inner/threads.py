"""Pinning torch's intra-op thread count, so a number does not depend on the machine's cores.

Float sums split across threads are added in a different order for each thread count, so a
training run's bits can depend on how many cores torch uses. Every live meta-step therefore runs
with a fixed thread count (``MetaRewardEnv(torch_threads=1)`` by default, recorded in
``env.spec``), and cached models are built on one thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["pinned_torch_threads"]


@contextlib.contextmanager
def pinned_torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    Args:
        n: Threads, >= 1; None leaves torch's setting alone (and does not import torch).

    Yields:
        None.

    Raises:
        ValueError: If ``n`` is < 1.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"torch_threads={n} must be >= 1 (or None for torch's default)")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
