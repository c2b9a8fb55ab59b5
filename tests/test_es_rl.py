"""ES+RL hybrid (derl_bench.inner.es_rl): config, shapes, merge, meta-reward, checkpoints."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from derl_bench.inner.es_rl import EpisodeRecord, ESRLConfig, ESRLHybrid
from derl_bench.inner.es_rl.es import centered_ranks, es_gradient, sample_population

torch.set_num_threads(1)

SMALL = {"population_size": 10, "hidden_sizes": (16,), "rl_updates_per_iter": 2}


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in module.parameters()])


def cartpole(**kw) -> ESRLHybrid:
    return ESRLHybrid("CartPole-v1", 4, 2, **{**SMALL, **kw})


# ---------------------------------------------------------------- config and construction


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"population_size": 7}, "population_size must be even.*7"),
        ({"population_size": 0}, "population_size must be an int >= 2, got 0"),
        ({"sigma": 0.0}, "sigma must be a finite number > 0, got 0.0"),
        ({"lr_es": float("nan")}, "lr_es .* got nan"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\], got 1.5"),
        ({"es_weight": -0.1}, "es_weight must be a finite number >= 0, got -0.1"),
        ({"es_weight": 0.0, "rl_weight": 0.0}, "both 0.*es_weight=0.0.*rl_weight=0.0"),
        ({"hidden_sizes": (64, 0)}, r"hidden_sizes .* got \(64, 0\)"),
        ({"replay_episodes": 0}, "replay_episodes must be an int >= 1, got 0"),
    ],
)
def test_config_rejects_bad_values_and_quotes_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ESRLConfig(state_dim=4, action_dim=2, **kwargs)
    with pytest.raises(ValueError, match=match):
        ESRLHybrid("CartPole-v1", **kwargs)


def test_constructor_maps_keywords_onto_config():
    agent = ESRLHybrid(
        env_name="CartPole-v1", state_dim=4, action_dim=2, population_size=12, sigma=0.05,
        lr_es=0.02, lr_policy=1e-3, lr_value=2e-3, gamma=0.98, rl_weight=0.3, es_weight=0.7,
        seed=3, hidden_sizes=(8, 8),
    )  # fmt: skip
    cfg = agent.config
    assert (cfg.population_size, cfg.sigma, cfg.lr_es, cfg.lr_policy, cfg.lr_value) == (
        12, 0.05, 0.02, 1e-3, 2e-3,
    )  # fmt: skip
    assert (cfg.gamma, cfg.rl_weight, cfg.es_weight, cfg.seed) == (0.98, 0.3, 0.7, 3)
    assert cfg.hidden_sizes == (8, 8) and cfg.env_name == "CartPole-v1"
    assert agent.policy_optimizer.param_groups[0]["lr"] == 1e-3
    assert agent.es_optimizer.param_groups[0]["lr"] == 0.02
    with pytest.raises(TypeError, match="unknown config field"):
        ESRLHybrid("CartPole-v1", hiden_sizes=(8,))


def test_dimension_and_env_errors():
    with pytest.raises(ValueError, match=r"state_dim=3 does not match .*needs 4"):
        ESRLHybrid("CartPole-v1", state_dim=3)
    with pytest.raises(ValueError, match=r"action_dim=1 does not match .*needs 2"):
        ESRLHybrid("CartPole-v1", action_dim=1)
    with pytest.raises(ValueError, match="exactly one of env_name and env_fn"):
        ESRLHybrid()
    agent = ESRLHybrid("Pendulum-v1", **SMALL)  # dims taken from the env
    assert (agent.config.state_dim, agent.config.action_dim, agent.continuous) == (3, 1, True)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="installed")
def test_tensorboard_missing_names_the_install_command(tmp_path):
    with pytest.raises(ImportError, match="pip install tensorboard"):
        cartpole(tensorboard_dir=str(tmp_path / "tb"))


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="not installed")
def test_tensorboard_writes_events(tmp_path):
    agent = cartpole(tensorboard_dir=str(tmp_path / "tb"))
    agent.train(1, num_episodes_per_iter=2, log_interval=1)
    agent.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


# ---------------------------------------------------------------- ES estimator


def test_centered_ranks_share_ties_and_span_half():
    r = centered_ranks(np.array([3.0, 1.0, 3.0, 2.0, 10.0]))
    np.testing.assert_allclose(r, [0.125, -0.5, 0.125, -0.25, 0.5])


def test_es_gradient_points_up_a_linear_fitness():
    w = torch.randn(10, generator=torch.Generator().manual_seed(1))
    noise, cands = sample_population(torch.zeros(10), 400, 0.1, torch.Generator().manual_seed(2))
    torch.testing.assert_close(cands[:200], -cands[200:])  # antithetic pairs
    g = es_gradient((cands @ w).numpy(), noise, 0.1)
    assert torch.nn.functional.cosine_similarity(g, w, dim=0) > 0.8


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("env_name", ["CartPole-v1", "Pendulum-v1"])
def test_shapes_of_actions_records_and_training(env_name):
    records: list[EpisodeRecord] = []

    def fn(record: EpisodeRecord) -> float:
        records.append(record)
        return 0.0

    agent = ESRLHybrid(env_name, episode_reward_fn=fn, max_episode_steps=30, **SMALL)
    s, a = agent.config.state_dim, agent.config.action_dim
    obs = np.zeros(s, dtype=np.float32)
    if agent.continuous:
        for greedy in (True, False):
            act = agent.policy.act(obs, greedy)
            assert act.shape == (a,) and act.dtype == np.float32 and np.all(np.abs(act) <= 2)
    else:
        assert agent.policy.act(obs, True) in (0, 1) and isinstance(agent.policy.act(obs), int)
    before = flat(agent.policy)
    (stats,) = agent.train(1, num_episodes_per_iter=3, batch_size=16, log_interval=0)
    assert len(records) == 10 + 3 and stats.iteration == 1
    for rec in records:
        t = rec.length
        assert 1 <= t <= 30 and rec.observations.shape == (t + 1, s)
        assert rec.observations.dtype == np.float32 and rec.native_rewards.dtype == np.float32
        assert rec.native_rewards.shape == (t,) and len(rec.infos) == t
        if agent.continuous:
            assert rec.actions.shape == (t, a) and rec.actions.dtype == np.float32
            assert np.all(np.abs(rec.actions) <= 2.0)
            assert rec.truncated and not rec.terminated and t == 30
        else:
            assert rec.actions.shape == (t,) and rec.actions.dtype == np.int64
            assert rec.terminated != rec.truncated
    assert not torch.equal(before, flat(agent.policy))
    if agent.continuous:  # the Gaussian log-std is learned by the RL step
        assert agent.policy.log_std.detach().ne(agent.config.init_log_std).all()


# ---------------------------------------------------------------- merge, meta-reward


@pytest.mark.parametrize("step", ["es", "rl"])
def test_merge_scales_each_update_by_its_weight(step):
    deltas = []
    for w in (1.0, 0.25):
        weights = {"es_weight": w, "rl_weight": 0.0} if step == "es" else {
            "es_weight": 0.0, "rl_weight": w}  # fmt: skip
        agent = cartpole(seed=5, **weights)
        before = flat(agent.policy)
        agent.train(1, num_episodes_per_iter=2, batch_size=32, log_interval=0)
        deltas.append(flat(agent.policy) - before)
    assert deltas[0].abs().max() > 0
    torch.testing.assert_close(deltas[1], 0.25 * deltas[0], rtol=1e-4, atol=1e-7)


def test_episode_reward_fn_hides_the_native_reward():
    agent = cartpole(episode_reward_fn=lambda rec: 3.0, es_weight=1.0, rl_weight=1.0)
    body = flat(agent.policy.body)
    (stats,) = agent.train(1, num_episodes_per_iter=2, log_interval=0)
    assert stats.es_fitness_mean == stats.es_fitness_max == stats.rl_score_mean == 3.0
    assert stats.rl_native_return_mean > 3.0  # episodes did pay native reward ...
    for ep in agent.replay:  # ... but RL only sees the episode reward, on the last step
        assert ep.rewards[-1] == 3.0 and torch.all(ep.rewards[:-1] == 0) and not ep.bootstrap
    # A constant fitness gives every ES candidate the same rank: no ES update at all.
    es_only = cartpole(episode_reward_fn=lambda rec: 3.0, rl_weight=0.0)
    es_only.train(2, log_interval=0)
    assert torch.equal(flat(es_only.policy.body), body)
    result = agent.evaluate(num_episodes=3, seed=7)
    assert result["mean_episode_reward"] == 3.0 and result["num_episodes"] == 3
    assert "mean_episode_reward" not in cartpole().evaluate(num_episodes=1)


def test_a_meta_reward_for_pushing_left_is_learned():
    def share_left(rec: EpisodeRecord) -> float:
        return float(np.mean(rec.actions == 0))

    agent = cartpole(episode_reward_fn=share_left, population_size=20, seed=1)
    start = agent.evaluate(num_episodes=5)
    agent.train(6, num_episodes_per_iter=4, batch_size=64, log_interval=0)
    end = agent.evaluate(num_episodes=5)
    assert start["mean_episode_reward"] < 0.8 <= end["mean_episode_reward"]
    assert end["mean_return"] < start["mean_return"]  # pushing left drops the pole sooner


# ---------------------------------------------------------------- determinism, checkpoints


def test_same_seed_same_parameters():
    runs = []
    for seed in (0, 0, 1):
        agent = cartpole(seed=seed)
        agent.train(2, num_episodes_per_iter=2, batch_size=32, log_interval=0)
        runs.append((flat(agent.policy), flat(agent.value)))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[2][0])


def test_save_load_round_trip_and_exact_resume(tmp_path):
    path = tmp_path / "derl_model.pth"
    agent = ESRLHybrid("Pendulum-v1", 3, 1, max_episode_steps=20, **SMALL)
    agent.train(2, num_episodes_per_iter=2, batch_size=32, log_interval=0)
    agent.save(path)
    other = ESRLHybrid("Pendulum-v1", 3, 1, max_episode_steps=20, seed=9, **SMALL)
    other.load(path)
    for mine, theirs in [(agent.policy, other.policy), (agent.value, other.value)]:
        for (name, a), b in zip(
            mine.state_dict().items(), theirs.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    assert other.iteration == 2 and other.config == agent.config
    # Continuing after load is bitwise the same as continuing without the round trip.
    agent.train(1, num_episodes_per_iter=2, batch_size=32, log_interval=0)
    other.train(1, num_episodes_per_iter=2, batch_size=32, log_interval=0)
    assert torch.equal(flat(agent.policy), flat(other.policy))
    assert torch.equal(flat(agent.value), flat(other.value))


def test_load_into_a_mismatched_agent_is_a_clear_error(tmp_path):
    path = tmp_path / "m.pth"
    cartpole().save(path)
    with pytest.raises(ValueError, match=r"hidden_sizes: checkpoint \(16,\) != agent \(8,\)"):
        cartpole(hidden_sizes=(8,)).load(path, strict=False)
    with pytest.raises(ValueError, match=r"continuous actions: checkpoint False != agent True"):
        ESRLHybrid("Pendulum-v1", **SMALL).load(path)
    loose = cartpole(lr_es=0.5)
    with pytest.raises(ValueError, match=r"lr_es: checkpoint 0.01 != agent 0.5"):
        loose.load(path)
    loose.load(path, strict=False)  # hyperparameters may differ when asked
    assert loose.config.lr_es == 0.5 and loose.es_optimizer.param_groups[0]["lr"] == 0.5


# ---------------------------------------------------------------- learning


def test_cartpole_reaches_195_within_6_iterations():
    # Measured on seeds 0-4: 2, 2, 3, 3, 3 iterations (RL alone: 3 each; ES alone with
    # lr_es=0.01: 15-27 or more). Each iteration: 50 ES episodes + 10 RL episodes.
    agent = ESRLHybrid(
        "CartPole-v1", 4, 2, population_size=50, sigma=0.1, lr_es=0.01, lr_policy=1e-3,
        lr_value=1e-3, gamma=0.99, es_weight=1.0, rl_weight=1.0, rl_updates_per_iter=32, seed=0,
    )  # fmt: skip
    initial = agent.evaluate(num_episodes=20)["mean_return"]
    for _ in range(6):
        agent.train(1, num_episodes_per_iter=10, batch_size=256, log_interval=0)
        result = agent.evaluate(num_episodes=20)
        if result["mean_return"] >= 195:
            break
    assert initial < 100
    assert result["mean_return"] >= 195, (agent.iteration, result)


# ---------------------------------------------------------------- as an inner trainer (es_rl)


def _es_rl_cartpole(**overrides):
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)

    return gymnasium.make(
        "DERL-CartPole-v0",
        preset="smoke",
        inner="es_rl",
        budget=1,
        inner_overrides={"max_steps": 2, "tasks_per_step": 2, "group_size": 2, "n_val": 1,
                         "n_test": 1, **overrides},
    )  # fmt: skip


def test_es_rl_test_training_is_charged_the_inner_steps_of_a_meta_step():
    env = _es_rl_cartpole()
    env.reset(seed=0)
    _, _, _, _, info = env.step("g1")
    test = env.unwrapped.evaluate_test("g1")
    assert info["cost"]["inner_steps"] == 2
    assert test["cost"]["inner_steps"] == info["cost"]["inner_steps"]


def test_es_rl_refuses_restarts_it_would_not_run():
    with pytest.raises(ValueError, match=r"es_rl.*restarts=2.*inner='grpo'"):
        _es_rl_cartpole(restarts=2)
