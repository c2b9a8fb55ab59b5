"""Search baselines: random search, the genetic algorithm and CMA-ES (issue 6, "Baselines")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from derl_bench.baselines.base import MetaRewardAgent, StepResult
from derl_bench.baselines.cma_es import CMAESAgent, CMAESConfig, linear_meta_reward
from derl_bench.baselines.evolution import (
    EvolutionAgent,
    EvolutionConfig,
    crossover,
    perturb_constants,
    subtree_mutation,
)
from derl_bench.baselines.expression_trees import (
    TreeConfig,
    count_nodes,
    get_subtree,
    random_tree,
    random_valid_tree,
    replace_subtree,
    round_significant,
    subtrees,
)
from derl_bench.baselines.random_search import RandomSearchAgent
from derl_bench.meta_reward import parse
from derl_bench.meta_reward.nodes import BinOp, Num, Prim, to_text

NAMES = ("g1", "g2", "g3", "g4")
AGENTS = [RandomSearchAgent, EvolutionAgent, CMAESAgent]


def fake_g2_reward(text: str, names: tuple[str, ...] = NAMES) -> float:
    """FAKE outer reward for unit tests only: pays for weight on g2, against the other weights.

    The "weight" of primitive i is mr(e_i) - mr(0) (exact for a linear meta-reward);
    reward = sigmoid(2 * (w2 - sum of |w_j| for j != 2)), 0 when non-finite; in [0, 1].
    """
    mr = parse(text, names)
    k = len(names)
    with np.errstate(all="ignore"):
        weights = mr(np.eye(k)) - mr(np.zeros((1, k)))
    if not np.all(np.isfinite(weights)):
        return 0.0
    z = 2.0 * (weights[1] - np.sum(np.abs(weights)) + abs(weights[1]))
    return float(1.0 / (1.0 + math.exp(-min(max(z, -50.0), 50.0))))


def fake_results(texts: list[str], reward=fake_g2_reward) -> list[StepResult]:  # noqa: ANN001
    """FAKE outer reward for unit tests only: StepResults as a MetaRewardEnv would return them."""
    results = []
    for text in texts:
        value = reward(text)
        info = {"canonical": parse(text, NAMES).canonical, "valid": True}
        results.append(StepResult(meta_reward=text, reward=value, info=info))
    return results


def run_rounds(agent, sizes, reward=fake_g2_reward) -> list[list[str]]:  # noqa: ANN001
    rounds = []
    for n in sizes:
        texts = agent.propose(None, n)
        rounds.append(texts)
        agent.update(fake_results(texts, reward))
    return rounds


# --- all agents -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", AGENTS)
def test_agent_returns_exactly_n_valid_expressions_each_round(cls) -> None:  # noqa: ANN001
    agent = cls(primitive_names=NAMES, seed=0)
    assert isinstance(agent, MetaRewardAgent)
    sizes = [*range(1, 9), *range(8, 0, -1)]
    for n, texts in zip(sizes, run_rounds(agent, sizes), strict=True):
        assert len(texts) == n
        for text in texts:
            assert isinstance(text, str)
            parse(text, NAMES)  # raises InvalidMetaReward if not valid


@pytest.mark.parametrize("cls", AGENTS)
@pytest.mark.parametrize("names", [("g1",), ("g1", "g2"), ("g2", "g5", "g7")])
def test_agent_uses_only_the_envs_primitives(cls, names) -> None:  # noqa: ANN001
    agent = cls(primitive_names=names, seed=1)
    for _ in range(3):
        texts = agent.propose(None, 4)
        used = {p for text in texts for p in parse(text, names).primitives_used}
        assert used <= set(names)
        agent.update([StepResult(meta_reward=t, reward=0.5, info={"valid": True}) for t in texts])


@pytest.mark.parametrize("cls", AGENTS)
def test_same_seed_same_proposals_other_seed_different(cls) -> None:  # noqa: ANN001
    sizes = [8, 3, 1, 8]
    first = run_rounds(cls(primitive_names=NAMES, seed=7), sizes)
    again = run_rounds(cls(primitive_names=NAMES, seed=7), sizes)
    other = run_rounds(cls(primitive_names=NAMES, seed=8), sizes)
    assert first == again
    assert first != other


@pytest.mark.parametrize("cls", AGENTS)
def test_agent_tracks_best_valid_result(cls) -> None:  # noqa: ANN001
    agent = cls(primitive_names=NAMES, seed=0)
    assert agent.best_meta_reward is None
    texts = agent.propose(None, 4)
    rewards = [0.2, 0.9, 0.9, 0.1]
    pairs = zip(texts, rewards, strict=True)
    agent.update([StepResult(meta_reward=t, reward=r, info={"valid": True}) for t, r in pairs])
    assert agent.best_reward == 0.9
    assert agent.best_meta_reward == texts[1]  # the earliest of the tie


@pytest.mark.parametrize("cls", AGENTS)
def test_agent_leaves_global_numpy_state_alone(cls) -> None:  # noqa: ANN001
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    run_rounds(cls(primitive_names=NAMES, seed=0), [8, 2])
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("cls", AGENTS)
def test_agent_rejects_n_below_one_and_unknown_setting(cls) -> None:  # noqa: ANN001
    agent = cls(primitive_names=NAMES, seed=0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        agent.propose(None, 0)
    with pytest.raises(TypeError):
        cls(primitive_names=NAMES, seed=0, no_such_setting=1)


@pytest.mark.parametrize("cls", AGENTS)
def test_agent_config_is_json_able(cls) -> None:  # noqa: ANN001
    import json

    config = cls(primitive_names=NAMES, seed=3).config
    assert json.loads(json.dumps(config))["seed"] == 3
    assert config["primitive_names"] == list(NAMES)


# --- expression trees -------------------------------------------------------------------------


def test_random_trees_respect_depth_and_use_only_given_primitives() -> None:
    rng = np.random.default_rng(0)
    config = TreeConfig(max_depth=3)
    for _ in range(200):
        tree = random_tree(rng, ("g2", "g9"), config)
        assert tree.depth <= 3
        assert {p.name for _, p in subtrees(tree) if isinstance(p, Prim)} <= {"g2", "g9"}


def test_random_valid_tree_falls_back_to_a_linear_form() -> None:
    # Only constants as leaves: no tree can use a primitive, so every draw is rejected.
    config = TreeConfig(primitive_probability=0.0, max_tries=5)
    parsed = random_valid_tree(np.random.default_rng(0), NAMES, config)
    assert parsed.primitives_used == NAMES
    assert parsed.canonical.count("*") == 4


def test_random_valid_tree_rounds_folded_constants() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        parsed = random_valid_tree(rng, NAMES)
        for _, node in subtrees(parsed.tree):
            if isinstance(node, Num):
                assert round_significant(node.value, 3) == node.value


def test_subtrees_count_get_and_replace() -> None:
    tree = parse("g1 * (g2 + 0.5) - -g3", NAMES).tree
    found = subtrees(tree)
    assert len(found) == count_nodes(tree) == tree.n_nodes
    assert found[0] == ((), tree)
    for path, node in found:
        assert get_subtree(tree, path) == node
        new = Prim(name="g4", index=3)
        replaced = replace_subtree(tree, path, new)
        assert get_subtree(replaced, path) == new
    path = next(p for p, n in found if isinstance(n, BinOp) and n.op == "+")
    assert to_text(replace_subtree(tree, path, Num(value=2.0))) == "g1 * 2 - -g3"
    with pytest.raises(IndexError):
        get_subtree(tree, (1, 1, 1, 1))


def test_tree_config_rejects_bad_values_quoting_them() -> None:
    with pytest.raises(ValueError, match="max_depth=0"):
        TreeConfig(max_depth=0)
    with pytest.raises(ValueError, match="operators"):
        TreeConfig(operators=("^",))
    with pytest.raises(ValueError, match="constant_low=2"):
        TreeConfig(constant_low=2.0, constant_high=1.0)


# --- genetic algorithm ------------------------------------------------------------------------


def _valid_parents(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    return rng, random_valid_tree(rng, NAMES), random_valid_tree(rng, NAMES)


@pytest.mark.parametrize("seed", range(20))
def test_operators_output_parses_within_depth(seed) -> None:  # noqa: ANN001
    rng, first, second = _valid_parents(seed)
    config = TreeConfig()
    for child in (
        crossover(first.tree, second.tree, rng=rng, primitive_names=NAMES, config=config),
        subtree_mutation(first.tree, rng=rng, primitive_names=NAMES, config=config),
        perturb_constants(first.tree, rng=rng, primitive_names=NAMES, sigma=0.5, config=config),
    ):
        assert parse(child.canonical, NAMES).canonical == child.canonical
        assert child.depth <= max(config.max_depth, first.depth)


def test_crossover_inserts_material_from_the_donor() -> None:
    rng = np.random.default_rng(0)
    first = parse("g1 + g2", NAMES).tree
    donor = parse("g3 * g4", NAMES).tree
    children = {
        crossover(first, donor, rng=rng, primitive_names=NAMES).canonical for _ in range(50)
    }
    assert any(("g3" in c or "g4" in c) for c in children)
    assert children <= {
        "g3 + g2", "g4 + g2", "g3 * g4 + g2", "g1 + g3", "g1 + g4", "g1 + g3 * g4",
        "g3", "g4", "g3 * g4",
    }  # fmt: skip


def test_perturb_constants_keeps_structure_and_moves_constants() -> None:
    rng = np.random.default_rng(0)
    parent = parse("0.5 * g1 + 2 * g2", NAMES)
    child = perturb_constants(parent.tree, rng=rng, primitive_names=NAMES, sigma=0.2)
    weights = child(np.eye(4))
    assert child.canonical != parent.canonical
    assert weights[2] == weights[3] == 0.0
    assert 0.5 * 0.2 < weights[0] < 0.5 * 1.8 and 2 * 0.2 < weights[1] < 2 * 1.8
    same = perturb_constants(parse("g1 * g2", NAMES).tree, rng=rng, primitive_names=NAMES)
    assert same.canonical == "g1 * g2"


def test_operators_fall_back_to_the_parent_when_no_child_is_valid() -> None:
    # The only subtree of "g1" is the root, and the new subtree may only be one constant:
    # every child uses no primitive and is rejected, so the parent comes back.
    rng = np.random.default_rng(0)
    parent = parse("g1", NAMES).tree
    config = TreeConfig(primitive_probability=0.0, max_depth=1)
    child = subtree_mutation(parent, rng=rng, primitive_names=NAMES, config=config, tries=3)
    assert child.canonical == "g1"


def test_ga_first_generation_is_the_heuristics_then_random_trees() -> None:
    agent = EvolutionAgent(primitive_names=NAMES, seed=0)
    texts = agent.propose(None, 8)
    assert texts[:3] == ["g1", "g1 + g2", "(g1 + g2 + g3 + g4) / 4"]
    assert len(set(texts)) == 8


def test_ga_offspring_are_novel_within_a_run() -> None:
    agent = EvolutionAgent(primitive_names=NAMES, seed=0)
    texts = [t for batch in run_rounds(agent, [8] * 6) for t in batch]
    assert len(set(texts)) == len(texts)


def _reward_only_g1(text: str) -> float:
    """FAKE outer reward for unit tests only: 1 for exactly ``g1``, else 0."""
    return 1.0 if parse(text, NAMES).canonical == "g1" else 0.0


@pytest.mark.parametrize("elite", [0, 1])
def test_ga_elitism_keeps_the_best(elite) -> None:  # noqa: ANN001
    agent = EvolutionAgent(primitive_names=NAMES, seed=0, population_size=2, elite=elite)
    run_rounds(agent, [2], _reward_only_g1)  # g1 (fitness 1) and g1 + g2 (fitness 0)
    assert agent.population[0].text == "g1"
    for _ in range(3):
        run_rounds(agent, [2], _reward_only_g1)  # offspring are novel, so never g1 again
        kept = [ind.text for ind in agent.population]
        assert ("g1" in kept) == (elite == 1)
    assert agent.best_meta_reward == "g1" and agent.best_reward == 1.0


def test_ga_population_best_never_drops_with_elitism() -> None:
    agent = EvolutionAgent(primitive_names=NAMES, seed=4)
    best = []
    for _ in range(8):
        run_rounds(agent, [5])
        best.append(agent.population[0].fitness)
        assert len(agent.population) <= agent.settings.population_size
    assert best == sorted(best)


@pytest.mark.parametrize("seed", range(4))
def test_ga_mean_fitness_rises_on_fake_reward(seed) -> None:  # noqa: ANN001
    agent = EvolutionAgent(primitive_names=NAMES, seed=seed)
    offspring_means, population_means = [], []
    for _ in range(10):
        texts = agent.propose(None, 8)
        results = fake_results(texts)
        agent.update(results)
        offspring_means.append(np.mean([r.reward for r in results]))
        population_means.append(np.mean([ind.fitness for ind in agent.population]))
    assert np.mean(offspring_means[-3:]) > np.mean(offspring_means[:2]) + 0.15
    assert population_means[-1] > population_means[0] + 0.15


def test_evolution_config_rejects_bad_values_quoting_them() -> None:
    with pytest.raises(ValueError, match="elite=8"):
        EvolutionConfig(elite=8)
    with pytest.raises(ValueError, match="crossover_rate=1.5"):
        EvolutionConfig(crossover_rate=1.5)
    with pytest.raises(TypeError, match="either config"):
        EvolutionAgent(config=EvolutionConfig(), elite=0)
    assert EvolutionConfig(max_depth=6, tree={"leaf_probability": 0.1}).tree.max_depth == 6


# --- CMA-ES -----------------------------------------------------------------------------------


def test_linear_meta_reward_text_parses_to_the_weights() -> None:
    text = linear_meta_reward([-0.3, 1.0, -2.5e-5, 1234.5678], NAMES)
    assert text == "-0.3 * g1 + 1 * g2 - 2.5e-05 * g3 + 1235 * g4"
    assert np.allclose(parse(text, NAMES)(np.eye(4)), [-0.3, 1.0, -2.5e-5, 1235.0])
    assert linear_meta_reward([1.0, -1e-9], ("g1", "g2"), digits=2) == "1 * g1 - 1e-09 * g2"
    with pytest.raises(ValueError, match="finite"):
        linear_meta_reward([float("nan")], ("g1",))


def test_cma_first_batch_centres_on_pure_outcome() -> None:
    agent = CMAESAgent(primitive_names=NAMES, seed=0)
    weights = np.array([parse(t, NAMES)(np.eye(4)) for t in agent.propose(None, 64)])
    assert np.allclose(weights.mean(axis=0), [1, 0, 0, 0], atol=0.25)
    assert 0.3 < weights.std(axis=0).mean() < 0.7  # sigma0 = 0.5


def test_cma_best_reward_rises_over_ten_rounds() -> None:
    agent = CMAESAgent(primitive_names=NAMES, seed=0)
    best, mean_w2 = [], []
    for _ in range(10):
        texts = agent.propose(None, 8)
        results = fake_results(texts)
        agent.update(results)
        best.append(max(r.reward for r in results))
        mean_w2.append(np.mean([parse(t, NAMES)(np.eye(4))[1] for t in texts]))
    assert agent.n_told == 80
    assert max(best[-3:]) > best[0] + 0.3
    assert mean_w2[-1] > mean_w2[0] + 0.5
    assert agent.best_reward == max(best)


def test_cma_tells_only_with_a_full_population_when_n_varies() -> None:
    agent = CMAESAgent(primitive_names=NAMES, seed=0)
    run_rounds(agent, [1, 1])  # popsize becomes max(3, 1) = 3
    assert agent.n_told == 0
    mean_before = agent.mean
    run_rounds(agent, [1])
    assert agent.n_told == 3
    assert not np.array_equal(agent.mean, mean_before)
    run_rounds(agent, [5])
    assert agent.n_told == 8  # more than popsize at once is fine
    run_rounds(agent, [2])
    assert agent.n_told == 8  # two pending
    run_rounds(agent, [1] * 10)  # repeated ask(1) is fine
    assert agent.n_told == 20


def test_cma_popsize_from_config_and_k_one() -> None:
    agent = CMAESAgent(primitive_names=("g1",), seed=0, popsize=4)
    run_rounds_k1 = [agent.propose(None, 3)]
    agent.update([StepResult(meta_reward=t, reward=0.5) for t in run_rounds_k1[0]])
    assert agent.n_told == 0  # 3 < popsize 4
    texts = agent.propose(None, 3)
    agent.update([StepResult(meta_reward=t, reward=0.5) for t in texts])
    assert agent.n_told == 6
    assert all(t.endswith(" * g1") for t in texts)


def test_cma_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="popsize=2"):
        CMAESConfig(popsize=2)
    with pytest.raises(ValueError, match="sigma0=0"):
        CMAESConfig(sigma0=0)
    with pytest.raises(ValueError, match="K=4"):
        CMAESAgent(primitive_names=NAMES, x0=(1.0, 0.0))


# --- real env (slow) --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("cls", AGENTS)
def test_agent_round_on_real_gsm8k_env(cls) -> None:  # noqa: ANN001
    import gymnasium

    import derl_bench  # noqa: F401  (registers the env ids)

    env = gymnasium.make(
        "DERL-GSM8K-v0",
        preset="smoke",
        budget=2,
        inner_overrides={"max_steps": 1, "n_val": 4, "n_test": 4},
    )
    try:
        observation, _ = env.reset(seed=0)
        names = tuple(env.unwrapped.primitive_set.names)
        agent = cls(primitive_names=names, seed=0)
        texts = agent.propose(observation, 2)
        results = []
        for text in texts:
            observation, reward, terminated, truncated, info = env.step(text)
            assert info["valid"], info.get("invalid_message")
            assert 0.0 <= reward <= 1.0
            results.append(StepResult(meta_reward=text, reward=reward, info=info))
        assert truncated and not terminated
        agent.update(results)
        assert agent.best_reward == max(r.reward for r in results)
        assert len(agent.propose(observation, 2)) == 2
    finally:
        env.close()
