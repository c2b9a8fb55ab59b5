"""The instruction-set pin (derl_bench/_numerics.py): set on import, user values win, opt-out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from derl_bench._numerics import NATIVE_ISA_VARIABLE, PINNED_ISA


def _env_after_import(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PINNED_ISA and k != NATIVE_ISA_VARIABLE}
    env.update(extra)
    code = (
        "import json, os, derl_bench, torch; "
        "print(json.dumps({k: os.environ.get(k) for k in "
        f"{sorted(PINNED_ISA)!r}}} | {{'torch': torch.backends.cpu.get_cpu_capability()}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_pins_avx2_and_torch_uses_it() -> None:
    seen = _env_after_import()
    assert {k: seen[k] for k in PINNED_ISA} == PINNED_ISA
    # torch reports the capability it dispatches to: never wider than the pin
    assert seen["torch"] in {"AVX2", "DEFAULT", "NO AVX"}


def test_a_users_value_wins_and_the_opt_out_leaves_the_libraries_alone() -> None:
    assert _env_after_import(ATEN_CPU_CAPABILITY="default")["ATEN_CPU_CAPABILITY"] == "default"
    seen = _env_after_import(**{NATIVE_ISA_VARIABLE: "1"})
    assert all(seen[k] is None for k in PINNED_ISA)
