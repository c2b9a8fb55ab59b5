"""Loading language-model policies (offline first) and greedy evaluation of them.

The preset's ``model`` field names the source; :func:`derl_bench.inner.models.model_source`
turns the short names (``"tiny"``, ``"tiny-arith"``, ``"smollm2-135m"``) into local folders, and
passes a local folder or a Hugging Face model id through.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from derl_bench.envs.records import MathRecord
from derl_bench.inner.lm_grpo_config import MATH_INSTRUCTION_SUFFIX, LMGRPOConfig
from derl_bench.inner.models import PolicyUnavailable, model_source
from derl_bench.inner.tiny_lm import plain_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "PolicyUnavailable",
    "format_prompt",
    "greedy_completions",
    "load_policy",
    "prompt_text",
    "sampled_completions",
]


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

    source = model_source(model, data_dir=data_dir)
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


def _decode(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    samples: int,
    generate_kwargs: dict[str, Any],
) -> tuple[list[str], int]:
    """Generate ``samples`` completions per prompt in left-padded batches of ``batch_size``.

    Returns:
        The completions, prompt-major, special tokens removed; the tokens processed (prompt
        tokens once per sequence + generated, padding excluded).
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
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **generate_kwargs,
            )
            generated = output[:, encoded["input_ids"].shape[1] :]
            tokens += samples * int(encoded["attention_mask"].sum())
            tokens += int((generated != tokenizer.pad_token_id).sum())
            completions.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
    return completions, tokens


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
    return _decode(
        policy,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        samples=1,
        generate_kwargs={"do_sample": False},
    )


def sampled_completions(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    samples: int,
    temperature: float,
    seed: int,
    max_new_tokens: int,
    batch_size: int,
) -> tuple[list[str], int]:
    """Sample ``samples`` completions of each prompt, as training rollouts are sampled.

    Pure temperature sampling (``top_k=0``, ``top_p=1``: TRL GRPO's rollout defaults) on torch's
    global generator reseeded with ``seed`` inside :func:`torch.random.fork_rng`, so the caller's
    random state is untouched and the draws are the same on every call with the same policy,
    prompts and batch size.

    Args:
        policy: Causal LM.
        tokenizer: Its tokenizer.
        prompts: Rendered prompt texts.
        samples: Completions per prompt, >= 1.
        temperature: Sampling temperature, > 0.
        seed: Seed of the sampling stream.
        max_new_tokens: Completion budget in tokens.
        batch_size: Prompts per ``generate`` call (left padding); each call makes
            ``batch_size * samples`` sequences.

    Returns:
        The completions, prompt-major (``samples`` per prompt, in prompt order, special tokens
        removed), and the number of tokens processed (prompt tokens once per sequence +
        generated, padding excluded).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _decode(
            policy,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            samples=samples,
            generate_kwargs={
                "do_sample": True,
                "temperature": temperature,
                "top_k": 0,
                "top_p": 1.0,
                "num_return_sequences": samples,
            },
        )
