"""The MetaRewardEnv (the outer problem as a Gymnasium env) and its domains."""

from __future__ import annotations

from derl_bench.meta_env.domains import DOMAINS, Domain, build_domain
from derl_bench.meta_env.meta_reward_env import DEFAULT_PRESET, MetaRewardEnv

__all__ = ["DEFAULT_PRESET", "DOMAINS", "Domain", "MetaRewardEnv", "build_domain"]
