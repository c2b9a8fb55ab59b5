"""Provenance of a number: the lock file, the package versions that shape it, threads and CPU.

A benchmark number is only worth citing if another lab gets it too. Every result file (and every
golden result, see ``tests/golden/``) records a :class:`ProvenanceRecord`:

- ``lock_sha256``: SHA-256 of the lock file (``requirements/lock-py311.txt``, made by
  ``bash scripts/lock.sh``) **if** the running environment matches it: every package the lock
  pins is installed at exactly the pinned version. If any differs, ``lock_sha256`` is None and
  ``lock_mismatches`` names them, so a number made in a hand-upgraded environment is visible as
  such. ``derl-bench validate`` warns when a result's lock differs from the checkout's lock.
- ``packages``: the installed versions of the packages that shape a number
  (:data:`SHAPING_PACKAGES`), whatever the lock says.
- ``torch_threads``: ``torch.get_num_threads()`` of the process (inner trainings pin their own
  thread count, recorded in the env's spec; see ``MetaRewardEnv``), ``cpu_model`` from
  ``/proc/cpuinfo``, and ``cpu_capability``, the instruction set torch's kernels dispatch to
  (pinned to AVX2 by ``import derl_bench``: AVX-512 kernels round differently, see
  ``derl_bench/_numerics.py``).

The lock file is looked up as ``$DERL_BENCH_LOCK`` if set, else ``requirements/lock-py3XX.txt``
(XX = the running Python's minor version) at the top of the checkout this package runs from.
Outside a checkout, with no ``DERL_BENCH_LOCK``, ``lock_file`` and ``lock_sha256`` are None.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path
from typing import NotRequired, TypedDict

__all__ = [
    "LOCK_ENV_VAR",
    "SHAPING_PACKAGES",
    "LockStatus",
    "ProvenanceRecord",
    "cpu_model",
    "current_lock",
    "lock_file_sha256",
    "lock_path",
    "lock_warning",
    "locked_versions",
    "provenance",
    "software_key",
    "version_changes",
]

LOCK_ENV_VAR = "DERL_BENCH_LOCK"
"""Environment variable naming the lock file to check the environment against."""

SHAPING_PACKAGES: tuple[str, ...] = (
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "tokenizers",
    "gymnasium",
    "textworld",
    "alfworld",
    "scienceworld",
    "numpy",
    "math-verify",
)
"""Packages whose version can change a validation success (recorded in every result file)."""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_MAX_MISMATCHES = 20


class LockStatus(TypedDict):
    """How the running environment relates to the lock file."""

    lock_file: str | None
    """The lock file's path relative to the checkout (or as given), None if there is none."""
    lock_sha256: str | None
    """SHA-256 (64 hex digits) of the lock file if the environment matches it, else None."""
    lock_mismatches: list[str]
    """``"name: installed X, lock Y"`` for up to 20 locked packages that differ (empty when the
    environment matches, or when there is no lock file)."""


class ProvenanceRecord(LockStatus):
    """What a result file records about the software and machine that made it."""

    packages: dict[str, str | None]
    """Installed version of each of :data:`SHAPING_PACKAGES`; None if not installed."""
    torch_threads: int | None
    """Torch intra-op threads of the inner trainings (the env's pinned count, else
    ``torch.get_num_threads()`` when the record was made); None without torch."""
    cpu_model: str | None
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``), None if unknown."""
    cpu_capability: NotRequired[str | None]
    """The instruction set torch's CPU kernels dispatch to in this process, e.g. ``"AVX2"``
    (``torch.backends.cpu.get_cpu_capability()``; :func:`derl_bench._numerics.pin_instruction_set`
    pins it to AVX2 so that AVX2 and AVX-512 machines give the same numbers); None without torch.
    Files written before it existed lack it."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path | None:
    """Return the lock file to check the environment against, or None if there is none.

    Returns:
        ``$DERL_BENCH_LOCK`` if set, else ``<checkout>/requirements/lock-py3XX.txt`` if that file
        exists (XX: this Python's minor version), else None.

    Raises:
        FileNotFoundError: If ``$DERL_BENCH_LOCK`` names a file that does not exist (fix: point
            it at a lock made by ``bash scripts/lock.sh``, or unset it).
    """
    env = os.environ.get(LOCK_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"${LOCK_ENV_VAR}={env!r} is not a file; point it at a lock file made by "
                "'bash scripts/lock.sh' or unset it."
            )
        return path
    root = Path(__file__).resolve().parents[1]
    candidate = root / "requirements" / f"lock-py3{sys.version_info.minor}.txt"
    return candidate if candidate.is_file() else None


def locked_versions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse the ``name==version`` pins of a lock file.

    Args:
        path: A requirements file with hashes, as written by ``scripts/lock.sh``.

    Returns:
        Normalised package name (PEP 503: lower case, runs of ``-_.`` as ``-``) to pinned version.
    """
    pins: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _lock_status(path_text: str | None) -> LockStatus:
    if path_text is None:
        return LockStatus(lock_file=None, lock_sha256=None, lock_mismatches=[])
    path = Path(path_text)
    root = Path(__file__).resolve().parents[1]
    try:
        shown = str(path.resolve().relative_to(root))
    except ValueError:
        shown = str(path)
    mismatches = []
    for name, pinned in sorted(locked_versions(path).items()):
        have = _installed(name)
        if have != pinned:
            mismatches.append(f"{name}: installed {have or 'nothing'}, lock {pinned}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LockStatus(
        lock_file=shown,
        lock_sha256=None if mismatches else digest,
        lock_mismatches=mismatches[:_MAX_MISMATCHES],
    )


def current_lock() -> LockStatus:
    """Check the running environment against :func:`lock_path` (once per process).

    Returns:
        A new record (safe to modify): the lock file, its SHA-256 if every pinned package is
        installed at its pinned version (else None), and the mismatches.

    Raises:
        FileNotFoundError: As :func:`lock_path`.
    """
    path = lock_path()
    status = _lock_status(None if path is None else str(path))
    return LockStatus(
        lock_file=status["lock_file"],
        lock_sha256=status["lock_sha256"],
        lock_mismatches=list(status["lock_mismatches"]),
    )


def lock_file_sha256() -> str | None:
    """Return the SHA-256 of the lock file itself (whether or not the environment matches it).

    Returns:
        64 hex digits, or None if there is no lock file (:func:`lock_path`).
    """
    path = lock_path()
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def cpu_model() -> str | None:
    """Return the CPU's model name, e.g. ``"AMD EPYC 7B13"``; None if it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def provenance(*, torch_threads: int | None = None) -> ProvenanceRecord:
    """Describe the software and machine of this process (see the module docstring).

    Imports torch if it is installed (to read its thread count).

    Args:
        torch_threads: The thread count the inner trainings were pinned to
            (``MetaRewardEnv.torch_threads``); None records ``torch.get_num_threads()``.

    Returns:
        A new record (safe to modify).

    Raises:
        FileNotFoundError: As :func:`lock_path`.
    """
    threads: int | None = torch_threads
    capability: str | None = None
    if _installed("torch") is not None:
        try:
            import torch

            if threads is None:
                threads = int(torch.get_num_threads())
            capability = str(torch.backends.cpu.get_cpu_capability())
        except Exception:  # a broken torch install must not stop result writing
            pass
    return ProvenanceRecord(
        **current_lock(),
        packages={name: _installed(name) for name in SHAPING_PACKAGES},
        torch_threads=threads,
        cpu_model=cpu_model(),
        cpu_capability=capability,
    )


def version_changes(recorded: dict[str, str | None]) -> list[str]:
    """Compare recorded package versions with the installed ones.

    Args:
        recorded: Package name to version, as in ``ProvenanceRecord["packages"]``.

    Returns:
        ``"name: recorded X, installed Y"`` for each package whose version differs, sorted.
    """
    changes = []
    for name, version in sorted(recorded.items()):
        have = _installed(name)
        if have != version:
            changes.append(
                f"{name}: recorded {version or 'nothing'}, installed {have or 'nothing'}"
            )
    return changes


def lock_warning(recorded: ProvenanceRecord | None, current_sha256: str | None) -> str | None:
    """Say why a result's number may not reproduce under this checkout's lock, if it may not.

    Args:
        recorded: The result file's ``provenance`` object (None for files written before it).
        current_sha256: :func:`lock_file_sha256` of this checkout (None if it has no lock file).

    Returns:
        One line naming the difference and what it means, or None when the result was made
        in an environment matching this checkout's lock.
    """
    if recorded is None:
        return "no provenance recorded (written before lock hashes were recorded): unverifiable"
    made = recorded.get("lock_sha256")
    if made is None:
        first = (recorded.get("lock_mismatches") or ["no lock file"])[0]
        return f"produced outside the lock ({first}): the number may not reproduce"
    if current_sha256 is None:
        return None
    if made != current_sha256:
        return (
            f"produced under another lock ({made[:12]}…, this checkout's is "
            f"{current_sha256[:12]}…): the number may differ under this lock"
        )
    return None


def software_key() -> str:
    """Name the installed software for cache folders of built models.

    Returns:
        ``"lock-"`` + the first 16 hex digits of the lock's SHA-256 when the environment matches
        the lock, else ``"env-"`` + 16 hex digits of a hash of the installed versions of
        :data:`SHAPING_PACKAGES` and the Python version.
    """
    status = current_lock()
    if status["lock_sha256"]:
        return "lock-" + status["lock_sha256"][:16]
    versions = {name: _installed(name) for name in SHAPING_PACKAGES}
    versions["python"] = platform.python_version()
    payload = ",".join(f"{k}={v}" for k, v in sorted(versions.items()))
    return "env-" + hashlib.sha256(payload.encode()).hexdigest()[:16]
