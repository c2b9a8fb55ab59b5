"""The surrogate fidelity: a regressor fitted on a table predicts a meta-step's outcome.

Features (:func:`features`), two sets (:data:`FEATURE_SETS`), both computed from the
meta-reward's values on the table's *probe bank* (real primitive vectors recorded from the
domain's own rollouts during the build), normalised for the trainer's invariances (min-max,
i.e. translation and scale removed, when the trainer is invariant to translations,
:func:`derl_bench.fidelity.keys.normalised_values`):

- ``bank``: those values plus their within-bank centred ranks (2 x the bank's rows);
- ``correlation``: the Spearman correlation of those values with each primitive's column of
  the bank (K numbers: which primitives the reward follows, and how closely). Compact, so it
  generalises from few keys; blind to monotone transforms (``g2`` and ``g2 * g2 * g2`` look
  alike), which GRPO does not train alike.

Two meta-rewards with one effective key get the same features. ``derl-bench fidelity report``
picks the set with the regressor.

Targets, per effective key over its recorded seeds: the mean validation success, its sample
std over seeds (the seed spread), the mean test success and the mean live wall seconds (the
simulated clock's charge). One regressor per target, of the family chosen by
``derl-bench fidelity report`` (cross-validated on held-out meta-rewards; the choice and the
numbers are in ``docs/fidelity/``), fitted when first used (deterministic, < 1 s for a few
hundred keys): no pickled model ships.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from derl_bench.fidelity.keys import effective_key, normalised_values
from derl_bench.fidelity.table import FidelityTable
from derl_bench.meta_reward import MetaReward

__all__ = [
    "FEATURE_SETS",
    "MODEL_NAMES",
    "Prediction",
    "Surrogate",
    "bank_column_ranks",
    "fast_predict",
    "features",
    "make_regressor",
    "noisy_draw",
]

MODEL_NAMES = ("rf", "gbr", "knn", "lgbm")
"""Regressor families compared: scikit-learn random forest, gradient boosting, k nearest
neighbours (k = 5, distance-weighted), LightGBM."""

FEATURE_SETS = ("bank", "correlation")
"""Feature sets compared (:func:`features`)."""

DEFAULT_FEATURES = "bank"
"""Used when a table's ``meta.json`` records no ``surrogate_features`` choice."""

DEFAULT_MODEL = "rf"
"""Used when a table's ``meta.json`` records no ``surrogate_model`` choice (``derl-bench fidelity
report`` records one)."""


def make_regressor(name: str, seed: int = 0) -> Any:
    """A fresh regressor of family ``name`` (small-data settings, fixed seed).

    Raises:
        ValueError: On an unknown name (the message lists :data:`MODEL_NAMES`).
    """
    if name == "rf":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed)
    if name == "gbr":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(
            n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
        )
    if name == "knn":
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=5, weights="distance")
    if name == "lgbm":
        from lightgbm import LGBMRegressor

        return LGBMRegressor(
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=3,
            subsample=0.8,
            subsample_freq=1,
            random_state=seed,
            deterministic=True,
            n_jobs=1,
            verbose=-1,
        )
    raise ValueError(f"Unknown surrogate model {name!r}; choose one of {', '.join(MODEL_NAMES)}.")


def features(
    meta_reward: MetaReward,
    bank: np.ndarray,
    *,
    affine: bool,
    kind: str = DEFAULT_FEATURES,
    bank_ranks: np.ndarray | None = None,
) -> np.ndarray:
    """The surrogate's features of a meta-reward.

    Args:
        meta_reward: A parsed meta-reward over the bank's K columns.
        bank: The probe bank, float64 (n_rows, K).
        affine: Normalise positive affine maps away (when the trainer is invariant to
            translations: scale differences then train nearly alike, see
            :mod:`derl_bench.fidelity.keys`, and the regressor shares their data).
        kind: A set of :data:`FEATURE_SETS`.
        bank_ranks: ``correlation`` only: the bank's :func:`bank_column_ranks`, computed once
            by the caller (the same numbers; None computes them here).

    Returns:
        float64. ``bank``: shape (2 * n_rows,), the normalised values, then their centred ranks
        in [-0.5, 0.5] (ties share their mean rank). ``correlation``: shape (K,), Spearman rho
        in [-1, 1] of the values with each bank column (0 where either is constant).

    Raises:
        ValueError: On an unknown ``kind`` (the message lists :data:`FEATURE_SETS`).
    """
    if kind not in FEATURE_SETS:
        raise ValueError(
            f"Unknown surrogate feature set {kind!r}; choose one of {', '.join(FEATURE_SETS)}."
        )
    values = normalised_values(meta_reward, bank, shift=affine, scale=affine).values
    centred = _centred_ranks(values)
    if kind == "bank":
        return np.concatenate([values, centred])
    columns = bank_column_ranks(bank) if bank_ranks is None else bank_ranks
    out = np.zeros(bank.shape[1], dtype=np.float64)
    for j, column in enumerate(columns):
        denominator = np.sqrt(np.sum(centred**2) * np.sum(column**2))
        if denominator > 0:
            out[j] = float(np.sum(centred * column) / denominator)
    return out


def bank_column_ranks(bank: np.ndarray) -> np.ndarray:
    """Centred ranks of each probe-bank column: float64 (K, n_rows), values in [-0.5, 0.5]."""
    return np.stack([_centred_ranks(bank[:, j]) for j in range(bank.shape[1])])


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (ties share their mean rank) scaled to [-0.5, 0.5], float64 of ``values``' shape."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n)
    _, inverse = np.unique(values, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return mean_rank[inverse] / max(n - 1, 1) - 0.5


def fast_predict(regressor: Any, x: np.ndarray) -> np.ndarray:
    """``regressor.predict(x)`` without scikit-learn's per-call checks (a surrogate step's cost).

    The same numbers as ``predict`` (tested; k-NN up to ~1e-8, its distances are computed
    directly): LightGBM through its booster on one thread; a random forest as the mean of its
    trees; k nearest neighbours with distance weights (an exact match gets all the weight), as
    scikit-learn weighs them. Other models: ``predict``. About 100x faster on one row.

    Args:
        regressor: A fitted regressor of :func:`make_regressor`.
        x: float64, shape (n, n_features).

    Returns:
        float64, shape (n,).
    """
    name = type(regressor).__name__
    if name == "LGBMRegressor":
        return np.asarray(regressor.booster_.predict(x, num_threads=1), dtype=np.float64)
    if name == "RandomForestRegressor":
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        trees = [tree.tree_.predict(x32).reshape(len(x)) for tree in regressor.estimators_]
        return np.mean(trees, axis=0)
    if name == "KNeighborsRegressor":
        nearest, weights = knn_weights(regressor._fit_X, x, regressor.n_neighbors)
        return knn_combine(np.asarray(regressor._y, dtype=np.float64), nearest, weights)
    return np.asarray(regressor.predict(x), dtype=np.float64)


def knn_weights(train_x: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest training rows of each row of ``x`` and their distance weights.

    As scikit-learn's ``KNeighborsRegressor(weights="distance")`` weighs them: 1 / Euclidean
    distance, and an exact match gets all the weight (ties in distance keep the training order).

    Args:
        train_x: float64, shape (n_train, n_features).
        x: float64, shape (n, n_features).
        k: Neighbours per row, 1 <= k <= n_train.

    Returns:
        ``(nearest, weights)``: int64 and float64, both shape (n, k); each weight row sums to
        a positive number (not normalised).
    """
    nearest = np.empty((len(x), k), dtype=np.int64)
    weights = np.empty((len(x), k), dtype=np.float64)
    for i, row in enumerate(x):
        distance = np.sqrt(((train_x - row) ** 2).sum(axis=1))
        nearest[i] = np.argsort(distance, kind="stable")[:k]
        d = distance[nearest[i]]
        weights[i] = (d == 0).astype(np.float64) if np.any(d == 0) else 1.0 / d
    return nearest, weights


def knn_combine(train_y: np.ndarray, nearest: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of ``train_y`` over :func:`knn_weights`' rows.

    Args:
        train_y: float64, shape (n_train,).
        nearest: int64, shape (n, k).
        weights: float64, shape (n, k).

    Returns:
        float64, shape (n,).
    """
    return np.sum(weights * train_y[nearest], axis=1) / np.sum(weights, axis=1)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """The surrogate's answer for one meta-reward."""

    validation_mean: float
    """Predicted mean validation success over seeds, clipped to [0, 1]."""
    validation_std: float
    """Predicted seed spread (sample std) of validation success, >= 0."""
    test_mean: float | None
    """Predicted mean test success in [0, 1] (None if fewer than 3 of the table's keys have
    test success, or :meth:`Surrogate.predict` was asked ``test=False``)."""
    test_std: float | None = None
    """Predicted seed spread (sample std) of test success, >= 0 (None as ``test_mean``)."""
    wall_seconds: float
    """Predicted live wall seconds of the meta-step, > 0."""
    neighbour: str
    """Effective key of the nearest recorded meta-reward in feature space (its primitive
    means stand in for the prediction's)."""
    test_neighbour: str | None = None
    """Effective key of the nearest recorded meta-reward with test success (its test cost and
    test size stand in for the prediction's); None when test success was not predicted."""


def noisy_draw(prediction: Prediction, key: str, seed: int, *, target: str = "validation") -> float:
    """A seed's draw from the predicted spread: ``N(mean, std)`` clipped to [0, 1].

    Deterministic in ``(key, seed, target)``, so the same env seed and meta-reward give the
    same answer (as live meta-steps do); the test draw is independent of the validation draw
    (a live run's test success comes from another training).

    Args:
        prediction: The surrogate's prediction for the meta-reward.
        key: Its effective key.
        seed: The env seed.
        target: ``"validation"`` (validation mean and std) or ``"test"`` (test mean and std).

    Raises:
        ValueError: On another ``target``, or ``"test"`` when the prediction has no test
            success.
    """
    if target == "validation":
        mean, std, salt = prediction.validation_mean, prediction.validation_std, ""
    elif target == "test":
        if prediction.test_mean is None or prediction.test_std is None:
            raise ValueError("the prediction has no test success (the table recorded none)")
        mean, std, salt = prediction.test_mean, prediction.test_std, "|test"
    else:
        raise ValueError(f"Unknown target {target!r}; choose 'validation' or 'test'.")
    digest = hashlib.sha256(f"{key}|{seed}{salt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return float(np.clip(rng.normal(mean, std), 0.0, 1.0))


class Surrogate:
    """Regressors fitted on a table's per-key summaries.

    Args:
        table: The table (with a probe bank).
        model: A family of :data:`MODEL_NAMES`; None: the choice ``derl-bench fidelity
            report`` recorded in the table's ``meta.json`` (``surrogate_model``), else
            :data:`DEFAULT_MODEL`.
        feature_set: A set of :data:`FEATURE_SETS`; None: the recorded choice
            (``surrogate_features``), else :data:`DEFAULT_FEATURES`.
        keys: Fit on these keys only (cross-validation); None: every key.
        seed: Seed of the regressors.

    Raises:
        FileNotFoundError: If the table has no probe bank.
        ValueError: If the table holds fewer than 3 keys, or on an unknown model or feature set.
    """

    def __init__(
        self,
        table: FidelityTable,
        *,
        model: str | None = None,
        feature_set: str | None = None,
        keys: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        from derl_bench.meta_reward import parse

        self.table = table
        self.model = model or table.meta.get("surrogate_model") or DEFAULT_MODEL
        self.feature_set = feature_set or table.meta.get("surrogate_features") or DEFAULT_FEATURES
        self.bank = table.probe_bank()
        self._bank_ranks = bank_column_ranks(self.bank)  # once, not per predicted step
        self.affine = table.scheme.shift
        summary = table.summary()
        chosen = list(keys) if keys is not None else list(summary)
        if len(chosen) < 3:
            raise ValueError(
                f"the {table.env_id} table holds {len(chosen)} keys; a surrogate needs >= 3"
            )
        names = table.scheme.primitive_names
        self.keys = chosen
        self.x = np.stack([self.features(parse(summary[k]["canonical"], names)) for k in chosen])
        rows = [summary[k] for k in chosen]
        self._means = {k: table.entries(k)[0] for k in chosen}
        targets = {
            "validation_mean": np.array([r["validation_mean"] for r in rows]),
            "validation_std": np.array([r["validation_std"] for r in rows]),
            "wall_log": np.log(np.array([max(r["wall_seconds"], 1e-3) for r in rows])),
        }
        # Test success is fitted on the keys that have it (a table being built can hold a
        # signal check's cells, recorded without), from 3 keys on.
        tested = np.array([r["test_mean"] is not None for r in rows], dtype=bool)
        self.test_keys = int(tested.sum())
        """Keys with test success, the rows of the ``test_mean`` and ``test_std`` regressors."""
        self._test_x: np.ndarray | None = None if tested.all() else self.x[tested]
        self._tested_keys = [k for k, t in zip(chosen, tested, strict=True) if t]
        if self.test_keys >= 3:
            tested_rows = [r for r, t in zip(rows, tested, strict=True) if t]
            targets["test_mean"] = np.array([r["test_mean"] for r in tested_rows])
            targets["test_std"] = np.array([r["test_std"] for r in tested_rows])
        self.regressors: dict[str, Any] = {}
        for name, y in targets.items():
            regressor = make_regressor(self.model, seed)
            regressor.fit(self._train_x(name), y)
            self.regressors[name] = regressor

    def _train_x(self, target: str) -> np.ndarray:
        """The feature rows the regressor of ``target`` is fitted on."""
        if target.startswith("test_") and self._test_x is not None:
            return self._test_x
        return self.x

    def features(self, meta_reward: MetaReward) -> np.ndarray:
        """The meta-reward's features in this surrogate's set (:func:`features`)."""
        return features(
            meta_reward,
            self.bank,
            affine=self.affine,
            kind=self.feature_set,
            bank_ranks=self._bank_ranks,
        )

    def predict_features(
        self, x: np.ndarray, targets: Collection[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Raw predictions for a feature matrix.

        Args:
            x: float64, shape (n, n_features).
            targets: Names of the targets to predict (of ``validation_mean``,
                ``validation_std``, ``wall_log``, ``test_mean``, ``test_std``; the last two
                only when the table recorded test success); None: every fitted target.

        Returns:
            ``{target: float64 (n,)}``, unclipped. k-NN finds the neighbours once per set of
            fitted rows (all keys; the keys with test success when some have none), the same
            numbers as :func:`fast_predict` per target; it uses at most as many neighbours as
            there are rows.
        """
        chosen = {
            name: r for name, r in self.regressors.items() if targets is None or name in targets
        }
        if self.model != "knn":
            return {name: fast_predict(r, x) for name, r in chosen.items()}
        groups: dict[int, list[str]] = {}
        for name in chosen:
            groups.setdefault(id(self._train_x(name)), []).append(name)
        out = {}
        for names in groups.values():
            train_x = self._train_x(names[0])
            k = min(chosen[names[0]].n_neighbors, len(train_x))
            nearest, weights = knn_weights(train_x, x, k)
            for name in names:
                y = np.asarray(chosen[name]._y, dtype=np.float64)
                out[name] = knn_combine(y, nearest, weights)
        return out

    def predict(self, meta_reward: MetaReward, *, test: bool = True) -> Prediction:
        """Predict the outcome of a live meta-step under ``meta_reward`` (mean over seeds).

        Args:
            meta_reward: A parsed meta-reward over the table's primitives.
            test: Also predict test success (``test_mean``, ``test_std``); False leaves them
                None (a meta-step's answer needs validation success and cost only).
        """
        x = self.features(meta_reward)[None, :]
        wanted = None if test else ("validation_mean", "validation_std", "wall_log")
        raw = self.predict_features(x, wanted)
        nearest = int(np.argmin(((self.x - x) ** 2).sum(axis=1)))
        test_mean = raw.get("test_mean")
        test_std = raw.get("test_std")
        test_neighbour = None
        if test_mean is not None:
            if self._test_x is None:
                test_neighbour = self.keys[nearest]
            else:
                tested = int(np.argmin(((self._test_x - x) ** 2).sum(axis=1)))
                test_neighbour = self._tested_keys[tested]
        return Prediction(
            validation_mean=float(np.clip(raw["validation_mean"][0], 0.0, 1.0)),
            validation_std=float(max(raw["validation_std"][0], 0.0)),
            test_mean=None if test_mean is None else float(np.clip(test_mean[0], 0.0, 1.0)),
            test_std=None if test_std is None else float(max(test_std[0], 0.0)),
            wall_seconds=float(np.exp(raw["wall_log"][0])),
            neighbour=self.keys[nearest],
            test_neighbour=test_neighbour,
        )

    def neighbour_entry(self, key: str) -> Any:
        """The first recorded entry of a fitted key (for primitive means)."""
        return self._means[key]

    def key_of(self, meta_reward: MetaReward) -> str:
        """The meta-reward's effective key under the table's scheme."""
        return effective_key(meta_reward, self.table.scheme)
