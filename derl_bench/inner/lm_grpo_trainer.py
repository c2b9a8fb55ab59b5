"""Inner GRPO training of a language-model policy with TRL's ``GRPOTrainer``.

The compiled meta-reward is TRL's reward function: for a batch of completions the primitives
are computed (``float64, shape (n_rollouts, K)``), the meta-reward maps them to rewards
(``shape (n_rollouts,)``), and non-finite rewards are set to 0 and counted. TRL then forms
group-normalised advantages ``(r - mean) / std`` over the ``group_size`` completions of each
prompt and optimises the clipped surrogate with a KL term to the initial policy (paper Eq. 4).
Validation is greedy pass@1 on V (paper Eq. 6), or with ``config.validation_samples = k`` the
mean pass@1 over k sampled completions per problem on a fixed stream
(:data:`VALIDATION_SAMPLING_SEED`).
"""

from __future__ import annotations

import functools
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from derl_bench.envs.records import MathRecord
from derl_bench.inner.base import (
    Cost,
    EvalResult,
    InnerResult,
    mean_evaluation,
    mean_inner_result,
    restart_seeds,
)
from derl_bench.inner.checkpoints import checkpoint_path
from derl_bench.inner.lm_grpo_config import LMGRPOConfig
from derl_bench.inner.lm_policy import (
    format_prompt,
    greedy_completions,
    load_policy,
    prompt_text,
    sampled_completions,
)
from derl_bench.meta_reward import MetaReward, safe_rewards
from derl_bench.primitives import PrimitiveSet

VALIDATION_SAMPLING_SEED = 20_251_215
"""Seed of the sampling stream of sampled validation and test (``validation_samples >= 1``).
Fixed, not the meta-step's seed: every meta-reward and seed is scored on the same stream."""


def _completion_text(completion: Any) -> str:
    """TRL passes plain strings, or for chat prompts a list of message dicts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


class _MetaRewardFunction:
    """TRL reward function: primitives → meta-reward, with per-step statistics."""

    def __init__(
        self, meta_reward: MetaReward, primitive_set: PrimitiveSet, records: Sequence[MathRecord]
    ) -> None:
        self.meta_reward = meta_reward
        self.primitive_set = primitive_set
        self.records = records
        self.calls: list[dict[str, float]] = []
        self.sums = np.zeros(len(primitive_set.names))
        self.n_rollouts = 0
        self.n_nonfinite = 0
        self.seconds = 0.0
        self.__name__ = "meta_reward"

    def __call__(
        self, prompts: list[Any], completions: list[Any], record_index: list[int], **_: Any
    ) -> list[float]:
        start = time.perf_counter()
        texts = [_completion_text(c) for c in completions]
        records = [self.records[i] for i in record_index]
        values = self.primitive_set.compute(texts, records)
        rewards, n_nonfinite = safe_rewards(self.meta_reward, values)
        self.n_nonfinite += int(n_nonfinite)
        self.n_rollouts += len(texts)
        self.sums += values.sum(axis=0)
        row: dict[str, float] = {
            "reward_mean": float(np.mean(rewards)),
            "reward_std": float(np.std(rewards)),
        }
        for name, mean in zip(self.primitive_set.names, values.mean(axis=0), strict=True):
            row[name] = float(mean)
        self.calls.append(row)
        self.seconds += time.perf_counter() - start
        return [float(r) for r in rewards]


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _with_torch_threads(method: _Method) -> _Method:
    """Run ``method`` with ``self.config.torch_threads`` torch threads (if set).

    For the whole call: training *and* validation decoding.
    """

    @functools.wraps(method)
    def wrapper(self: LMGRPOTrainer, *args: Any, **kwargs: Any) -> Any:
        if self.config.torch_threads is None:
            return method(self, *args, **kwargs)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.torch_threads)
        try:
            return method(self, *args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper  # type: ignore[return-value]


class LMGRPOTrainer:
    """One meta-step's inner loop for math domains: TRL GRPO on D_in, greedy pass@1 on V.

    Args:
        d_in: Inner training problems (D_in).
        val: Validation problems V (the outer reward is the success rate on them).
        train_pool: The whole training pool D_in ∪ V, for :meth:`evaluate_test`.
        test: Test problems, for :meth:`evaluate_test`.
        primitive_set: The domain's primitives; ``success_primitive`` defines success.
        config: The preset; its ``model`` is resolved by :func:`derl_bench.inner.models.
            model_source` when the policy is first loaded (so a tiny LM is built lazily).
        success_primitive: Name of the primitive whose value > 0.5 means "solved" (``g1``, exact
            outcome, PAPER_FACTS.md §2).
        data_dir: Data folder (for the tiny LM's warm-up data).
        keep_checkpoints: Where to save trained policies (a folder), or ``None`` to not save.
    """

    def __init__(
        self,
        *,
        d_in: Sequence[MathRecord],
        val: Sequence[MathRecord],
        train_pool: Sequence[MathRecord],
        test: Sequence[MathRecord],
        primitive_set: PrimitiveSet,
        config: LMGRPOConfig,
        success_primitive: str = "g1",
        data_dir: str | None = None,
        keep_checkpoints: str | None = None,
    ) -> None:
        if success_primitive not in primitive_set.names:
            raise ValueError(
                f"success_primitive={success_primitive!r} is not in {primitive_set.names}"
            )
        self.config = config
        self.primitive_set = primitive_set
        self.success_index = primitive_set.names.index(success_primitive)
        self.data_dir = data_dir
        self.keep_checkpoints = keep_checkpoints
        self.d_in = _subset(d_in, config.n_train)
        self.val = _subset(val, config.n_val)
        self.train_pool = _subset(train_pool, config.n_train)
        self.test = _subset(test, config.n_test)

    # -- training -------------------------------------------------------------------------------

    @_with_torch_threads
    def train_policy(
        self, meta_reward: MetaReward, records: Sequence[MathRecord], *, seed: int, init: Any
    ) -> tuple[Any, Any, _MetaRewardFunction, dict[str, Any]]:
        """Run TRL GRPO under ``meta_reward`` on ``records``; return the trained policy.

        Returns:
            ``(policy, tokenizer, reward_function, extra)``: the reward function holds the
            per-step statistics (``calls``, ``n_rollouts``, ``n_nonfinite``); ``extra`` has TRL's
            ``log_history``.
        """
        import torch
        from datasets import Dataset
        from transformers import PrinterCallback
        from transformers.utils import logging as hf_logging
        from trl import GRPOConfig, GRPOTrainer

        hf_logging.set_verbosity_error()
        config = self.config
        policy, tokenizer = load_policy(config, data_dir=self.data_dir, init=init)
        reward_fn = _MetaRewardFunction(meta_reward, self.primitive_set, records)
        dataset = Dataset.from_list(
            [{"prompt": format_prompt(r, config), "record_index": i} for i, r in enumerate(records)]
        )
        threads = torch.get_num_threads()
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        with tempfile.TemporaryDirectory(prefix="derl-grpo-") as out, warnings.catch_warnings():
            # transformers 5 renamed gradient_checkpointing; TRL still passes the old name.
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
            args = GRPOConfig(
                output_dir=out,
                max_steps=config.max_steps,
                per_device_train_batch_size=config.tasks_per_step * config.group_size,
                num_generations=config.group_size,
                max_completion_length=config.max_completion_length,
                learning_rate=config.learning_rate,
                lr_scheduler_type="constant",
                beta=config.beta,
                epsilon=config.epsilon,
                loss_type=config.loss_type,
                temperature=config.temperature,
                use_cpu=not torch.cuda.is_available(),
                report_to="none",
                save_strategy="no",
                logging_steps=1,
                seed=seed,
                data_seed=seed,
                disable_tqdm=True,
                log_level="error",
                # TRL >= 1 defaults to gradient checkpointing, which also turns off the KV cache
                # during rollout generation: many times slower on CPU for small models.
                gradient_checkpointing=config.gradient_checkpointing,
                bf16=config.bf16,
            )
            trainer = GRPOTrainer(
                model=policy,
                reward_funcs=reward_fn,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
            )
            trainer.remove_callback(PrinterCallback)  # TRL prints every log dict otherwise
            try:
                trainer.train()
            finally:
                torch.set_num_threads(threads)
            logs = [dict(entry) for entry in trainer.state.log_history]
            policy = trainer.model
            del trainer
        return policy, tokenizer, reward_fn, {"log_history": logs}

    def _evaluate(self, policy: Any, tokenizer: Any, records: Sequence[MathRecord]) -> EvalResult:
        """Greedy pass@1, or mean pass@1 over ``config.validation_samples`` sampled completions.

        ``n`` is ``len(records)``; success and primitive means are over all completions.
        """
        config = self.config
        prompts = [prompt_text(format_prompt(r, config), tokenizer) for r in records]
        budget = {
            "max_new_tokens": config.max_completion_length,
            "batch_size": config.eval_batch_size,
        }
        if config.validation_samples:
            completions, tokens = sampled_completions(
                policy,
                tokenizer,
                prompts,
                samples=config.validation_samples,
                temperature=config.temperature,
                seed=VALIDATION_SAMPLING_SEED,
                **budget,
            )
            records = [r for r in records for _ in range(config.validation_samples)]
        else:
            completions, tokens = greedy_completions(policy, tokenizer, prompts, **budget)
        values = self.primitive_set.compute(completions, records)
        solved = values[:, self.success_index] > 0.5
        return EvalResult(
            success=float(solved.mean()) if len(records) else 0.0,
            n=len(prompts),
            primitive_means={
                n: float(m)
                for n, m in zip(self.primitive_set.names, values.mean(axis=0), strict=True)
            },
            tokens=tokens,
            examples=tuple(completions[:3]),
        )

    @_with_torch_threads
    def train(self, meta_reward: MetaReward, *, seed: int, init: Any = None) -> InnerResult:
        """Train under ``meta_reward`` on D_in, evaluate greedily on V.

        Args:
            meta_reward: Parsed meta-reward over ``primitive_set.names``.
            seed: Seed of data order and sampling (TRL ``seed`` / ``data_seed``).
            init: Checkpoint folder to warm-start from, or ``None`` for the preset's policy.

        Returns:
            The :class:`InnerResult`; ``validation.success`` in [0, 1].

        With ``config.restarts`` = r > 1 the policy is trained r times from ``init`` with the
        inner seeds :func:`~derl_bench.inner.base.restart_seeds` and the result is their mean
        (:func:`~derl_bench.inner.base.mean_inner_result`).

        Raises:
            ValueError: If the meta-reward was parsed against other primitive names.
        """
        self._check(meta_reward)
        return mean_inner_result(
            [
                self._train_once(meta_reward, seed=s, init=init, keep=k == 0)
                for k, s in enumerate(restart_seeds(seed, self.config.restarts))
            ]
        )

    @property
    def inner_steps_per_training(self) -> int:
        """GRPO steps of one training: ``max_steps`` (the ``Cost.inner_steps`` of one restart)."""
        return self.config.max_steps

    def _train_once(
        self, meta_reward: MetaReward, *, seed: int, init: Any, keep: bool
    ) -> InnerResult:
        """One training and its validation; ``keep``: save its checkpoint (the first restart)."""
        start = time.perf_counter()
        policy, tokenizer, reward_fn, extra = self.train_policy(
            meta_reward, self.d_in, seed=seed, init=init
        )
        validation = self._evaluate(policy, tokenizer, self.val)
        checkpoint = None
        if keep and self.keep_checkpoints is not None:
            checkpoint = _save_checkpoint(
                policy,
                tokenizer,
                self.keep_checkpoints,
                lineage={
                    "parent": None if init is None else str(init),
                    "meta_reward": meta_reward.canonical,
                    "seed": seed,
                    "validation_success": validation.success,
                },
            )
        train_tokens = _logged_tokens(extra["log_history"])
        cost = Cost(
            wall_seconds=time.perf_counter() - start,
            inner_steps=self.inner_steps_per_training,
            rollouts=reward_fn.n_rollouts + validation.n * max(1, self.config.validation_samples),
            tokens=train_tokens + validation.tokens,
        )
        curve = [{"inner_step": i + 1, **row} for i, row in enumerate(reward_fn.calls)]
        means = reward_fn.sums / max(1, reward_fn.n_rollouts)
        return InnerResult(
            validation=validation,
            primitive_means={
                n: float(m) for n, m in zip(self.primitive_set.names, means, strict=True)
            },
            training_curve=curve,
            n_nonfinite_rewards=reward_fn.n_nonfinite,
            cost=cost,
            checkpoint=checkpoint,
            extra={"validation_examples": list(validation.examples)},
        )

    @_with_torch_threads
    def evaluate_test(self, meta_reward: MetaReward, *, seed: int) -> EvalResult:
        """Train a fresh policy on D_in ∪ V with the same step budget, evaluate on test.

        Returns:
            The test :class:`EvalResult` (``success`` = test success in [0, 1]; with
            ``config.restarts`` > 1 the mean over that many trainings, as in :meth:`train`).
        """
        self._check(meta_reward)
        results = []
        for s in restart_seeds(seed, self.config.restarts):
            policy, tokenizer, _, _ = self.train_policy(
                meta_reward, self.train_pool, seed=s, init=None
            )
            results.append(self._evaluate(policy, tokenizer, self.test))
        return mean_evaluation(results)

    @_with_torch_threads
    def evaluate_checkpoint(self, checkpoint: str, *, seed: int) -> EvalResult:
        """Greedy pass@1 on test of a policy saved by :meth:`train` (DERL-pop's chained policy).

        ``seed`` is accepted for the same call as the agent trainers'; greedy decoding does not
        depend on it.

        Raises:
            FileNotFoundError: If ``checkpoint`` is not a folder.
        """
        del seed
        folder = checkpoint_path(checkpoint)
        policy, tokenizer = load_policy(self.config, data_dir=self.data_dir, init=str(folder))
        return self._evaluate(policy, tokenizer, self.test)

    @_with_torch_threads
    def evaluate_initial(
        self, records: Sequence[MathRecord] | None = None, *, seed: int = 0
    ) -> EvalResult:
        """Greedy evaluation of the untrained initial policy (on V by default).

        ``seed`` is accepted for the same call as the agent trainers'; the initial LM and greedy
        decoding do not depend on it.
        """
        policy, tokenizer = load_policy(self.config, data_dir=self.data_dir)
        return self._evaluate(policy, tokenizer, self.val if records is None else records)

    def _check(self, meta_reward: MetaReward) -> None:
        if tuple(meta_reward.primitive_names) != tuple(self.primitive_set.names):
            raise ValueError(
                f"meta-reward was parsed over {meta_reward.primitive_names}, but this trainer's "
                f"primitives are {self.primitive_set.names}; parse it with "
                "primitive_names=primitive_set.names."
            )


def _subset(records: Sequence[MathRecord], n: int | None) -> tuple[MathRecord, ...]:
    """A fixed random subset of ``n`` records (seed 0, same on every machine), in file order."""
    if n is None or n >= len(records):
        return tuple(records)
    chosen = np.sort(np.random.default_rng(0).permutation(len(records))[:n])
    return tuple(records[int(i)] for i in chosen)


def _logged_tokens(log_history: list[dict[str, Any]]) -> int:
    values = [e["num_tokens"] for e in log_history if "num_tokens" in e]
    if not values:
        return 0
    last = values[-1]
    return int(last) if math.isfinite(float(last)) else 0


def _save_checkpoint(policy: Any, tokenizer: Any, root: str, *, lineage: dict[str, Any]) -> str:
    """Save a trained policy under ``root/<id>`` with ``lineage.json``; return the folder.

    The id is a hash of the lineage (parent checkpoint, canonical meta-reward, seed), so the same
    training saves to the same folder.
    """
    from derl_bench.inner.checkpoints import save_checkpoint

    def write(path: Any) -> None:
        policy.save_pretrained(path)
        tokenizer.save_pretrained(path)

    return save_checkpoint(root, lineage, write)
