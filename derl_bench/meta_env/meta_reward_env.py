"""MetaRewardEnv: the outer problem of DERL as a Gymnasium environment."""

from __future__ import annotations

import pickle
import string
import time
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from derl_bench.fidelity import FIDELITIES, effective_key, key_scheme, trainer_invariance
from derl_bench.inner.base import DEFAULT_PRESET
from derl_bench.inner.threads import pinned_torch_threads
from derl_bench.meta_env.domains import build_domain
from derl_bench.meta_reward import ALPHABET, MAX_LENGTH, InvalidMetaReward, MetaReward, parse

TEXT_CHARSET = string.printable
"""Characters of the observation's text fields."""


_COMPUTED_KEYS = (
    "validation_success",
    "primitive_means",
    "validation_primitive_means",
    "training_curve",
    "n_nonfinite_rewards",
    "cost",
    "checkpoint_id",
    "answer",
)
"""The ``info`` keys a training computes (the rest describe the action and the episode)."""


_NO_COST = {
    "wall_seconds": 0.0,
    "inner_steps": 0,
    "rollouts": 0,
    "tokens": 0,
    "simulated_seconds": 0.0,
}
"""The cost of a meta-step that trained nothing (invalid, or a cache hit)."""


def _sanitise(text: object) -> str:
    """Render any submitted action as observation text (printable, at most MAX_LENGTH chars)."""
    raw = text if isinstance(text, str) else repr(text)
    clean = "".join(c if c in TEXT_CHARSET else "?" for c in raw)
    return clean[:MAX_LENGTH]


class MetaRewardEnv(gymnasium.Env):
    r"""Env card: the outer loop of DERL (arXiv 2512.13399, Eq. 2) as an environment.

    ## Description
    Each action is a *meta-reward*: an arithmetic expression over the domain's primitives
    g1..gK (e.g. ``"g1 + 0.5 * g2"``). A step parses it (never ``eval``), trains a fresh policy
    with GRPO under that reward on the inner training split D_in, and returns the trained
    policy's success rate on the validation split V. An outer episode is a run of ``budget``
    meta-steps (one reward-search method's budget). Test success is never in ``info``: runners
    call :meth:`evaluate_test` once per finished run (the paper trains a fresh final policy on the
    whole training set and reports test only).

    Registered ids (each domain's card, with splits, primitives and presets, is the docstring
    of the module named):

    - ``DERL-GSM8K-v0`` — GSM8K train split 8:2 into D_in / V, test GSM8K test; math primitives
      (official ``meta_reward_grpo.py``): g1 exact outcome, g2 ``\\boxed{}`` present, g3 >= 2 step
      markers, g4 ground truth appears anywhere (each 1 or 0 plus ε = 1e-6).
      ``derl_bench/envs/math_tasks.py``.
    - ``DERL-MATH-v0`` — MATH train 8:2, test MATH-500; ``include_gsm8k_train=True`` adds GSM8K
      train to D_in as in the paper's MATH+GSM8k setting. Math primitives.
    - ``DERL-Arith-v0`` — generated grade-school word problems (1-3 steps, disjoint seed ranges
      for train / validation / test), a tiny LM warmed up on generated solutions; math
      primitives. Cheap: meta-rewards differ on a CPU. ``derl_bench/envs/arith.py``.
    - ``DERL-CartPole-v0``, ``DERL-Pendulum-v0`` — Gymnasium classic control with the native
      reward hidden; MLP policies trained by the compact GRPO (``inner="es_rl"``: the ES+RL
      hybrid); episode primitives. ``derl_bench/envs/classic.py``.
    - ``-v1`` of the six text ids below (the latest of ALFWorld): the same tasks, with a
      cold-started policy (behaviour cloning on D_in expert trajectories), the task line and
      the last 3 actions first in every observation, and ``cpu`` validation on all of V (the
      modules' ``ENV_CARD`` version histories). ``DERL-ScienceWorld-L0-v2``, ``-L1-v2``, ``-L2-v2``
      (the latest ScienceWorld): candidate rule 2 (at most 96) and a cold start whose expert
      teleports and names objects as the candidates do, on a larger ``cpu`` D_in.
    - ``DERL-ScienceWorld-L0-v0``, ``-L1-v0``, ``-L2-v0`` — the real ScienceWorld simulator
      (one JVM per inner env, Java >= 8); L0 tests on ``dev`` variations, L1 on ``test``
      variations of the training tasks, L2 on held-out task types; a frozen MiniLM +
      trainable action-scoring head (``smoke``/``cpu``) or an LLM agent (``paper``); agent
      primitives. ``derl_bench/envs/scienceworld.py`` (``ENV_CARD``). Measured meta-step on 2
      CPU cores: ``smoke`` 15 s, ``cpu`` 115 s.
    - ``DERL-ALFWorld-L0-v0``, ``-L1-v0``, ``-L2-v0`` — the real TextWorld engine on ALFWorld
      games (``valid_train`` 8:2 into D_in / V; L0 test ``valid_seen``, L1 ``valid_unseen``,
      L2 trains on four task types and tests on ``look_at_obj_in_light`` and
      ``pick_two_obj_and_place``, our choice). ``derl_bench/envs/alfworld.py`` (``ENV_CARD``).
      Measured meta-step on 2 CPU cores: ``smoke`` 18 s, ``cpu`` 159 s.

    Agent primitives (``derl_bench/primitives/episode.py``): g1 task success (1 or 0, plus ε);
    g2, g3, g4 the mean step score over the first, middle and last third of the episode (plus
    ε); each domain documents its step score.

    ## Action Space
    ``gymnasium.spaces.Text(max_length=512)`` over the expression alphabet (digits, ``g``, ``.``,
    ``e``, ``E``, ``+ - * /``, parentheses, space). Any ``str`` is accepted by :meth:`step`; text
    outside the language is an invalid meta-reward, not an error.

    ## Observation Space
    ``Dict``: ``instruction`` (Text, the fixed task instruction), ``primitives`` (Text, one line
    per primitive), ``history_meta_rewards`` (Sequence of Text: the meta-rewards of this episode,
    canonical form when valid), ``history_rewards`` (Box float32 shape ``(budget,)``: their
    rewards, 0 beyond ``history_length``), ``history_length`` (Discrete ``budget + 1``).

    ## Rewards
    Validation success in [0, 1]: greedy pass@1 on V (paper Eq. 6) of the policy trained under
    the meta-reward. An invalid meta-reward gets ``invalid_reward`` (default −1.0, as in the
    official DERL code's validity check), costs nothing and trains nothing.

    ## Starting State
    The preset's initial policy; ``reset(seed)`` sets the inner seed used by every meta-step of
    the episode, so the same (seed, meta-reward) always gives the same reward.

    ## Episode End
    ``truncated`` after ``budget`` meta-steps; ``terminated`` is never set.

    ## Info
    ``meta_step``, ``meta_reward``, ``canonical``, ``valid``, ``invalid_reason``,
    ``invalid_message``, ``validation_success``, ``primitive_means`` (training rollouts),
    ``validation_primitive_means``, ``training_curve``, ``n_nonfinite_rewards``, ``cost``
    (``wall_seconds``, ``inner_steps``, ``rollouts``, ``tokens``), ``cache_hit``,
    ``checkpoint_id`` (a folder, when made with ``keep_checkpoints``), ``warm_start``,
    ``effective_key`` (:func:`derl_bench.fidelity.keys.effective_key`: meta-rewards that train
    identically under the inner trainer's invariances share it, and share the cache),
    ``fidelity``, ``answer`` (None live; table: the recorded seed and meta-reward answered;
    surrogate: model, predicted mean and seed spread, nearest recorded meta-reward; both: the
    table's ``table_sha256``, by which a resumed run checks it is answered by the same table).
    ``cost`` also has ``simulated_seconds``, the live seconds the answer stands for (live: the
    wall seconds). ``cost.wall_seconds`` and, live, ``cost.simulated_seconds`` are the only
    fields that differ between runs.

    ## Fidelities
    ``fidelity="live"`` (default) trains. ``"table"`` answers from recorded live meta-steps of
    the same id and preset (``derl_bench/fidelity/tables/``, built by ``derl-bench fidelity
    build``): the entry of the meta-reward's effective key recorded with the env's seed, else
    the recorded seed at position ``seed mod n`` of its sorted seeds; a key the table does not
    hold raises :class:`derl_bench.fidelity.table.TableKeyMissing` naming the command that adds
    it. ``"surrogate"`` predicts from a regressor fitted on the table (``noisy=True``: a draw
    from the predicted seed spread, deterministic in seed and key); its held-out error is in
    ``docs/fidelity/<env id>-<preset>.md`` (``derl-bench fidelity report``; e.g. DERL-CartPole-v0
    at ``cpu``: 545 keys x 3 seeds, 5-fold Spearman rho 0.957). :attr:`fidelity_source` names
    the table that answers (it grows while it is built). Both charge the recorded / predicted
    live cost in ``cost.simulated_seconds`` and need no torch; warm starts do not change their
    answers.

    ## Warm start (DERL-pop)
    :meth:`set_warm_start` makes the following meta-steps train from a saved checkpoint instead
    of the initial policy; ``reset`` clears it.

    ## Arguments
    ``domain`` (set by the id), ``preset`` (``"smoke"``, ``"cpu"`` default, ``"paper"``),
    ``budget`` (meta-steps per outer episode, default 16), ``invalid_reward`` (default −1.0),
    ``data_dir`` (data folder; default ``$DERL_BENCH_DATA`` or ``../shared/data``),
    ``inner_overrides`` (dict of fields of the domain's inner config:
    :class:`derl_bench.inner.lm_presets.LMGRPOConfig` for math,
    :class:`derl_bench.inner.episode_grpo_config.EpisodeGRPOConfig` for episode domains),
    ``policy`` (shortcut for ``inner_overrides={"model": …}``: a local folder or model id),
    ``include_gsm8k_train`` (MATH only), ``keep_checkpoints`` (folder to save trained policies),
    ``data_source`` (``"local"`` default, or ``"hf"`` to load the data sets from the Hugging
    Face Hub where it is reachable), ``level`` (set by the id of leveled domains: ``"L0"``,
    ``"L1"``, ``"L2"``), ``inner`` (classic control: ``"grpo"`` default or ``"es_rl"``),
    ``fidelity`` (``"live"``, ``"table"``, ``"surrogate"``), ``table_dir`` (root of table
    folders; default the shipped tables), ``noisy`` (surrogate only),
    ``version`` (set by the id of versioned domains: the text domains' preset version, 0 when
    absent; see ``derl_bench/inner/episode_presets.py``), ``torch_threads`` (torch intra-op
    threads of each live meta-step, default 1; None leaves torch's default, and numbers may then
    depend on the machine's cores). Published numbers use 1; other counts change the last bits
    of a training (the text agents' MiniLM embeddings included), so their results are not
    comparable bit for bit.

    ## Version History
    - v0: initial release (8:2 splits with seed 0; math presets in
      ``derl_bench/inner/lm_presets.py``, agent presets in ``derl_bench/inner/episode_presets.py``).
      Not frozen until the first leaderboard submission; changed since: Pendulum presets use
      reward-to-go credit, and constant meta-rewards (``g1 - g1``) are invalid.

    Raises:
        ValueError: On an unknown domain, preset or fidelity, invalid overrides, or
            ``noisy=True`` at a fidelity other than ``"surrogate"``.
        derl_bench.envs.data.DataFileMissing: If the domain's data files are missing.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        domain: str,
        *,
        preset: str = DEFAULT_PRESET,
        budget: int = 16,
        invalid_reward: float = -1.0,
        data_dir: str | None = None,
        inner_overrides: dict[str, Any] | None = None,
        policy: str | None = None,
        include_gsm8k_train: bool = False,
        keep_checkpoints: str | None = None,
        data_source: str = "local",
        level: str | None = None,
        inner: str | None = None,
        torch_threads: int | None = 1,
        fidelity: str = "live",
        table_dir: str | None = None,
        noisy: bool = False,
        version: int | None = None,
    ) -> None:
        if fidelity not in FIDELITIES:
            raise ValueError(
                f"Unknown fidelity {fidelity!r}; choose one of {', '.join(FIDELITIES)}."
            )
        if noisy and fidelity != "surrogate":
            raise ValueError(
                f"noisy=True draws from the surrogate's predicted seed spread; it needs "
                f"fidelity='surrogate' (got {fidelity!r}). Drop noisy, or use the surrogate."
            )
        if budget < 1:
            raise ValueError(f"budget={budget} must be >= 1 (meta-steps per outer episode)")
        if not invalid_reward <= 0:
            raise ValueError(f"invalid_reward={invalid_reward} must be <= 0")
        if torch_threads is not None and (
            isinstance(torch_threads, bool)
            or not isinstance(torch_threads, int)
            or torch_threads < 1
        ):
            raise ValueError(
                f"torch_threads={torch_threads!r} must be an int >= 1, or None for torch's "
                "default (then numbers may differ between machines with different core counts)"
            )
        overrides = dict(inner_overrides or {})
        if policy is not None:
            overrides["model"] = policy
        extra: dict[str, Any] = {}
        if include_gsm8k_train:
            extra["include_gsm8k_train"] = True
        if data_source != "local":
            extra["data_source"] = data_source
        if level is not None:
            extra["level"] = level
        if inner is not None:
            extra["inner"] = inner
        if version is not None:
            extra["version"] = version
        self.fidelity = fidelity
        self.identity_kwargs = {**extra, "inner_overrides": dict(overrides)}
        """The kwargs that change the numbers a meta-step returns (a table records them)."""
        self._answers: Any = None
        if fidelity == "live":
            self._domain = build_domain(
                domain,
                preset=preset,
                inner_overrides=overrides,
                data_dir=data_dir,
                keep_checkpoints=keep_checkpoints,
                **extra,
            )
            self.primitive_set = self._domain.primitive_set
            self.instruction = self._domain.instruction
            self.trainer = self._domain.trainer
            self.key_scheme = key_scheme(self.primitive_set, trainer_invariance(self.trainer))
        else:
            from derl_bench.fidelity.answers import RecordedAnswers, env_id_for
            from derl_bench.primitives import get_primitive_set

            self._answers = RecordedAnswers(
                env_id_for(domain, level, version),
                preset,
                fidelity,
                self.identity_kwargs,
                table_dir=table_dir,
                noisy=noisy,
            )
            self.primitive_set = get_primitive_set(self._answers.primitive_set_name)
            self.instruction = self._answers.instruction
            self.trainer = None
            self.key_scheme = self._answers.scheme
        self.domain_name = domain
        self.preset = preset
        self.budget = budget
        self.torch_threads = torch_threads
        self.invalid_reward = float(invalid_reward)

        self.action_space = spaces.Text(max_length=MAX_LENGTH, min_length=1, charset=ALPHABET)
        self.observation_space = spaces.Dict(
            {
                "instruction": spaces.Text(max_length=4096, min_length=0, charset=TEXT_CHARSET),
                "primitives": spaces.Text(max_length=4096, min_length=0, charset=TEXT_CHARSET),
                "history_meta_rewards": spaces.Sequence(
                    spaces.Text(max_length=MAX_LENGTH, min_length=0, charset=TEXT_CHARSET)
                ),
                "history_rewards": spaces.Box(
                    low=min(self.invalid_reward, 0.0), high=1.0, shape=(budget,), dtype=np.float32
                ),
                "history_length": spaces.Discrete(budget + 1),
            }
        )
        self._cache: dict[tuple[str, int, Any], dict[str, Any]] = {}
        self._seed = 0
        self._meta_step = 0
        self._history: list[tuple[str, float]] = []
        self._warm_start: str | None = None
        self._prefetched: dict[tuple[str, int, Any], dict[str, Any]] = {}

    # -- gymnasium API --------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an outer episode.

        Args:
            seed: Inner seed for every meta-step of this episode (``None``: drawn from the
                env's generator, itself seeded by the first ``reset(seed=…)``).
            options: Unused; reserved.

        Returns:
            The observation (empty history) and an info dict with ``seed`` and ``preset``.
        """
        super().reset(seed=seed)
        self._seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self._meta_step = 0
        self._history = []
        self._warm_start = None
        self._prefetched.clear()
        return self._observation(), {"seed": self._seed, "preset": self.preset}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Run one meta-step: parse, train under the meta-reward, validate.

        Args:
            action: Meta-reward text (any object is accepted; non-text is invalid).

        Returns:
            ``(observation, reward, terminated, truncated, info)``; reward is the validation
            success in [0, 1], or ``invalid_reward`` for an invalid meta-reward.

        Raises:
            RuntimeError: If the budget is already spent (call :meth:`reset`).
        """
        if self._meta_step >= self.budget:
            raise RuntimeError(
                f"The outer budget of {self.budget} meta-steps is spent; call reset() to start a "
                "new outer episode."
            )
        info = self._run(action)
        reward = float(info["validation_success"]) if info["valid"] else self.invalid_reward
        shown = info["canonical"] if info["valid"] else _sanitise(action)
        self._history.append((shown, reward))
        self._meta_step += 1
        truncated = self._meta_step >= self.budget
        return self._observation(), reward, False, truncated, info

    @property
    def data_hashes(self) -> dict[str, str]:
        """The data files this env's domain read: ``{path relative to the data root: sha256}``.

        Sorted by path. An ALFWorld split is one entry, ``alfworld/json_2.1.1/<split>``, with
        the :func:`~derl_bench.envs.data.files_digest` of its games' files. Empty for the
        generated (Arith) and simulated (classic control, ScienceWorld, whose tasks ship in its
        jar) domains and at the ``table`` / ``surrogate`` fidelity, which reads no data
        (:attr:`fidelity_source` names the table instead). The runner writes it into the
        result file (``data_hashes``). Source: ``Domain.data_files``
        (:func:`derl_bench.meta_env.domains.build_domain`).
        """
        return {} if self._answers is not None else dict(self._domain.data_files)

    @property
    def fidelity_source(self) -> dict[str, Any] | None:
        """What answers at the ``table`` / ``surrogate`` fidelity; None live.

        A :class:`derl_bench.fidelity.answers.FidelitySourceRecord`: the table folder, its keys
        and entries, the SHA-256 of its files and, for the surrogate, the regressor family and
        feature set. The runner writes it into the result file (``fidelity_source``).
        """
        return None if self._answers is None else dict(self._answers.source())

    def close(self) -> None:
        """Release the cache (inner trainers hold no open resources between steps)."""
        self._cache.clear()

    def set_warm_start(self, checkpoint: str | None) -> None:
        """Train the following meta-steps from ``checkpoint`` instead of the initial policy.

        DERL-pop (PAPER_FACTS.md §1): each outer iteration starts from the best-validation
        checkpoint of the previous one. Checkpoints are the ``info["checkpoint_id"]`` folders
        written when the env was made with ``keep_checkpoints=FOLDER``; each holds a
        ``lineage.json`` (parent, meta-reward, seed, validation success). ``reset`` clears it.

        Raises:
            FileNotFoundError: If ``checkpoint`` is not an existing folder.
        """
        if checkpoint is not None:
            from pathlib import Path

            if not Path(checkpoint).is_dir():
                raise FileNotFoundError(
                    f"Warm-start checkpoint {checkpoint!r} does not exist; pass a "
                    "checkpoint_id from info of an env made with keep_checkpoints=FOLDER."
                )
        if self._answers is not None:
            self._answers.note_warm_start(checkpoint)
        self._warm_start = checkpoint

    def prefetch(self, meta_rewards: Sequence[object], executor: Any) -> int:
        """Train a proposal batch concurrently; the following ``step`` calls answer from it.

        Each valid meta-reward not cached or already prefetched is trained through ``executor``
        (:mod:`derl_bench.meta_env.executors`) with this episode's seed and warm start, on
        workers' copies of this env (``gymnasium.make(self.spec.id, **self.spec.kwargs)``).
        ``step(meta_reward)`` then returns exactly what training it here would have returned
        (the same numbers, cost and ``cache_hit`` False; only ``wall_seconds`` is the worker's).
        A meta-step whose worker died twice comes back from ``step`` as not valid, with
        ``invalid_reason`` ``"failed"`` and the error in ``invalid_message``; nothing is
        trained for it here and the outer episode goes on.

        Args:
            meta_rewards: The batch (invalid ones are skipped; ``step`` rejects them as usual).
            executor: An executor (``run(env_id, env_kwargs, tasks)``).

        Returns:
            How many meta-steps were trained.

        Raises:
            ValueError: If the env was not made by ``gymnasium.make`` (no ``spec``).
        """
        from derl_bench.meta_env.executors import MetaStepTask

        if self._answers is not None:
            return 0  # table / surrogate answers need no training
        if self.spec is None:
            raise ValueError(
                "prefetch() needs an env made by gymnasium.make (workers rebuild it from spec)."
            )
        todo: dict[tuple[str, int, Any], str] = {}
        for action in meta_rewards:
            try:
                parsed = parse(action, primitive_names=self.primitive_set.names)
            except InvalidMetaReward:
                continue
            key = (effective_key(parsed, self.key_scheme), self._seed, self._warm_start)
            if key not in self._cache and key not in self._prefetched:
                todo.setdefault(key, parsed.canonical)
        if not todo:
            return 0
        kwargs = {k: v for k, v in (self.spec.kwargs or {}).items() if k != "budget"}
        tasks = [
            MetaStepTask(meta_reward=text, seed=self._seed, warm_start=self._warm_start)
            for text in todo.values()
        ]
        for key, outcome in zip(todo, executor.run(self.spec.id, kwargs, tasks), strict=True):
            if outcome.failed:
                self._prefetched[key] = {"error": outcome.error}
            else:
                self._prefetched[key] = {k: outcome.info[k] for k in _COMPUTED_KEYS}
        return len(tasks)

    def training_cost(self, meta_reward: object) -> dict[str, Any]:
        """The cost of the training this env ran (or was given) for ``meta_reward``.

        A cache hit costs nothing in this env (``info["cost"]`` is all zeros); an executor
        worker that answers a task from its env's cache reports this cost instead, so the
        caller's accounting is the same as if the worker had trained again.

        Args:
            meta_reward: A meta-reward already stepped at this episode's seed and warm start.

        Returns:
            The ``info["cost"]`` dict of the meta-step that trained it (``wall_seconds`` in s,
            ``inner_steps``, ``rollouts``, ``tokens``, ``simulated_seconds``).

        Raises:
            KeyError: If this meta-reward was not trained at this seed and warm start.
            InvalidMetaReward: If ``meta_reward`` does not parse.
        """
        parsed = parse(meta_reward, primitive_names=self.primitive_set.names)
        key = (effective_key(parsed, self.key_scheme), self._seed, self._warm_start)
        if key not in self._cache:
            raise KeyError(
                f"'{parsed.canonical}' was not trained at seed {self._seed} and this warm "
                "start; step it first"
            )
        return dict(self._cache[key]["cost"])

    # -- runners --------------------------------------------------------------------------------

    def evaluate_test(self, meta_reward: str) -> dict[str, Any]:
        """Train a fresh policy on the whole training pool under ``meta_reward``; score on test.

        Called once per finished run by runners (leaderboards rank this number); never fed back
        to agents. Uses the episode's seed and the same inner step budget as a meta-step.

        Returns:
            ``{"test_success": float in [0, 1], "n_test": int, "cost": {...},
            "primitive_means": {...}}``.

        Raises:
            derl_bench.meta_reward.InvalidMetaReward: If ``meta_reward`` is invalid.
        """
        parsed = parse(meta_reward, primitive_names=self.primitive_set.names)
        if self._answers is not None:
            key = effective_key(parsed, self.key_scheme)
            return self._answers.test(parsed, key, self._seed)
        start = time.perf_counter()
        with pinned_torch_threads(self.torch_threads):
            result = self.trainer.evaluate_test(parsed, seed=self._seed)
        # counted as the trainer counts a meta-step's (Cost.inner_steps): per training x restarts
        steps = self.trainer.inner_steps_per_training * getattr(
            getattr(self.trainer, "config", None), "restarts", 1
        )
        seconds = time.perf_counter() - start
        return {
            "test_success": float(result.success),
            "n_test": int(result.n),
            "cost": {
                "wall_seconds": seconds,
                "inner_steps": int(steps),
                "rollouts": int(result.n),
                "tokens": int(result.tokens),
                "simulated_seconds": seconds,
            },
            "primitive_means": dict(result.primitive_means),
        }

    def evaluate_checkpoint_test(self, checkpoint: str) -> dict[str, Any]:
        """Score a saved policy on test as it is, without training (DERL-pop's chained policy).

        DERL-pop reports the policy it chained round after round (each round's trainings warm-start
        from the previous round's best checkpoint; arXiv 2512.13399 §3.2), not a fresh one; the
        runner scores both for agents with warm starts. Live fidelity only: a table or surrogate
        keeps no policies.

        Args:
            checkpoint: ``info["checkpoint_id"]`` of a meta-step of this env (made with
                ``keep_checkpoints``).

        Returns:
            ``{"test_success": float in [0, 1], "n_test": int, "checkpoint_id": str,
            "cost": {...}}``; the cost has ``inner_steps`` 0 (nothing is trained).

        Raises:
            ValueError: At the table or surrogate fidelity.
            FileNotFoundError: If the folder holds no policy of this env's trainer.
        """
        if self._answers is not None:
            raise ValueError(
                f"fidelity={self.fidelity!r} keeps no trained policies; score a chained policy "
                "with fidelity='live' and keep_checkpoints=..."
            )
        start = time.perf_counter()
        with pinned_torch_threads(self.torch_threads):
            result = self.trainer.evaluate_checkpoint(str(checkpoint), seed=self._seed)
        seconds = time.perf_counter() - start
        return {
            "test_success": float(result.success),
            "n_test": int(result.n),
            "checkpoint_id": str(checkpoint),
            "cost": {
                "wall_seconds": seconds,
                "inner_steps": 0,
                "rollouts": int(result.n),
                "tokens": int(result.tokens),
                "simulated_seconds": seconds,
            },
        }

    # -- internals ------------------------------------------------------------------------------

    def _observation(self) -> dict[str, Any]:
        rewards = np.zeros(self.budget, dtype=np.float32)
        for i, (_, r) in enumerate(self._history):
            rewards[i] = r
        return {
            "instruction": self.instruction,
            "primitives": self.primitive_set.describe(),
            "history_meta_rewards": tuple(m for m, _ in self._history),
            "history_rewards": rewards,
            "history_length": len(self._history),
        }

    def _base_info(self, action: object) -> dict[str, Any]:
        return {
            "meta_step": self._meta_step,
            "meta_reward": _sanitise(action),
            "canonical": None,
            "valid": False,
            "invalid_reason": None,
            "invalid_message": None,
            "validation_success": None,
            "primitive_means": {},
            "validation_primitive_means": {},
            "training_curve": [],
            "n_nonfinite_rewards": 0,
            "cost": dict(_NO_COST),
            "cache_hit": False,
            "checkpoint_id": None,
            "warm_start": self._warm_start,
            "effective_key": None,
            "fidelity": self.fidelity,
            "answer": None,
        }

    def _run(self, action: object) -> dict[str, Any]:
        info = self._base_info(action)
        try:
            parsed: MetaReward = parse(action, primitive_names=self.primitive_set.names)
        except InvalidMetaReward as error:
            info["invalid_reason"] = error.reason
            info["invalid_message"] = str(error)
            return info
        info["valid"] = True
        info["canonical"] = parsed.canonical
        info["effective_key"] = effective_key(parsed, self.key_scheme)
        key = (info["effective_key"], self._seed, self._warm_start)
        prefetched = self._prefetched.pop(key, None)
        if prefetched is not None and "error" in prefetched:
            info["valid"] = False
            info["invalid_reason"] = "failed"
            info["invalid_message"] = (
                f"the meta-step failed twice on a worker and was not trained: {prefetched['error']}"
            )
            return info
        if prefetched is not None:
            self._cache[key] = prefetched
            info.update(_private_copy(prefetched))
            return info
        cached = self._cache.get(key)
        if cached is not None:
            info.update(_private_copy(cached))
            info["cache_hit"] = True
            info["cost"] = dict(_NO_COST)
            return info
        if self._answers is not None:
            computed = self._answers.meta_step(parsed, info["effective_key"], self._seed)
            self._cache[key] = computed
            info.update(_private_copy(computed))
            return info
        with pinned_torch_threads(self.torch_threads):
            result = self.trainer.train(parsed, seed=self._seed, init=self._warm_start)
        computed = {
            "validation_success": float(result.validation.success),
            "primitive_means": dict(result.primitive_means),
            "validation_primitive_means": dict(result.validation.primitive_means),
            "training_curve": list(result.training_curve),
            "n_nonfinite_rewards": int(result.n_nonfinite_rewards),
            "cost": {
                **result.cost.as_dict(),
                "simulated_seconds": float(result.cost.wall_seconds),
            },
            "checkpoint_id": None if result.checkpoint is None else str(result.checkpoint),
            "answer": None,
        }
        self._cache[key] = computed
        info.update(_private_copy(computed))
        return info


def _private_copy(answer: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cached meta-step answer that shares nothing with it (the caller's ``info``).

    The answer is plain data (numbers, strings, lists, dicts: what the process executors send
    between processes), so a pickle round trip is a deep copy, about 4x faster than
    ``copy.deepcopy`` on a table answer with its training curve (a table step's largest cost).
    """
    return pickle.loads(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
