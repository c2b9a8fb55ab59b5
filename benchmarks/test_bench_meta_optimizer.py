"""The LLM Meta-Optimizer's sampling: one run's group of 8 against ten runs' groups at once.

Run: ``.venv/bin/pytest benchmarks/test_bench_meta_optimizer.py --benchmark-only -s``.
What it answers: at the surrogate fidelity a meta-step costs about a millisecond, so
``derl-bench compare`` over the LLM agents (``random``, the frozen Meta-Optimizer; ``derl``;
``llm_evolution``) is their own sampling and updates. Each run samples its group of 8 proposals
alone (:func:`derl_bench.baselines.meta_optimizer.lm.sample`, ``n=8``); ten seeds of the frozen
Meta-Optimizer could share one batch of 80 (same weights, same prompt). This measures both on the
offline SmolLM2-135M-Instruct (the ``cpu`` preset's backbone; untrained weights, since the cost of
a decode step does not depend on them) with CartPole's prompt, grammar-constrained as the agents
sample, on one thread, and prints the seconds per proposal and per generated token and the ratio
of ``n=80`` per proposal to ``n=8`` per proposal (below 1: batching across seeds pays). A decode
step reads every weight (about 540 MB in float32) once, whatever the batch, so at batch 8 it is
bound by memory bandwidth. Nothing is asserted about time (speed is measured, not tested).
"""

from __future__ import annotations

import time

import gymnasium
import pytest
import torch

import derl_bench  # noqa: F401
from derl_bench.baselines.meta_optimizer.lm import (
    SMOLLM2,
    instruction,
    load_causal_lm,
    prompt_ids,
    sample,
)
from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar

PRIMITIVES = ("g1", "g2", "g3", "g4")
RESULTS: dict[int, tuple[float, float]] = {}


@pytest.fixture(scope="module")
def lm():  # noqa: ANN201
    model, tokenizer = load_causal_lm(SMOLLM2)
    vocab = model.get_output_embeddings().weight.shape[0]
    grammar = TokenGrammar(tokenizer, PRIMITIVES, vocab_size=vocab)
    env = gymnasium.make("DERL-CartPole-v0", preset="cpu", fidelity="surrogate", budget=1)
    observation, _ = env.reset(seed=0)  # the prompt the agents see on CartPole
    prompt = prompt_ids(tokenizer, instruction(observation, PRIMITIVES))
    return model, tokenizer, grammar, prompt


@pytest.mark.parametrize("n", [8, 80], ids=["one-run-group-8", "ten-runs-batch-80"])
def test_bench_sample_group(benchmark, lm, n: int) -> None:  # noqa: ANN001
    model, tokenizer, grammar, prompt = lm
    generator = torch.Generator().manual_seed(0)
    tokens: list[int] = []
    seconds: list[float] = []

    def draw() -> None:
        start = time.perf_counter()
        samples, _ = sample(
            model,
            tokenizer,
            prompt,
            n,
            temperature=0.7,
            max_new_tokens=128,
            generator=generator,
            grammar=grammar,
        )
        seconds.append(time.perf_counter() - start)
        tokens.append(sum(len(s.response_ids) for s in samples))

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        benchmark.pedantic(draw, rounds=3, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(previous)
    timed = slice(1, None) if len(seconds) > 1 else slice(None)  # the warm-up round is not timed
    mean = sum(seconds[timed]) / len(seconds[timed])
    per_token = sum(seconds[timed]) / sum(tokens[timed])
    RESULTS[n] = (mean / n, per_token)
    benchmark.extra_info.update(seconds_per_proposal=mean / n, seconds_per_token=per_token)
    if 8 in RESULTS and 80 in RESULTS:
        ratio = RESULTS[80][0] / RESULTS[8][0]
        benchmark.extra_info["batch80_over_group8_per_proposal"] = ratio
        print(
            f"\nper proposal: group of 8 {RESULTS[8][0]:.3f} s, batch of 80 {RESULTS[80][0]:.3f} s"
            f" (x{ratio:.2f}); per generated token: {RESULTS[8][1] * 1e3:.1f} ms, "
            f"{RESULTS[80][1] * 1e3:.1f} ms"
        )
