"""Golden results: one fixed `smoke` meta-step per registered env id, stored in tests/golden/.

Each file ``tests/golden/<env id>.json`` holds the exact validation success, primitive means,
training curve and inner-step count of ``env.step(META_REWARD)`` after ``env.reset(seed=SEED)``
with ``preset="smoke"``, plus the provenance (lock hash, package versions) it was made under and
the SHA-256 of the cached model files the domain used (tiny LMs, text agents' cold starts, rebuilt
from scratch on an empty cache). ``tests/test_golden.py`` re-runs each case and requires identical
numbers.

Regenerate (after a deliberate change, e.g. a new lock or a preset change that bumps an env
version; say why in the commit):

    .venv/bin/python tests/golden_cases.py --write                 # every registered id
    .venv/bin/python tests/golden_cases.py --write DERL-Arith-v0   # some ids
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
META_REWARD = "(g1 + g2 + g3 + g4) / 4"
SEED = 0
PRESET = "smoke"
# Numbers compared exactly (no tolerance; the training loss aside, see _comparable): the same
# lock on the same kind of machine gives the same bits. The artefact hashes check that cached
# models are rebuilt bit-identically.
COMPARED = (
    "validation_success",
    "primitive_means",
    "validation_primitive_means",
    "training_curve",
    "inner_steps",
    "rollouts",
    "artefacts",
)


def registered_ids() -> list[str]:
    """Every env id derl_bench registers (the live registry, not a hand-kept list)."""
    from derl_bench._registration import ENV_SPECS

    return [env_id for env_id, _ in ENV_SPECS]


def golden_path(env_id: str) -> Path:
    return GOLDEN_DIR / f"{env_id}.json"


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file in ``folder`` (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _artefacts(env: Any) -> dict[str, str]:
    """SHA-256 of the cached model folders the env's domain builds (the tiny LMs)."""
    domain = env.unwrapped.domain_name
    if domain in ("gsm8k", "math"):
        from derl_bench.inner.tiny_lm import tiny_lm_path

        return {"tiny_lm": folder_sha256(tiny_lm_path())}
    if domain == "arith":
        from derl_bench.inner.tiny_lm import arith_tiny_lm_path

        return {"tiny_lm_arith": folder_sha256(arith_tiny_lm_path())}
    spec = getattr(env.unwrapped.trainer.policy_factory, "cold_start_spec", None)
    if spec is not None:  # text agents from v1: the behaviour-cloning cold start
        from derl_bench.inner.tiny_lm import cache_root

        return {"cold_start": folder_sha256(cache_root() / "cold_start" / spec.key())}
    return {}


def run_case(env_id: str) -> dict[str, Any]:
    """Run the golden meta-step of ``env_id`` and return its record (see the module docstring)."""
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)
    from derl_bench.provenance import provenance

    env = gymnasium.make(env_id, preset=PRESET, budget=1)
    try:
        env.reset(seed=SEED)
        _, reward, _, _, info = env.step(META_REWARD)
        record = {
            "env_id": env_id,
            "preset": PRESET,
            "meta_reward": META_REWARD,
            "seed": SEED,
            "validation_success": float(reward),
            "primitive_means": info["primitive_means"],
            "validation_primitive_means": info["validation_primitive_means"],
            "training_curve": info["training_curve"],
            "inner_steps": int(info["cost"]["inner_steps"]),
            "rollouts": int(info["cost"]["rollouts"]),
            "artefacts": _artefacts(env),
        }
    finally:
        env.close()
    prov = provenance()
    record["provenance"] = {
        "lock_file": prov["lock_file"],
        "lock_sha256": prov["lock_sha256"],
        "packages": prov["packages"],
        "cpu_model": prov["cpu_model"],
        "cpu_capability": prov.get("cpu_capability"),
    }
    return record


def _comparable(key: str, value: Any) -> Any:
    # The float32 training loss is a diagnostic, not a number users cite, and it is not
    # bit-stable across processes on the text domains: the frozen MiniLM embeds a string in
    # whichever padded batch it first meets, so its last bits depend on what the process embedded
    # before (measured: ALFWorld-L2 loss -0.0342628285 after other domains ran in the process,
    # -0.0342628695 in a fresh one; every other number identical). So it is compared to 1e-4.
    if key == "training_curve" and isinstance(value, list):
        return [
            {k: (round(v, 4) if k == "loss" else v) for k, v in sorted(row.items())}
            for row in value
        ]
    return value


def differences(golden: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Lines naming every compared field that differs between a golden record and a rerun."""
    lines = []
    for key in COMPARED:
        if _comparable(key, golden.get(key)) != _comparable(key, now.get(key)):
            lines.append(f"{key}: golden {golden.get(key)!r}, now {now.get(key)!r}")
    return lines


def explain(golden: dict[str, Any], now: dict[str, Any]) -> str:
    """Why a golden check failed: the differing numbers, then what changed in the software."""
    lines = [f"{golden['env_id']}: the golden smoke meta-step changed:"]
    lines += ["  " + line for line in differences(golden, now)]
    then, current = golden["provenance"], now["provenance"]
    if then["lock_sha256"] != current["lock_sha256"]:
        lines.append(
            f"  the lock changed: golden made under {then['lock_sha256']}, "
            f"now {current['lock_sha256']} ({current['lock_file']})"
        )
    changed = [
        f"{name}: golden {then['packages'].get(name)}, now {current['packages'].get(name)}"
        for name in sorted(set(then["packages"]) | set(current["packages"]))
        if then["packages"].get(name) != current["packages"].get(name)
    ]
    lines += ["  package version changed: " + c for c in changed]
    if then.get("cpu_model") != current.get("cpu_model"):
        lines.append(f"  CPU model: golden {then.get('cpu_model')}, now {current.get('cpu_model')}")
    if then.get("cpu_capability") not in (None, current.get("cpu_capability")):
        lines.append(
            f"  torch kernels: golden {then['cpu_capability']}, now {current.get('cpu_capability')}"
            " (see derl_bench/_numerics.py)"
        )
    if not changed and then["lock_sha256"] == current["lock_sha256"]:
        lines.append("  same lock and package versions: a code change moved the number.")
    lines.append(
        "  If the change is deliberate, regenerate: .venv/bin/python tests/golden_cases.py --write "
        f"{golden['env_id']} (and bump the env version if the number a user gets changed)."
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--write":
        print(__doc__)
        return 2
    ids = argv[1:] or registered_ids()
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for env_id in ids:
        record = run_case(env_id)
        golden_path(env_id).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"wrote {golden_path(env_id)}: validation_success {record['validation_success']}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
