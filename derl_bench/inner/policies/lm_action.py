r"""An LLM agent that scores each valid action by its likelihood: the ``paper`` preset's policy.

The paper's agent experiments (ALFWorld, ScienceWorld) train an instruction-tuned LM
(Qwen2.5-1.5B-Instruct on GPUs). :class:`LMActionPolicy` turns any ``transformers`` causal LM into
an :class:`~derl_bench.inner.policies.base.EpisodePolicy` over the env's valid actions: for each
valid action ``a`` of a state it computes

    score(a) = sum over the action's tokens t of log p_LM(t | prompt, earlier action tokens)

(optionally divided by the number of action tokens), and the policy is
``softmax(score / temperature)`` over the valid actions. Acting never generates free text, so
every action is admissible; training moves the LM itself (all its parameters).

Prompt (chat style, built from the observation and the valid actions)::

    system:    <config.system_prompt>
    user:      <observation, possibly cut to its last max_observation_chars characters>

               Admissible actions:
               - <action 1>
               - ...

               Reply with exactly one admissible action.
    assistant: <action tokens><eos>

It is rendered with the tokenizer's chat template (``add_generation_prompt=True``); a tokenizer
without one gets ``"<system>\n\n<user>\n\nAction:"`` and the action is scored with a leading
space. The scored tokens are the action followed by the end-of-turn token (the tokenizer's
``eos_token``, ``<|im_end|>`` for Qwen2.5-Instruct), so that an action that is a prefix of
another (``"open door"``, ``"open door to kitchen"``) is not favoured just for being shorter.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from derl_bench.inner.policies.action_scoring import TextStepRecord, choose_actions

__all__ = ["DEFAULT_SYSTEM_PROMPT", "LMActionConfig", "LMActionPolicy"]

DEFAULT_SYSTEM_PROMPT = (
    "You are an agent in a text-based environment. Read the observation and choose the next "
    "action that makes progress on your task."
)


@dataclass(frozen=True, kw_only=True)
class LMActionConfig:
    """Settings of :class:`LMActionPolicy` (prompt, scoring and batching)."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System message of the chat prompt."""
    max_observation_chars: int | None = 4000
    """Keep only the last this many characters of an observation (its most recent text);
    ``None`` keeps all of it. Bounds the prompt length (about 1,000 tokens of English)."""
    list_actions: bool = True
    """Show the admissible actions in the prompt (as LLM agents for ALFWorld and ScienceWorld
    usually do)."""
    append_eos: bool = True
    """Score the end-of-turn token after the action (see the module docstring)."""
    length_normalize: bool = False
    """Divide each action's summed log-probability by its number of scored tokens."""
    temperature: float = 1.0
    """Softmax temperature (> 0) over the valid actions' scores."""
    max_rows_per_forward: int = 64
    """Most (state, action) sequences per LM forward pass; bounds the peak memory of a pass
    (the kept logits are rows × action tokens × vocabulary floats)."""

    def __post_init__(self) -> None:
        if self.max_observation_chars is not None and self.max_observation_chars <= 0:
            raise ValueError(
                f"max_observation_chars must be positive or None, got {self.max_observation_chars}"
            )
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be positive and finite, got {self.temperature}")
        if self.max_rows_per_forward <= 0:
            raise ValueError(
                f"max_rows_per_forward must be positive, got {self.max_rows_per_forward}"
            )


class LMActionPolicy(nn.Module):
    """A causal LM as a policy over valid actions (softmax of action log-likelihoods).

    The LM is a registered submodule: ``parameters()`` and ``state_dict()`` are the LM's. Keep
    its dropout off (Qwen2 has none by default) so that :meth:`act` and :meth:`log_prob` agree.
    Each state's prompt runs once: its key/value cache is repeated for each valid action and
    only the action tokens run again, so a step with A actions costs one prompt pass plus A
    short passes (the model must accept a ``transformers`` ``Cache`` as ``past_key_values``, as
    decoder LMs in transformers do). Prompts are left-padded with explicit position ids, so a
    step scores the same whatever batch it is in (up to float rounding). Step records are
    :class:`TextStepRecord`.

    Args:
        model: A ``transformers`` causal LM (e.g. ``AutoModelForCausalLM``).
        tokenizer: Its tokenizer; needs an ``eos_token`` when ``config.append_eos``.
        config: Prompt and scoring settings (default :class:`LMActionConfig`).

    Raises:
        ValueError: If ``append_eos`` is set and the tokenizer has no ``eos_token``.
    """

    def __init__(
        self, model: nn.Module, tokenizer: Any, config: LMActionConfig | None = None
    ) -> None:
        super().__init__()
        self.config = config or LMActionConfig()
        self.model = model
        self.tokenizer = tokenizer
        if self.config.append_eos and tokenizer.eos_token_id is None:
            raise ValueError("append_eos=True needs a tokenizer with an eos_token")
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)  # masked out
        forward = inspect.signature(model.forward).parameters
        self._keeps_logits = "logits_to_keep" in forward

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        config: LMActionConfig | None = None,
        *,
        dtype: torch.dtype | str = "auto",
        device: str | torch.device | None = None,
    ) -> LMActionPolicy:
        """Load the LM and tokenizer with ``AutoModelForCausalLM``/``AutoTokenizer``.

        Args:
            source: A local folder, or a Hugging Face id (needs the hub or the HF cache), e.g.
                ``"Qwen/Qwen2.5-1.5B-Instruct"`` for the paper preset.
            config: Prompt and scoring settings.
            dtype: Weight dtype passed to ``from_pretrained`` (``"auto"``: as saved).
            device: Where to put the model (default: leave it where it loads, the CPU).

        Returns:
            The policy.

        Raises:
            ImportError: If transformers is missing (install the 'llm' extra).
        """
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as error:
            raise ImportError(
                "LMActionPolicy needs transformers: install the 'llm' extra "
                "(pip install -e '.[llm]')"
            ) from error
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, config)

    def prompt(self, state: str, actions: Sequence[str]) -> str:
        """Render the prompt of one state (see the module docstring).

        Args:
            state: The (already truncated) observation.
            actions: Its valid actions.

        Returns:
            The prompt text, ending where the action begins.
        """
        user = state
        if self.config.list_actions:
            listed = "\n".join(f"- {a}" for a in actions)
            user = (
                f"{state}\n\nAdmissible actions:\n{listed}\n\n"
                "Reply with exactly one admissible action."
            )
        if getattr(self.tokenizer, "chat_template", None):
            messages = [
                {"role": "system", "content": self.config.system_prompt},
                {"role": "user", "content": user},
            ]
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return f"{self.config.system_prompt}\n\n{user}\n\nAction:"

    def _tokenize(
        self, states: Sequence[str], actions: Sequence[Sequence[str]]
    ) -> tuple[list[list[int]], list[list[list[int]]]]:
        """Prompt token ids per state, and the scored token ids of each of its actions."""
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        eos = [self.tokenizer.eos_token_id] if self.config.append_eos else []
        unique = list(dict.fromkeys(a for row in actions for a in row))
        prefix = "" if chat else " "
        encoded = self.tokenizer([prefix + a for a in unique], add_special_tokens=False)
        by_action = {a: ids + eos for a, ids in zip(unique, encoded["input_ids"], strict=True)}
        for action, ids in by_action.items():
            if not ids:
                raise ValueError(f"action {action!r} has no tokens to score")
        prompts = [
            self.tokenizer(self.prompt(state, row), add_special_tokens=not chat)["input_ids"]
            for state, row in zip(states, actions, strict=True)
        ]
        return prompts, [[by_action[a] for a in row] for row in actions]

    def _score_group(
        self, prompts: Sequence[list[int]], actions: Sequence[Sequence[list[int]]]
    ) -> torch.Tensor:
        """Scores of all actions of a few states; float32, shape (total actions,), row-major.

        Each prompt runs once; its key/value cache is then repeated for each of its actions
        and only the action tokens run again.
        """
        device = next(self.model.parameters()).device
        n_prompts, width = len(prompts), max(len(p) for p in prompts)
        input_ids = torch.full((n_prompts, width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((n_prompts, width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)  # left padding
            attention[i, width - len(ids) :] = 1
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        keep = {"logits_to_keep": 1} if self._keeps_logits else {}
        out = self.model(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **keep,
        )
        first_logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (n_prompts, vocab)

        rows = [ids for row in actions for ids in row]
        owner = torch.tensor([i for i, row in enumerate(actions) for _ in row])
        k_max = max(len(ids) for ids in rows)
        targets = torch.zeros((len(rows), k_max), dtype=torch.long)
        scored = torch.zeros((len(rows), k_max), dtype=torch.bool)
        for j, ids in enumerate(rows):
            targets[j, : len(ids)] = torch.tensor(ids)  # right padding
            scored[j, : len(ids)] = True
        targets, scored, owner_d = targets.to(device), scored.to(device), owner.to(device)
        token_logp = first_logp[owner_d, targets[:, 0]][:, None]  # the first action token
        if k_max > 1:  # the later action tokens, given the prompt's cache
            cache = out.past_key_values
            cache.reorder_cache(owner_d)
            prompt_lengths = torch.tensor([len(p) for p in prompts])[owner]
            action_positions = prompt_lengths[:, None] + torch.arange(k_max - 1)[None, :]
            later = self.model(
                input_ids=targets[:, :-1],
                attention_mask=torch.cat([attention[owner], scored[:, :-1].long().cpu()], dim=1).to(
                    device
                ),
                position_ids=action_positions.to(device),
                past_key_values=cache,
                use_cache=True,
            ).logits
            later_logp = torch.log_softmax(later.float(), dim=-1)
            later_logp = later_logp.gather(2, targets[:, 1:, None]).squeeze(-1)
            token_logp = torch.cat([token_logp, later_logp], dim=1)
        total = token_logp.masked_fill(~scored, 0.0).sum(dim=1)
        if self.config.length_normalize:
            total = total / scored.sum(dim=1)
        return total

    def logits(self, states: Sequence[str], actions: Sequence[Sequence[str]]) -> torch.Tensor:
        """Action scores divided by the temperature, padded with ``-inf``.

        States are processed in groups of at most ``config.max_rows_per_forward`` actions
        (at least one state per group).

        Args:
            states: n state texts (already truncated).
            actions: n non-empty sequences of action strings.

        Returns:
            float32, shape (n, max_actions); ``-inf`` at j >= len(actions[i]). Differentiable
            w.r.t. the LM when grad is enabled.
        """
        prompts, action_ids = self._tokenize(states, actions)
        groups: list[list[int]] = []
        rows_in_group = 0
        for i, row in enumerate(actions):
            if not groups or rows_in_group + len(row) > self.config.max_rows_per_forward:
                groups.append([])
                rows_in_group = 0
            groups[-1].append(i)
            rows_in_group += len(row)
        flat = torch.cat(
            [self._score_group([prompts[i] for i in g], [action_ids[i] for i in g]) for g in groups]
        )
        flat = flat / self.config.temperature
        width = max(len(row) for row in actions)
        out = flat.new_full((len(actions), width), float("-inf"))
        lengths = torch.tensor([len(row) for row in actions])
        mask = torch.arange(width)[None, :] < lengths[:, None]
        return out.masked_scatter(mask.to(out.device), flat)

    @torch.no_grad()
    def act(
        self,
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
        *,
        generator: torch.Generator,
        greedy: bool = False,
    ) -> tuple[list[int], list[TextStepRecord]]:
        """Choose one valid action per env (see ``EpisodePolicy.act``).

        Args:
            observations: n_envs observation strings.
            infos: The matching info dicts with ``"valid_actions"``.
            generator: CPU generator for sampling.
            greedy: Take the most likely action (ties: the lowest index).

        Returns:
            ``(actions, records)``: n_envs indices into each env's ``valid_actions`` and
            n_envs :class:`TextStepRecord`.

        Raises:
            ValueError: If an env has no valid actions.
            TypeError: If an observation or action is not a string.
        """
        return choose_actions(
            self.logits,
            observations,
            infos,
            max_chars=self.config.max_observation_chars,
            generator=generator,
            greedy=greedy,
        )

    def log_prob(self, step_records: Sequence[TextStepRecord]) -> torch.Tensor:
        """Log-probability of each recorded action under the current LM.

        All (record, valid action) sequences are scored in padded batches of at most
        ``config.max_rows_per_forward`` rows; the autograd graph of every batch is kept until
        backward, so callers bound memory by passing minibatches of records.

        Args:
            step_records: Records from :meth:`act`.

        Returns:
            float32, shape (n_records,), differentiable w.r.t. the LM's parameters.
        """
        device = next(self.model.parameters()).device
        if not step_records:
            return torch.zeros(0, device=device)
        logits = self.logits([r.state for r in step_records], [r.actions for r in step_records])
        index = torch.tensor([r.index for r in step_records], device=logits.device)
        return torch.log_softmax(logits, dim=-1).gather(1, index[:, None]).squeeze(1)
