"""Property tests: random search and the GA's operators only ever produce valid meta-rewards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.cma_es import CMAESAgent, linear_meta_reward
from derl_bench.baselines.evolution import (
    EvolutionAgent,
    crossover,
    perturb_constants,
    subtree_mutation,
)
from derl_bench.baselines.expression_trees import TreeConfig, random_valid_tree
from derl_bench.baselines.random_search import RandomSearchAgent
from derl_bench.meta_reward import MAX_DEPTH, InvalidMetaReward, parse

seeds = st.integers(min_value=0, max_value=2**63 - 1)
primitive_sets = st.integers(min_value=1, max_value=6).map(
    lambda k: tuple(f"g{i}" for i in range(1, k + 1))
)
tree_configs = st.builds(
    TreeConfig,
    max_depth=st.integers(min_value=1, max_value=8),
    leaf_probability=st.floats(min_value=0.0, max_value=1.0),
    primitive_probability=st.floats(min_value=0.0, max_value=1.0),
    neg_probability=st.floats(min_value=0.0, max_value=1.0),
    constant_digits=st.integers(min_value=1, max_value=17),
    max_tries=st.integers(min_value=1, max_value=50),
)


def assert_parses(text: str, names: tuple[str, ...]) -> None:
    mr = parse(text, names)  # raises InvalidMetaReward otherwise
    assert mr.depth <= MAX_DEPTH
    assert set(mr.primitives_used) <= set(names)


@settings(max_examples=200, deadline=None)
@given(seed=seeds, names=primitive_sets, n=st.integers(min_value=1, max_value=8))
def test_random_search_proposals_always_parse(seed, names, n) -> None:  # noqa: ANN001
    agent = RandomSearchAgent(primitive_names=names, seed=seed)
    for _ in range(2):
        texts = agent.propose(None, n)
        assert len(texts) == n
        for text in texts:
            assert_parses(text, names)


@settings(max_examples=200, deadline=None)
@given(seed=seeds, names=primitive_sets, config=tree_configs)
def test_random_valid_tree_always_parses_for_any_tree_config(seed, names, config) -> None:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    parsed = random_valid_tree(rng, names, config)
    assert_parses(parsed.canonical, names)
    assert parse(parsed.canonical, names).canonical == parsed.canonical


@settings(max_examples=200, deadline=None)
@given(
    seed=seeds,
    names=primitive_sets,
    config=tree_configs,
    sigma=st.floats(min_value=0.0, max_value=10.0),
)
def test_ga_operators_always_produce_parseable_children(seed, names, config, sigma) -> None:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    first = random_valid_tree(rng, names, config).tree
    second = random_valid_tree(rng, names, config).tree
    limit = max(config.max_depth, first.depth)
    children = [
        crossover(first, second, rng=rng, primitive_names=names, config=config, tries=5),
        subtree_mutation(first, rng=rng, primitive_names=names, config=config, tries=5),
        perturb_constants(first, rng=rng, primitive_names=names, sigma=sigma, config=config),
    ]
    for child in children:
        assert_parses(child.canonical, names)
    assert children[0].depth <= limit and children[1].depth <= limit


@settings(max_examples=200, deadline=None)
@given(
    seed=seeds,
    names=primitive_sets,
    sizes=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=4),
    rewards=st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=8, max_size=8),
)
def test_ga_and_cma_agents_always_propose_parseable_texts(seed, names, sizes, rewards) -> None:  # noqa: ANN001
    for agent in (
        EvolutionAgent(primitive_names=names, seed=seed),
        CMAESAgent(primitive_names=names, seed=seed),
    ):
        for n in sizes:
            texts = agent.propose(None, n)
            assert len(texts) == n
            for text in texts:
                assert_parses(text, names)
            agent.update(
                [
                    StepResult(meta_reward=t, reward=r, info={"valid": r >= 0})
                    for t, r in zip(texts, rewards, strict=False)
                ]
            )


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=6
    ),
    digits=st.integers(min_value=1, max_value=17),
)
def test_linear_meta_reward_always_parses_and_keeps_the_weights(weights, digits) -> None:  # noqa: ANN001
    names = tuple(f"g{i}" for i in range(1, len(weights) + 1))
    text = linear_meta_reward(weights, names, digits=digits)
    expected = [float(f"{w:.{digits}g}") for w in weights]
    if not any(expected):  # every weight prints as 0: the same reward for every rollout
        with pytest.raises(InvalidMetaReward) as info:
            parse(text, names)
        assert info.value.reason == "constant"
        return
    recovered = parse(text, names)(np.eye(len(names)))
    assert np.allclose(recovered, expected, rtol=1e-12, atol=0.0)
