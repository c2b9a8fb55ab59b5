"""The ES gradient estimate: antithetic Gaussian perturbations and centred-rank fitness shaping.

Source: Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning" (arXiv 1703.03864), Sec. 2.1 (mirrored sampling) and
Sec. 2.2 (fitness shaping by centred ranks); official code ``openai/evolution-strategies-starter``
``es_distributed/es.py`` (``compute_centered_ranks``).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["centered_ranks", "es_gradient", "sample_population"]


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Map fitness values to their ranks scaled to [-0.5, 0.5]; ties share their mean rank.

    Sharing the mean rank (rather than breaking ties by position, as ``argsort`` does) keeps an
    antithetic pair with equal fitness from contributing to the gradient, which matters in
    envs such as CartPole where many episodes hit the same step limit.

    Args:
        fitness: float, shape (population_size,).

    Returns:
        float32, shape (population_size,): -0.5 for the worst, 0.5 for the best.
    """
    n = fitness.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.float32)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(fitness, kind="stable")] = np.arange(n)
    _, inverse = np.unique(fitness, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return (mean_rank[inverse] / (n - 1) - 0.5).astype(np.float32)


def sample_population(
    theta: torch.Tensor, population_size: int, sigma: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw antithetic perturbations of ``theta``.

    Args:
        theta: float32, shape (num_params,): the current parameters.
        population_size: Even number of candidates.
        sigma: Perturbation standard deviation.
        generator: Torch generator of the noise.

    Returns:
        ``(noise, candidates)``: noise float32 (population_size // 2, num_params) and
        candidates float32 (population_size, num_params), rows ``j`` and ``j + half`` being
        ``theta + sigma * noise[j]`` and ``theta - sigma * noise[j]``.
    """
    half = population_size // 2
    noise = torch.randn((half, theta.numel()), generator=generator)
    candidates = torch.cat([theta + sigma * noise, theta - sigma * noise])
    return noise, candidates


def es_gradient(fitness: np.ndarray, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Estimate the gradient of the expected fitness from an antithetic population.

    ``g = 1 / (P * sigma) * sum_j (F(theta + sigma eps_j) - F(theta - sigma eps_j)) eps_j``
    with F the centred ranks of the ``P`` fitness values.

    Args:
        fitness: shape (population_size,), laid out as in :func:`sample_population`.
        noise: float32, shape (population_size // 2, num_params).
        sigma: The perturbation standard deviation used.

    Returns:
        float32, shape (num_params,): an ascent direction (maximise fitness).
    """
    shaped = torch.from_numpy(centered_ranks(np.asarray(fitness, dtype=np.float64)))
    half = noise.shape[0]
    diff = shaped[:half] - shaped[half:]
    return (diff @ noise) / (2 * half * sigma)
