"""Domains of the MetaRewardEnv by name: ``"gsm8k"`` → its builder.

A builder takes the env's keyword arguments (``preset``, ``inner_overrides``, ``data_dir``,
``keep_checkpoints``, …) and returns a :class:`~derl_bench.meta_env.domain.Domain`. The math
builders live in :mod:`~derl_bench.meta_env.math_domains`, the episode builders (classic
control, text agents) in :mod:`~derl_bench.meta_env.episode_domains`; both import their heavy
parts lazily.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

from derl_bench._names import unknown_name_error
from derl_bench.envs.data import recording_data_files
from derl_bench.meta_env.domain import Domain
from derl_bench.meta_env.episode_domains import build_alfworld, build_classic, build_scienceworld
from derl_bench.meta_env.math_domains import build_arith, build_gsm8k, build_math

__all__ = ["DOMAINS", "Domain", "build_domain"]

DOMAINS: dict[str, Callable[..., Domain]] = {
    "gsm8k": build_gsm8k,
    "math": build_math,
    "arith": build_arith,
    "cartpole": partial(build_classic, "cartpole"),
    "pendulum": partial(build_classic, "pendulum"),
    "alfworld": build_alfworld,
    "scienceworld": build_scienceworld,
}
"""Domain builders by name."""


def build_domain(name: str, **kwargs: Any) -> Domain:
    """Build domain ``name`` (keyword arguments as the env's).

    The data files the builder reads (:func:`derl_bench.envs.data.note_data`) are recorded
    in the returned domain's ``data_files``.

    Raises:
        ValueError: If the domain is unknown (with a did-you-mean suggestion), the preset is
            unknown, or an inner override is invalid.
        TypeError: If an argument is not accepted by the domain.
        derl_bench.envs.data.DataFileMissing: If a data file is missing.
    """
    try:
        builder = DOMAINS[name]
    except KeyError:
        raise unknown_name_error("domain", name, DOMAINS) from None
    with recording_data_files() as files:
        domain = builder(**kwargs)
    return dataclasses.replace(domain, data_files=dict(sorted(files.items())))
