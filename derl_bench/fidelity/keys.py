"""Canonical keys of meta-rewards that know the inner trainer's invariances.

Two meta-rewards that train identically should be one entry of a table, one cache line of the
env and one "distinct effective meta-reward" of a run. Text (even the canonical form) is not
enough: ``g1 + g2``, ``g2 + g1 - 1`` and ``(g1 + g2 + 6) / 1`` train the same policy under GRPO.
A key is computed from the meta-reward's *values*, never from its text:

1. **What the trainer can see.** The meta-reward is evaluated on a fixed bank of primitive
   vectors (:func:`key_bank`). A *binary* primitive (math g1..g4, episode g1: values ``ε`` or
   ``1 + ε``) takes only those two values, so for a set of K binary primitives the bank is the
   2^K combinations and the values there are the whole function the trainer ever sees: the
   **value table** of the meta-reward. Continuous primitives (episode g2..g4, step-score means
   in ``[ε, 1 + ε]``) get 64 seeded uniform values besides the corners; two rational
   expressions that agree on them agree everywhere with probability 1 (Schwartz-Zippel), up to
   the quantisation below. Non-finite values are set to 0, as
   :func:`derl_bench.meta_reward.safe_rewards` does in training.
2. **What the trainer ignores.** Where the trainer is invariant to translations ``R + b``
   (:func:`trainer_invariance`), the minimum over the bank is subtracted. The scale (the
   range over the bank) stays in the key, rounded to 4 significant digits. A bank on which the
   meta-reward is non-finite somewhere is never shifted (zeroing a non-finite reward does not
   commute with ``R + b``).
3. **Quantisation.** The values divided by their range are rounded to 9 decimals; equivalent
   forms differ by float rounding (~1e-15), so two of them get different keys only if a value
   falls within 1e-15 of a rounding boundary (probability ~1e-6 per pair). Scales that differ
   by less than the 4th significant digit are merged (the advantages then differ by a relative
   ``< 1e-4 * ε_adv / std``); near a rounding boundary they may not be (never the other way).

Which invariances hold, per inner trainer (``tests/test_fidelity_keys.py`` trains both forms
and compares the parameters):

- **Episode GRPO** (:mod:`derl_bench.inner.episode_grpo_trainer`: CartPole, Pendulum,
  ScienceWorld, ALFWorld), ``credit="episode"``: advantages ``(r - mean) / (std + ε_adv)`` per
  group (:func:`derl_bench.inner.advantages.group_advantages`, ``ε_adv = 1e-4``).
  ``R + b``: **exact** (bit-identical parameters in the test). ``a * R`` (``a > 0``): the
  advantage becomes ``(r - mean) / (std + ε_adv / a)``, so it is exact only as ``ε_adv -> 0``
  (bit-identical with ``advantage_eps=1e-12`` in the test) and *not* at the presets' ``ε_adv``:
  on CartPole a group's std of ``(g1 + g2 + g3 + g4) / 4`` was 0.005, the advantages moved by
  2 % and the parameters after 2 steps by 22 % of their movement. So keys keep the scale.
  Zero-variance groups give 0 in every form (a translation keeps a constant group constant).
  The KL term (``beta``) is in the loss, not in the reward, so it does not break the
  translation invariance.
- **Episode GRPO**, ``credit="reward_to_go"``: the prefix meta-reward ``P(t)`` is the same
  expression on a padded prefix, so ``R + b`` leaves ``R - P(t)`` unchanged (exact) and
  ``a * R`` scales it by ``a`` (the same ``ε_adv`` caveat).
- **LM GRPO** (TRL ``GRPOTrainer``: GSM8K, MATH, Arith): TRL's default
  ``scale_rewards="group"`` gives ``(r - mean) / (std + 1e-4)`` per group, KL (``beta``) in the
  loss, so in exact arithmetic the same invariances hold. But TRL casts the rewards to float32
  *before* normalising, and the primitives' ε = 1e-6 offsets round differently once ``b`` is
  added: the advantages change at ~1e-7, which can flip a sampled token and make the runs
  diverge (measured on a tiny LM: ``R + 2`` ended 0.024 away from ``R`` after 2 steps, ``-R``
  0.2). So nothing is normalised away: keys are the raw value table (which still merges forms
  that compute the same values, e.g. ``(g1 + g2) / 2`` and ``0.5 * g1 + 0.5 * g2``).
- **ES+RL hybrid** (``inner="es_rl"``): the ES half uses centred ranks (invariant to any
  increasing map), but the actor-critic half learns a value function in reward units, so
  neither ``R + b`` nor ``a * R`` trains the same policy: keys are the raw values.
- Any other trainer: none assumed (raw values).

Never merged: ``a < 0`` (flips which rollouts are preferred); a non-affine increasing map such
as ``R * R`` on three or more distinct reward levels. Under a translation-invariant trainer, two
meta-rewards whose values differ by a translation *are* merged even when their texts look
unrelated (e.g. ``g1 * g1`` and ``g1`` on the episode set, where g1 is binary: ranges 1 + 2ε
and 1 agree to 4 digits, and two levels always differ by a translation once the range is
fixed).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from derl_bench.meta_reward import MetaReward
from derl_bench.primitives import EPSILON, BinaryPrimitive, PrimitiveSet
from derl_bench.primitives.episode import SuccessPrimitive

__all__ = [
    "KEY_DECIMALS",
    "KEY_RANDOM_ROWS",
    "Invariance",
    "KeyScheme",
    "Normalised",
    "effective_key",
    "is_binary",
    "key_bank",
    "key_scheme",
    "normalised_values",
    "trainer_invariance",
]

KEY_RANDOM_ROWS = 64
"""Seeded uniform rows of the key bank when a primitive set has continuous primitives."""

KEY_DECIMALS = 9
"""Decimals the normalised values are rounded to before hashing."""


@dataclass(frozen=True, kw_only=True)
class Invariance:
    """Which reward transformations an inner trainer ignores (see the module docstring)."""

    shift: bool
    """Translations ``R + b`` train the same policy (exactly, up to float rounding)."""
    reason: str
    """One line naming the trainer and credit mode it was derived from."""


@dataclass(frozen=True, kw_only=True)
class KeyScheme:
    """How keys of one (primitive set, inner trainer) pair are made; stored with every table."""

    primitive_names: tuple[str, ...]
    """The primitive set's names, in column order."""
    binary: tuple[bool, ...]
    """Per primitive: whether it takes only the values ``ε`` and ``1 + ε``."""
    shift: bool
    """Whether translations are normalised away."""

    @property
    def name(self) -> str:
        """Short scheme tag, the prefix of every key: ``"tt4-aff"``, ``"pb4-raw"``, ...

        ``tt``: value table (all primitives binary); ``pb``: probe bank (some continuous);
        the number is K; ``shift`` or ``raw`` says whether translations are normalised away.
        """
        kind = "tt" if all(self.binary) else "pb"
        return f"{kind}{len(self.primitive_names)}-{'shift' if self.shift else 'raw'}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in a table's ``meta.json``)."""
        return {
            "primitive_names": list(self.primitive_names),
            "binary": list(self.binary),
            "shift": self.shift,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> KeyScheme:
        """Inverse of :meth:`as_dict`."""
        return cls(
            primitive_names=tuple(raw["primitive_names"]),
            binary=tuple(bool(b) for b in raw["binary"]),
            shift=bool(raw["shift"]),
        )


def is_binary(primitive: Any) -> bool:
    """Whether ``primitive`` only ever returns ``ε`` or ``1 + ε`` (math primitives, episode g1)."""
    return isinstance(primitive, BinaryPrimitive | SuccessPrimitive)


def trainer_invariance(trainer: Any) -> Invariance:
    """The reward invariances of an inner trainer (module docstring; proved by tests).

    Recognised by class name so that this module never imports torch: ``EpisodeGRPOTrainer``
    (both credit modes) is invariant to translations; ``LMGRPOTrainer`` (TRL rounds rewards to
    float32 before normalising), ``ESRLInnerTrainer`` and anything else to nothing.

    Args:
        trainer: An :class:`derl_bench.inner.base.InnerTrainer`.

    Returns:
        The :class:`Invariance`.
    """
    name = type(trainer).__name__
    config = getattr(trainer, "config", None)
    if name == "EpisodeGRPOTrainer":
        credit = getattr(config, "credit", "episode")
        return Invariance(
            shift=True,
            reason=f"episode GRPO, credit={credit!r}: group-normalised advantages, KL in the loss",
        )
    if name == "LMGRPOTrainer":
        return Invariance(
            shift=False,
            reason="TRL GRPO: rewards rounded to float32 before group normalisation",
        )
    if name == "ESRLInnerTrainer":
        return Invariance(
            shift=False, reason="ES+RL hybrid: the critic learns values in reward units"
        )
    return Invariance(shift=False, reason=f"{name}: no invariance known")


def key_scheme(primitive_set: PrimitiveSet, invariance: Invariance) -> KeyScheme:
    """The key scheme of a primitive set under a trainer's invariance."""
    return KeyScheme(
        primitive_names=primitive_set.names,
        binary=tuple(is_binary(p) for p in primitive_set.primitives),
        shift=invariance.shift,
    )


@functools.cache
def key_bank(binary: tuple[bool, ...]) -> np.ndarray:
    """The fixed primitive vectors a key is computed on.

    Args:
        binary: Per primitive, whether it is binary.

    Returns:
        float64, shape (n_rows, K), read-only: the 2^K corners (every primitive at ``ε`` or
        ``1 + ε``); when some primitive is continuous, also :data:`KEY_RANDOM_ROWS` rows with the
        binary primitives at a seeded random corner and the continuous ones uniform in
        ``[ε, 1 + ε]`` (seed 0).
    """
    k = len(binary)
    corners = np.array(list(itertools.product((EPSILON, 1.0 + EPSILON), repeat=k)))
    if all(binary):
        bank = corners
    else:
        rng = np.random.default_rng(0)
        rows = rng.uniform(EPSILON, 1.0 + EPSILON, size=(KEY_RANDOM_ROWS, k))
        coins = rng.integers(0, 2, size=(KEY_RANDOM_ROWS, k))
        for j, flag in enumerate(binary):
            if flag:
                rows[:, j] = np.where(coins[:, j] == 1, 1.0 + EPSILON, EPSILON)
        bank = np.concatenate([corners, rows])
    bank = np.ascontiguousarray(bank, dtype=np.float64)
    bank.setflags(write=False)
    return bank


class Normalised(NamedTuple):
    """A meta-reward's normalised values on a bank (:func:`normalised_values`)."""

    values: np.ndarray
    """float64 (n_rows,): in [0, 1] for ``shift`` and ``affine``, in [-1, 1] for ``raw``."""
    mode: Literal["shift", "affine", "raw", "const"]
    """How they were normalised."""
    scale: float
    """The divisor: ``max - min`` (``shift``, ``affine``), the largest magnitude (``raw``) or 1
    (``const``). A key keeps it unless the mode is ``affine``."""


def normalised_values(
    meta_reward: MetaReward, bank: np.ndarray, *, shift: bool, scale: bool = False
) -> Normalised:
    """The meta-reward on ``bank``, non-finite set to 0, normalised for keys or features.

    Args:
        meta_reward: A parsed meta-reward over the bank's K columns.
        bank: float64, shape (n_rows, K).
        shift: Subtract the minimum (when every value is finite).
        scale: Also drop the scale (mode ``affine``; the surrogate's features, never keys).

    Returns:
        ``Normalised(values, mode, scale)``: ``shift`` / ``affine``: ``(v - min) / (max - min)``;
        ``raw``: ``v / max |v|`` (sign and ratios kept); ``const``: the same value on every row
        (the trainer sees a constant reward), values all 0.
    """
    raw = meta_reward(bank)
    finite = np.isfinite(raw)
    values = np.where(finite, raw, 0.0)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * max(abs(low), abs(high), 1.0):
        return Normalised(np.zeros_like(values), "const", 1.0)
    if shift and bool(finite.all()):
        return Normalised((values - low) / (high - low), "affine" if scale else "shift", high - low)
    divisor = max(abs(low), abs(high))
    return Normalised(values / divisor, "raw", divisor)


def effective_key(meta_reward: MetaReward, scheme: KeyScheme) -> str:
    """The canonical key: meta-rewards that train identically under ``scheme`` share it.

    Args:
        meta_reward: A parsed meta-reward over ``scheme.primitive_names``.
        scheme: From :func:`key_scheme` (or a table's ``meta.json``).

    Returns:
        ``"<scheme>:<mode>:<16 hex digits>"``, e.g. ``"tt4-shift:shift:3f2a..."``; ``mode`` as
        in :func:`normalised_values` (``raw`` also under a shift scheme when the meta-reward is
        non-finite somewhere on the bank).

    Raises:
        ValueError: If the meta-reward's primitives differ from the scheme's.
    """
    if tuple(meta_reward.primitive_names) != scheme.primitive_names:
        raise ValueError(
            f"meta-reward {meta_reward.canonical!r} is over {meta_reward.primitive_names}, the key "
            f"scheme over {scheme.primitive_names}"
        )
    values, mode, scale = normalised_values(
        meta_reward, key_bank(scheme.binary), shift=scheme.shift
    )
    quantised = np.round(values, KEY_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    payload = f"{mode}|{scale:.3e}|".encode() + quantised.astype("<f8").tobytes()
    digest = hashlib.sha256(payload).hexdigest()[:16]
    return f"{scheme.name}:{mode}:{digest}"
