"""Train the ES+RL hybrid on Pendulum-v1 (continuous actions, Gaussian policy).

Usage::

    python examples/train_pendulum.py --iterations 1000 --seed 0 --save derl_model.pth

The settings are the issue's reference configuration (population 50, sigma 0.1, equal
weights 0.5). Pendulum's native return lies in about [-1600, 0]; a swung-up, balanced pole
scores above about -200. Expect slow progress: this example is a usage demonstration, the
settings are not tuned for Pendulum.
"""

from __future__ import annotations

import argparse
import logging

import torch

from derl_bench.inner.es_rl import ESRLHybrid


def main() -> None:
    """Parse arguments, train, evaluate and optionally save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--eval-interval", type=int, default=50, help="iterations per eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="checkpoint path (.pth)")
    parser.add_argument("--tensorboard-dir", default=None, help="needs: pip install tensorboard")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    agent = ESRLHybrid(
        env_name="Pendulum-v1",
        state_dim=3,
        action_dim=1,
        population_size=50,
        sigma=0.1,
        lr_es=0.01,
        lr_policy=3e-4,
        lr_value=3e-4,
        gamma=0.99,
        rl_weight=0.5,
        es_weight=0.5,
        seed=args.seed,
        tensorboard_dir=args.tensorboard_dir,
    )
    done = 0
    while done < args.iterations:
        n = min(args.eval_interval, args.iterations - done)
        agent.train(num_iterations=n, num_episodes_per_iter=10, batch_size=256, log_interval=10)
        done += n
        result = agent.evaluate(num_episodes=10)
        print(f"iteration {agent.iteration}: eval return {result['mean_return']:.1f}"
              f" +- {result['std_return']:.1f}")  # fmt: skip
    if args.save:
        agent.save(args.save)
        agent.load(args.save)  # round trip, as in the example
    agent.close()


if __name__ == "__main__":
    main()
