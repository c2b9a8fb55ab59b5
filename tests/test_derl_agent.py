"""DERL and DERL-pop agents: cold start, outer GRPO learning, determinism, warm starts."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from derl_bench.baselines.base import MetaRewardAgent, StepResult
from derl_bench.baselines.derl import DERLAgent
from derl_bench.baselines.derl_pop import DERLPopAgent
from derl_bench.baselines.meta_optimizer import config_for_preset, group_advantages
from derl_bench.meta_reward import EPSILON, parse

NAMES = ("g1", "g2", "g3", "g4")
SMALL = {
    "backbone": "char-gru",
    "sft_steps": 20,
    "corpus_size": 60,
}  # quick agents where SFT quality does not matter

# Two rows of primitive values (float64, shape (1, 4)) that differ only in g2.
_G2_ON = np.array([[1.0, 1.0, 0.0, 0.0]]) + EPSILON
_G2_OFF = np.array([[1.0, 0.0, 0.0, 0.0]]) + EPSILON


def fake_outer_reward(text: str) -> float:
    """FAKE outer reward for unit tests only: pays for the weight a meta-reward puts on g2.

    Returns ``clip(mr(g2 on) - mr(g2 off), 0, 1)``: 0.3 for ``g1 + 0.3 * g2``, 0 without g2.
    """
    meta_reward = parse(text, primitive_names=NAMES)
    gain = meta_reward(_G2_ON)[0] - meta_reward(_G2_OFF)[0]
    return float(np.clip(gain, 0.0, 1.0)) if np.isfinite(gain) else 0.0


def _results(texts: list[str], rewards: list[float], **info) -> list[StepResult]:  # noqa: ANN003
    return [
        StepResult(meta_reward=t, reward=r, info={"valid": True, **info})
        for t, r in zip(texts, rewards, strict=True)
    ]


def _round(agent: DERLAgent, n: int = 8) -> float:
    texts = agent.propose(None, n)
    rewards = [fake_outer_reward(t) for t in texts]
    agent.update(_results(texts, rewards))
    return float(np.mean(rewards))


@pytest.fixture(scope="module")
def sft_agent() -> DERLAgent:
    """One char-gru (ablation) agent after its cold-start SFT; tests take deep copies."""
    return DERLAgent(primitive_names=NAMES, seed=0, backbone="char-gru")


def test_agent_follows_the_protocol(sft_agent: DERLAgent) -> None:
    assert isinstance(sft_agent, MetaRewardAgent) and sft_agent.name == "derl"
    assert DERLPopAgent.name == "derl_pop" and DERLPopAgent.needs_checkpoints is True
    config = sft_agent.config
    assert config["seed"] == 0 and config["primitive_names"] == list(NAMES)
    assert config["preset"] == "cpu" and config["temperature"] == 0.7 and config["kl_coef"] == 0.001


def test_cold_start_sft_makes_samples_look_like_the_corpus(sft_agent: DERLAgent) -> None:
    agent = copy.deepcopy(sft_agent)
    assert agent.sft_losses[-1] < agent.sft_losses[0] / 3
    texts = agent.propose(None, 200)
    assert len(texts) == 200
    assert np.mean(["g1" in t for t in texts]) >= 0.9  # every corpus record uses g1
    assert np.mean([" * " in t for t in texts]) >= 0.8  # weighted terms, spaced like the corpus
    for text in texts:
        parse(text, primitive_names=NAMES)


def test_outer_grpo_raises_the_fake_outer_reward(sft_agent: DERLAgent) -> None:
    agent = copy.deepcopy(sft_agent)
    before = [p.detach().clone() for p in agent.meta_optimizer.policy.parameters()]
    start = np.mean([fake_outer_reward(t) for t in agent.propose(None, 64)])
    round_means = [_round(agent) for _ in range(10)]
    end = np.mean([fake_outer_reward(t) for t in agent.propose(None, 64)])
    assert len(agent.history) == 10
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before, agent.meta_optimizer.policy.parameters(), strict=True)
    )
    assert end >= start + 0.25, (start, round_means, end)
    assert np.mean(round_means[-3:]) >= np.mean(round_means[:2]) + 0.2, round_means
    # The reference (SFT) model is frozen.
    assert all(not p.requires_grad for p in agent.meta_optimizer.reference.parameters())


def test_same_seed_gives_the_same_proposals_and_updates() -> None:
    first = DERLAgent(primitive_names=NAMES, seed=3, **SMALL)
    second = DERLAgent(primitive_names=NAMES, seed=3, **SMALL)
    for _ in range(2):
        texts = first.propose(None, 8)
        assert second.propose(None, 8) == texts
        rewards = [fake_outer_reward(t) + 0.01 * i for i, t in enumerate(texts)]
        first.update(_results(texts, rewards))
        second.update(_results(texts, rewards))
    assert first.propose(None, 8) == second.propose(None, 8)
    for a, b in zip(
        first.meta_optimizer.policy.state_dict().values(),
        second.meta_optimizer.policy.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    other = DERLAgent(primitive_names=NAMES, seed=4, **SMALL)
    assert other.corpus != first.corpus


def test_update_scores_invalid_results_zero_or_drops_them_and_checks_the_order(
    sft_agent: DERLAgent,
) -> None:
    agent = copy.deepcopy(sft_agent)
    assert agent.settings.invalid == "zero"
    texts = agent.propose(None, 2)
    with pytest.raises(ValueError, match="proposal order"):
        agent.update(_results([texts[0], "g1 + 123 * g4 - 7"], [0.5, 0.2]))
    invalid = {"valid": False}
    texts = agent.propose(None, 2)
    agent.update(
        [*_results(texts[:1], [0.5]), StepResult(meta_reward=texts[1], reward=-1.0, info=invalid)]
    )
    assert len(agent.history) == 1 and agent.history[0].n_samples == 2  # the invalid one as 0
    assert agent.history[0].mean_reward == pytest.approx(0.25)
    agent.settings = dataclasses.replace(agent.settings, invalid="drop_pad")
    texts = agent.propose(None, 4)
    agent.update(  # a budget cut the group short; the invalid result is dropped, group padded
        [
            *_results(texts[:2], [0.1, 0.6]),
            StepResult(meta_reward=texts[2], reward=-1.0, info=invalid),
        ]
    )
    assert len(agent.history) == 2 and agent.history[1].n_samples == 3
    assert agent.history[1].mean_reward == pytest.approx((0.1 + 0.6 + 0.1) / 3)
    with pytest.raises(ValueError, match="pending"):
        agent.update(_results(texts[:1], [0.1]))  # that group was already used


def test_group_advantages_are_normalised_within_the_group() -> None:
    advantages = group_advantages(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(advantages, torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4)
    assert torch.equal(group_advantages(torch.tensor([0.4, 0.4])), torch.zeros(2))


def test_derl_pop_warm_starts_from_the_best_checkpoint_of_the_round() -> None:
    agent = DERLPopAgent(primitive_names=NAMES, seed=0, **SMALL)
    assert agent.next_warm_start is None and agent.config["warm_start"]
    texts = agent.propose(None, 4)
    rewards = [0.2, 0.7, 0.7, -1.0]
    results = [
        StepResult(
            meta_reward=t,
            reward=r,
            info={"valid": r >= 0, "checkpoint_id": f"/ckpt/{i}"},
        )
        for i, (t, r) in enumerate(zip(texts, rewards, strict=True))
    ]
    agent.update(results)
    assert agent.next_warm_start == "/ckpt/1"  # best valid; the first of equal rewards
    texts = agent.propose(None, 2)
    agent.update(_results(texts, [0.1, 0.3]))  # no checkpoint_id in info
    assert agent.next_warm_start is None
    agent.update(
        [
            StepResult(meta_reward=t, reward=-1.0, info={"valid": False})
            for t in agent.propose(None, 2)
        ]
    )
    assert agent.next_warm_start is None  # no valid result: unchanged


def test_presets_and_configuration_errors() -> None:
    paper = config_for_preset("paper")
    assert paper.backbone == "Qwen/Qwen2.5-0.5B-Instruct" and paper.lr == 1e-6
    assert paper.ppo_epochs == 4 and paper.kl_coef == 0.001 and paper.entropy_coef == 0.0
    with pytest.raises(TypeError, match="unknown DERL option"):
        DERLAgent(primitive_names=NAMES, seed=0, learning_rate=1e-3)
    with pytest.raises(ValueError, match="temperature=0"):
        config_for_preset("cpu", temperature=0)
    with pytest.raises(ValueError, match="max_chars=1000"):
        config_for_preset("cpu", max_chars=1000)
    with pytest.raises(ValueError, match="preset='gpu'"):
        config_for_preset("gpu")


@pytest.mark.slow
@pytest.mark.data
def test_one_round_on_the_real_gsm8k_env() -> None:
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
        agent = DERLAgent(primitive_names=names, seed=0, backbone="char-gru")
        texts = agent.propose(observation, 2)
        results = []
        for text in texts:
            observation, reward, terminated, truncated, info = env.step(text)
            assert info["valid"], info.get("invalid_message")
            assert 0.0 <= reward <= 1.0
            results.append(StepResult(meta_reward=text, reward=reward, info=info))
        assert truncated and not terminated
        agent.update(results)
        assert len(agent.history) == 1
    finally:
        env.close()
