"""Train the ES+RL hybrid on CartPole-v1 (discrete actions) and evaluate it.

Usage::

    python examples/train_cartpole.py --iterations 20 --seed 0 --save cartpole_esrl.pth

Stops early once the greedy policy averages >= 195 native return over 20 evaluation
episodes (the classic "solved" threshold of CartPole-v0). With the defaults below this takes
2-3 iterations on seeds 0-4 (see tests/test_es_rl.py).
"""

from __future__ import annotations

import argparse
import logging

import torch

from derl_bench.inner.es_rl import ESRLHybrid


def main() -> None:
    """Parse arguments, train, evaluate and optionally save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="maximum iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=195.0, help="stop at this eval return")
    parser.add_argument("--save", default=None, help="checkpoint path (.pth)")
    parser.add_argument("--tensorboard-dir", default=None, help="needs: pip install tensorboard")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    agent = ESRLHybrid(
        env_name="CartPole-v1",
        state_dim=4,
        action_dim=2,
        population_size=50,
        sigma=0.1,
        lr_es=0.01,
        lr_policy=1e-3,
        lr_value=1e-3,
        gamma=0.99,
        rl_weight=1.0,
        es_weight=1.0,
        rl_updates_per_iter=32,
        seed=args.seed,
        tensorboard_dir=args.tensorboard_dir,
    )
    for _ in range(args.iterations):
        agent.train(num_iterations=1, num_episodes_per_iter=10, batch_size=256, log_interval=1)
        result = agent.evaluate(num_episodes=20)
        print(f"iteration {agent.iteration}: eval return {result['mean_return']:.1f}"
              f" +- {result['std_return']:.1f}")  # fmt: skip
        if result["mean_return"] >= args.target:
            print(f"reached {args.target} after {agent.iteration} iterations")
            break
    if args.save:
        agent.save(args.save)
    agent.close()


if __name__ == "__main__":
    main()
