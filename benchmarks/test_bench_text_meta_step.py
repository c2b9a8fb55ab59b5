"""One ``cpu`` meta-step of the cold-started text agents, with its time split and peak memory.

Run (needs the data, Java for ScienceWorld; several minutes per case, one core):
``.venv/bin/pytest benchmarks/test_bench_text_meta_step.py --benchmark-only -s``.

Each case times one ``env.step("(g1 + g2 + g3 + g4) / 4")`` of a text id (``-v1`` and newer)
at the ``cpu`` preset after the cold start was built (built by a warm-up untrained
evaluation, which also fills the engines' caches). ``extra_info`` holds the trainer's split
(``InnerResult.extra["seconds"]``): ``engine`` (env resets and steps while training),
``policy`` (``act``; its ``encoder`` part), ``update``, ``validation``; the fractions
``engine / total`` etc. (ratios, comparable across machines), the encoder's lookups and
misses (strings asked for, strings run through MiniLM), the process's CPU seconds (on a
shared machine wall seconds include waiting for a core; with rollout threads, summed over
threads) and the peak resident memory (GiB; the process's peak so far, so in a run of several
cases an upper bound for the later ones; the ScienceWorld JVMs, one per engine, are separate
processes of about 0.5 GB each). Cases with ``rollout_threads=2`` play the episodes on two
threads with two engines (``EpisodeGRPOConfig.rollout_threads``; other numbers than the id's
own, whose streams are shared); their ``engine`` and ``policy`` are summed over the threads,
so the split can exceed the wall time. ``DERL-ScienceWorld-*-v5``'s preset itself plays on
two threads and trains two restarts per meta-step (its split sums both trainings);
``DERL-ScienceWorld-L0-v6``'s trains three. Each
case starts with empty encoder caches and without the on-disk embedding store (so a case does
not depend on what the machine ran before; the ``warm_meta_steps`` case shows what a store
or an earlier meta-step of the process saves).
Nothing is asserted about speed. ``warm_meta_steps=2`` first runs two other meta-steps in the
same process (:data:`WARM_META_REWARDS`), as an outer run does before its third: the timed step
then finds their embeddings in the encoder's in-process cache.
"""

from __future__ import annotations

import resource

import pytest
from timed_meta_step import time_meta_step

pytestmark = [pytest.mark.slow, pytest.mark.data]
META_REWARD = "(g1 + g2 + g3 + g4) / 4"
WARM_META_REWARDS = ("g1", "g2 + g3 + g4")
"""Meta-steps run before the timed one in ``warm_meta_steps`` cases (an outer run's steady
state: the encoder's cache holds the strings earlier meta-steps embedded in this process)."""


@pytest.mark.parametrize(
    ("env_id", "warm_meta_steps", "rollout_threads"),
    [
        ("DERL-ALFWorld-L2-v1", 0, 0),
        ("DERL-ALFWorld-L2-v1", 2, 0),
        ("DERL-ScienceWorld-L2-v1", 0, 0),
        ("DERL-ScienceWorld-L2-v2", 0, 0),
        ("DERL-ScienceWorld-L2-v4", 0, 0),
        ("DERL-ScienceWorld-L2-v4", 2, 0),
        ("DERL-ScienceWorld-L2-v4", 0, 2),  # two rollout threads, two engines
        ("DERL-ScienceWorld-L2-v4", 2, 2),
        ("DERL-ScienceWorld-L2-v5", 0, 0),  # the preset's own 2 threads and 2 restarts
        ("DERL-ScienceWorld-L2-v5", 2, 0),
        ("DERL-ScienceWorld-L0-v6", 0, 0),  # L0's 2 threads and 3 restarts
        ("DERL-ScienceWorld-L0-v6", 2, 0),
    ],
)
@pytest.mark.benchmark(group="text-meta-step")
def test_bench_cpu_meta_step(benchmark, env_id, warm_meta_steps, rollout_threads) -> None:  # noqa: ANN001
    _time_meta_step(benchmark, env_id, warm_meta_steps, rollout_threads)


@pytest.mark.parametrize("transfer", ["one-per-call", "chunks"])
@pytest.mark.benchmark(group="valid-action-transfer")
def test_bench_valid_action_transfer(benchmark, monkeypatch, transfer) -> None:  # noqa: ANN001
    """L0-v6's steady-state meta-step with the simulator's valid actions fetched one py4j call
    per action (the ``scienceworld`` package's own transfer) or in chunks (``java_strings``,
    what the env uses). The numbers are the same (the same lists); only the time differs."""
    from derl_bench.envs import scienceworld

    if transfer == "one-per-call":
        from scienceworld import ScienceWorldEnv

        monkeypatch.setattr(scienceworld, "_simulator_class", lambda: ScienceWorldEnv)
    _time_meta_step(benchmark, "DERL-ScienceWorld-L0-v6", 2, 0)
    benchmark.extra_info["transfer"] = transfer


def _time_meta_step(benchmark, env_id, warm_meta_steps, rollout_threads) -> None:  # noqa: ANN001
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.inner.policies.sentence_encoder import load_minilm, load_minilm_unbatched

    encoder = load_minilm_unbatched()  # the text presets' encoder (unbatched_encoder=True)
    for shared in (load_minilm(), encoder):  # no strings from earlier cases
        shared.clear_cache()
        shared.store = None  # nor from the machine's embedding store (earlier runs)
    overrides = {"rollout_threads": rollout_threads} if rollout_threads else {}
    env = gymnasium.make(env_id, preset="cpu", budget=1, inner_overrides=overrides)
    env.unwrapped.trainer.evaluate_initial(seed=0)  # builds the cold start, warms the engine
    for meta_reward in WARM_META_REWARDS[:warm_meta_steps]:  # a run's earlier meta-steps
        env.reset(seed=0)
        env.step(meta_reward)
    time_meta_step(
        benchmark,
        env,
        META_REWARD,
        # strings asked for, and strings run through MiniLM
        lambda: {"encoder_lookups": encoder.n_lookups, "encoder_misses": encoder.n_encoded},
    )
    benchmark.extra_info.update(
        warm_meta_steps=warm_meta_steps,
        rollout_threads=env.unwrapped.trainer.config.rollout_threads,  # override or preset
        restarts=env.unwrapped.trainer.config.restarts,
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )
    print(env_id, benchmark.extra_info)
