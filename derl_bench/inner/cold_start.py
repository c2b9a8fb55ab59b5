"""Behaviour-cloning cold start of the text-agent policy, built once and cached by hash.

The paper's inner agent is Qwen2.5-1.5B-Instruct after RLVMR's cold-start SFT on about 200
expert trajectories (PAPER_FACTS.md §1, "From RLVMR"), so GRPO refines a policy that already
succeeds sometimes. The ``smoke``/``cpu`` presets do the same with the frozen-MiniLM
:class:`~derl_bench.inner.policies.action_scoring.ActionScoringPolicy`:

1. **Expert steps** (:func:`expert_steps`). Play ``games`` tasks of D_in (never V or test;
   round-robin over task types, :func:`cold_start_tasks`) with an expert and record, at every
   step, the observation the policy will see, the candidate actions (``info["valid_actions"]``)
   and the index of the expert's action among them. ALFWorld's expert is TextWorld's
   fast-downward planner (``ALFWorldInnerEnv(expert="planner")``: an optimal plan from the
   game's PDDL state, re-planned after a step that left it); ScienceWorld's is the simulator's
   gold action sequence (``ScienceWorldInnerEnv.gold_action_sequence``), replayed as strings
   (``-v1``) or, from ``-v2``, with teleports for its walks and each action spelled as the
   candidates spell it (``expert_path``, ``ScienceWorldInnerEnv.expert_action``).
   A step whose expert action is not among the candidates is played but not recorded (the
   policy could not choose it). Each task's record is cached on its own, so a build resumes.
2. **Behaviour cloning** (:func:`behaviour_clone`). Cross-entropy of the expert's index under
   the policy's softmax over the candidates; ``epochs`` passes of Adam (lr
   :data:`BC_LEARNING_RATE`, minibatches of :data:`BC_BATCH_SIZE` steps, seeded order) from the
   head's seed-0 initialisation; only the head is trained (the encoder is frozen).
3. **Cache** (:func:`cold_start_path`). The head's ``state_dict`` is saved under
   ``<cache_root()>/cold_start/<key>/policy.pt`` with ``cold_start.json`` (the settings, the
   expert's statistics, the loss per epoch and the SHA-256 of ``policy.pt``). The key hashes
   everything that defines the result: domain, level, the tasks played, the env and policy
   settings, ``epochs``, the data hash and :data:`COLD_START_FORMAT_VERSION`; ``cache_root()``
   already names the installed software (the lock). The build is seeded and single-threaded,
   so a rebuild under the same lock gives the same bytes (``tests/test_golden.py`` compares
   their SHA-256); every load checks ``policy.pt`` against the SHA-256 in ``cold_start.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derl_bench.envs.episode import EpisodeTask
from derl_bench.inner.threads import pinned_torch_threads
from derl_bench.inner.tiny_lm import cache_root

__all__ = [
    "BC_BATCH_SIZE",
    "BC_LEARNING_RATE",
    "COLD_START_FORMAT_VERSION",
    "EXPERT_STEPS_FORMAT_VERSION",
    "ColdStartSpec",
    "ExpertStep",
    "behaviour_clone",
    "cold_start_path",
    "cold_start_tasks",
    "expert_steps",
    "load_cold_start",
]

COLD_START_FORMAT_VERSION = 2
"""Bump when the behaviour cloning changes, so old heads are not reused (2: embeddings in an
order independent of the hash seed)."""
EXPERT_STEPS_FORMAT_VERSION = 2
"""Bump when the recorded expert steps change, so old records are not reused (2: ScienceWorld's
JVM with constant identity hashes lists a room's objects in another, now fixed, order)."""
BC_LEARNING_RATE = 3e-3
"""Adam learning rate of the behaviour cloning."""
BC_BATCH_SIZE = 32
"""Expert steps per Adam step of the behaviour cloning."""
BC_SEED = 0
"""Seed of the head's initialisation and of the minibatch order."""
METADATA = "cold_start.json"
WEIGHTS = "policy.pt"


@dataclass(frozen=True, kw_only=True)
class ExpertStep:
    """One recorded expert decision, as the policy sees it."""

    state: str
    """The observation text (what :meth:`ActionScoringPolicy.act` is given)."""
    actions: tuple[str, ...]
    """The candidate actions of that state (``info["valid_actions"]``)."""
    index: int
    """The expert's action: an index into ``actions``."""


@dataclass(frozen=True, kw_only=True)
class ColdStartSpec:
    """Everything that defines one cold start (all of it enters the cache key).

    Attributes:
        domain: ``"alfworld"`` or ``"scienceworld"``.
        level: ``"L0"``, ``"L1"`` or ``"L2"``.
        tasks: The D_in tasks played by the expert, in order (:func:`cold_start_tasks`).
        epochs: Behaviour-cloning passes over the expert steps (>= 1).
        max_episode_steps: Step limit of an expert episode (the preset's episode limit).
        env_settings: JSON-able settings of the inner env that shape its observations
            (e.g. ``{"recent_actions": 3}``).
        policy_settings: The :class:`ActionScoringConfig` fields other than ``init_seed``.
        data_sha256: A hash of the data the tasks come from (ALFWorld: the game files), or
            ``""`` when the simulator's version (in the lock) pins it.
    """

    domain: str
    level: str
    tasks: tuple[EpisodeTask, ...]
    epochs: int
    max_episode_steps: int
    env_settings: tuple[tuple[str, Any], ...] = ()
    policy_settings: tuple[tuple[str, Any], ...] = ()
    data_sha256: str = ""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("a cold start needs at least one D_in task to imitate")
        if self.epochs < 1 or self.max_episode_steps < 1:
            raise ValueError(
                f"epochs={self.epochs} and max_episode_steps={self.max_episode_steps} must be >= 1"
            )

    def key(self) -> str:
        """The cache key: 16 hex digits of a SHA-256 of every field and the format versions."""
        payload = json.dumps(
            {
                "domain": self.domain,
                "level": self.level,
                "tasks": [t.key for t in self.tasks],
                "epochs": self.epochs,
                "max_episode_steps": self.max_episode_steps,
                "env": dict(self.env_settings),
                "policy": dict(self.policy_settings),
                "data": self.data_sha256,
                "format": COLD_START_FORMAT_VERSION,
                "expert_format": EXPERT_STEPS_FORMAT_VERSION,
                "bc": {"lr": BC_LEARNING_RATE, "batch": BC_BATCH_SIZE, "seed": BC_SEED},
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cold_start_tasks(d_in: Sequence[EpisodeTask], games: int) -> tuple[EpisodeTask, ...]:
    """The D_in tasks a cold start imitates: ``games`` of them, round-robin over task types.

    D_in keeps its pool's order (grouped by task type), so the first ``games`` tasks would
    cover one type only. Types are visited in order of first appearance and each type's tasks
    in D_in order: type A's first, type B's first, ..., type A's second, ...

    Args:
        d_in: The D_in split.
        games: How many tasks to take (all of D_in if larger).

    Returns:
        The tasks, in the order the expert plays them.
    """
    by_type: dict[str, list[EpisodeTask]] = {}
    for task in d_in:
        by_type.setdefault(task.task_type, []).append(task)
    rounds = max((len(v) for v in by_type.values()), default=0)
    mixed = [v[i] for i in range(rounds) for v in by_type.values() if i < len(v)]
    return tuple(mixed[:games])


def expert_steps(
    env_factory: Callable[[], Any],
    tasks: Sequence[EpisodeTask],
    expert: Callable[[Any, EpisodeTask, dict[str, Any]], str | None],
    *,
    max_episode_steps: int,
    prepare: Callable[[Any, EpisodeTask], None] | None = None,
    cache: Path | None = None,
    cache_key: str = "",
) -> tuple[list[ExpertStep], dict[str, float]]:
    """Play each task with an expert and record its decisions among the candidates.

    Args:
        env_factory: Makes the inner env to play in (contract of :mod:`derl_bench.envs.episode`,
            with ``valid_actions``); made on the first task not in ``cache``, closed at the end.
        tasks: Tasks to play, in order.
        expert: ``expert(env, task, info) -> action string`` (``None``: the expert gives up,
            the episode ends); called once per step with the last ``info``.
        max_episode_steps: Step limit per episode.
        prepare: Called as ``prepare(env, task)`` before each task's reset (e.g. to fetch a
            gold action sequence).
        cache: Folder of per-task records (one JSON per task, named by a hash of
            ``cache_key`` and the task key), so an interrupted build resumes; None: no cache.
        cache_key: What besides the task defines a record (env settings, expert, step limit).

    Returns:
        ``(steps, stats)``: the recorded :class:`ExpertStep` s in play order, and
        ``{"episodes", "successes", "steps", "recorded"}`` counts (floats).
    """
    recorded: list[ExpertStep] = []
    stats = {"episodes": 0.0, "successes": 0.0, "steps": 0.0, "recorded": 0.0}
    env = None
    try:
        for task in tasks:
            path = None
            if cache is not None:
                name = hashlib.sha256(f"{cache_key}|{task.key}".encode()).hexdigest()[:20]
                path = cache / f"{name}.json"
                if path.is_file():
                    _add(recorded, stats, json.loads(path.read_text()))
                    continue
            if env is None:
                env = env_factory()
            record = _play(env, task, expert, max_episode_steps, prepare)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(record))
                os.replace(tmp, path)
            _add(recorded, stats, record)
    finally:
        if env is not None:
            env.close()
    return recorded, stats


def _play(
    env: Any,
    task: EpisodeTask,
    expert: Callable[[Any, EpisodeTask, dict[str, Any]], str | None],
    max_episode_steps: int,
    prepare: Callable[[Any, EpisodeTask], None] | None,
) -> dict[str, Any]:
    """One expert episode as a JSON-able record (steps, success, steps played)."""
    if prepare is not None:
        prepare(env, task)
    obs, info = env.reset(seed=task.seed, options={"task": task})
    steps: list[dict[str, Any]] = []
    played = 0
    for _ in range(max_episode_steps):
        action = expert(env, task, info)
        if action is None:
            break
        valid = list(info["valid_actions"])
        if action in valid:
            steps.append({"state": obs, "actions": valid, "index": valid.index(action)})
        obs, _, terminated, truncated, info = env.step(action)
        played += 1
        if terminated or truncated:
            break
    return {
        "task": task.key,
        "steps": steps,
        "played": played,
        "success": bool(info.get("success", False)),
    }


def _add(recorded: list[ExpertStep], stats: dict[str, float], record: dict[str, Any]) -> None:
    for step in record["steps"]:
        recorded.append(
            ExpertStep(state=step["state"], actions=tuple(step["actions"]), index=step["index"])
        )
    stats["episodes"] += 1
    stats["successes"] += float(record["success"])
    stats["steps"] += record["played"]
    stats["recorded"] += len(record["steps"])


def behaviour_clone(policy: Any, steps: Sequence[ExpertStep], *, epochs: int) -> list[float]:
    """Train ``policy``'s head to pick the expert's actions (cross-entropy), in place.

    Args:
        policy: An :class:`ActionScoringPolicy` (its ``log_prob`` scores records).
        steps: The expert decisions.
        epochs: Passes over ``steps`` (each in a seeded random order, minibatches of
            :data:`BC_BATCH_SIZE`).

    Returns:
        The mean loss (nats per step) of each epoch.
    """
    import torch

    from derl_bench.inner.policies.action_scoring import TextStepRecord
    from derl_bench.inner.policies.sentence_encoder import SentenceEncoder

    records = [TextStepRecord(s.state, s.actions, s.index, 0.0) for s in steps]
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=BC_LEARNING_RATE)
    generator = torch.Generator().manual_seed(BC_SEED)
    shared = policy.encoder
    # The last bits of an embedding depend on the padded batch it is computed in, so the shared
    # cache (filled by whatever ran before in the process) would make the weights' bits depend
    # on history. Embed every string on its own through a private cache instead.
    if isinstance(shared, SentenceEncoder):
        policy.encoder = SentenceEncoder(
            shared.model,
            shared.tokenizer,
            max_length=shared.max_length,
            batch_size=1,
        )
    lines = getattr(getattr(policy, "config", None), "context_lines", 0)
    texts = {r.state for r in records} | {a for r in records for a in r.actions}
    texts |= {line for r in records for line in r.state.split("\n")[:lines]}
    policy.encoder.encode(sorted(texts))
    policy.train()
    losses = []
    try:
        for _ in range(epochs):
            order = torch.randperm(len(records), generator=generator).tolist()
            total = 0.0
            for start in range(0, len(order), BC_BATCH_SIZE):
                batch = [records[i] for i in order[start : start + BC_BATCH_SIZE]]
                loss = -policy.log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            losses.append(total / max(1, len(records)))
    finally:
        policy.encoder = shared
        policy.eval()
    return losses


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _valid(folder: Path) -> bool:
    meta = folder / METADATA
    if not meta.is_file() or not (folder / WEIGHTS).is_file():
        return False
    try:
        return json.loads(meta.read_text())["policy_sha256"] == _sha256(folder / WEIGHTS)
    except (KeyError, ValueError):
        return False


def cold_start_path(
    spec: ColdStartSpec,
    *,
    env_factory: Callable[[], Any],
    expert: Callable[[Any, EpisodeTask, dict[str, Any]], str | None],
    make_policy: Callable[[], Any],
    prepare: Callable[[Any, EpisodeTask], None] | None = None,
) -> Path:
    """Return the folder of the cold start ``spec`` names, building it on first use.

    Args:
        spec: What to build (see :class:`ColdStartSpec`).
        env_factory: Makes the inner env the expert plays in (same observation settings as
            training; made only if some task's expert steps are not cached, closed after use).
        expert: The expert (see :func:`expert_steps`).
        make_policy: Makes the untrained policy (seed-0 head) to clone into.
        prepare: Passed to :func:`expert_steps`.

    Returns:
        A folder holding ``policy.pt`` (the head's ``state_dict``) and ``cold_start.json``
        (``spec`` summary, ``expert`` statistics, ``bc_loss`` per epoch, ``policy_sha256``).
        A folder whose ``policy.pt`` does not match its recorded SHA-256 is rebuilt.
    """
    import torch

    target = cache_root() / "cold_start" / spec.key()
    if _valid(target):
        return target
    demo_key = json.dumps(
        {
            "domain": spec.domain,
            "env": dict(spec.env_settings),
            "max_episode_steps": spec.max_episode_steps,
            "format": EXPERT_STEPS_FORMAT_VERSION,
        },
        sort_keys=True,
    )  # per task (plus the task key), so that any subset of D_in reuses the recorded episodes
    steps, stats = expert_steps(
        env_factory,
        spec.tasks,
        expert,
        max_episode_steps=spec.max_episode_steps,
        prepare=prepare,
        cache=cache_root() / "cold_start" / "expert_steps",
        cache_key=demo_key,
    )
    if not steps:
        raise RuntimeError(
            f"the expert left no imitable step on {len(spec.tasks)} {spec.domain} D_in tasks"
        )
    # One thread and a forked RNG: the same float order and no trace in the caller's stream.
    with torch.random.fork_rng(), pinned_torch_threads(1):
        policy = make_policy()
        losses = behaviour_clone(policy, steps, epochs=spec.epochs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        torch.save(policy.state_dict(), tmp / WEIGHTS)
        meta = {
            "domain": spec.domain,
            "level": spec.level,
            "games": len(spec.tasks),
            "epochs": spec.epochs,
            "max_episode_steps": spec.max_episode_steps,
            "env_settings": dict(spec.env_settings),
            "policy_settings": dict(spec.policy_settings),
            "data_sha256": spec.data_sha256,
            "format": COLD_START_FORMAT_VERSION,
            "expert": stats,
            "bc_loss": losses,
            "policy_sha256": _sha256(tmp / WEIGHTS),
        }
        (tmp / METADATA).write_text(json.dumps(meta, indent=1))
        if target.exists() and not _valid(target):
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep theirs
            if not _valid(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_cold_start(policy: Any, folder: str | Path) -> Any:
    """Load a cold start's head into ``policy`` after checking its SHA-256; return ``policy``.

    Raises:
        ValueError: If ``policy.pt`` does not match the SHA-256 in ``cold_start.json``.
    """
    import torch

    folder = Path(folder)
    if not _valid(folder):
        raise ValueError(
            f"cold start {folder} is damaged: {WEIGHTS} does not match the SHA-256 in "
            f"{METADATA}; delete the folder to rebuild it"
        )
    policy.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True))
    return policy
