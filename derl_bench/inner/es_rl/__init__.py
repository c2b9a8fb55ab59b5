"""ES+RL hybrid: evolution strategies over policy parameters merged with actor-critic RL.

The alternative DERL design in which one policy is improved by two parameter updates per
iteration, an ES step (Salimans et al. 2017) and an actor-critic step with a value baseline,
merged by ``es_weight`` and ``rl_weight``. Usable on its own (native reward) or as an inner
trainer on a meta-reward through ``episode_reward_fn``::

    from derl_bench.inner.es_rl import ESRLHybrid

    agent = ESRLHybrid(env_name="Pendulum-v1", state_dim=3, action_dim=1, population_size=50,
                       sigma=0.1, lr_es=0.01, lr_policy=3e-4, lr_value=3e-4, gamma=0.99,
                       rl_weight=0.5, es_weight=0.5)
    agent.train(num_iterations=1000, num_episodes_per_iter=10, batch_size=256, log_interval=10)
    agent.save("derl_model.pth"); agent.load("derl_model.pth")

Modules: :mod:`.config` (ESRLConfig), :mod:`.networks` (policy, value), :mod:`.rollout`
(EpisodeRecord, lockstep rollouts), :mod:`.es` (ES gradient), :mod:`.actor_critic` (RL step),
:mod:`.hybrid` (the trainer and the merge), :mod:`.results` (IterationStats, EvaluationResult),
:mod:`.checkpoint` (save/load).
"""

from __future__ import annotations

from derl_bench.inner.es_rl.config import ESRLConfig
from derl_bench.inner.es_rl.hybrid import ESRLHybrid
from derl_bench.inner.es_rl.networks import Policy, ValueNetwork
from derl_bench.inner.es_rl.results import EvaluationResult, IterationStats
from derl_bench.inner.es_rl.rollout import EpisodeRecord

__all__ = [
    "ESRLConfig",
    "ESRLHybrid",
    "EpisodeRecord",
    "EvaluationResult",
    "IterationStats",
    "Policy",
    "ValueNetwork",
]
