"""The llm_evolution agent: the paper's RLAIF / Eureka-like baseline (App. F)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest

from derl_bench.baselines import get_agent, list_agents
from derl_bench.baselines.base import MetaRewardAgent, StepResult
from derl_bench.baselines.llm_evolution import (
    LLMEndpointError,
    LLMEvolutionAgent,
    LLMEvolutionConfig,
    extract_meta_reward,
)
from derl_bench.meta_reward import InvalidMetaReward, parse

NAMES = ("g1", "g2", "g3", "g4")
PRIMITIVES = "g1: exact outcome\ng2: boxed format\ng3: step markers\ng4: answer appears"


def observation(history: list[tuple[str, float]], budget: int = 8) -> dict[str, Any]:
    """A MetaRewardEnv observation (same keys and dtypes as ``MetaRewardEnv._observation``)."""
    rewards = np.zeros(budget, dtype=np.float32)
    rewards[: len(history)] = [r for _, r in history]
    return {
        "instruction": "Generate a mathematical formula, the reward function. Output ONE formula.",
        "primitives": PRIMITIVES,
        "history_meta_rewards": tuple(t for t, _ in history),
        "history_rewards": rewards,
        "history_length": len(history),
    }


# -- registry and config --------------------------------------------------------------------------


def test_registry_lists_and_builds_the_agent() -> None:
    assert "llm_evolution" in list_agents()
    agent = get_agent("llm_evolution", primitive_names=NAMES, seed=3, history_top_k=2)
    assert isinstance(agent, LLMEvolutionAgent) and isinstance(agent, MetaRewardAgent)
    assert agent.config["seed"] == 3 and agent.config["history_top_k"] == 2
    json.dumps(agent.config)  # goes into result files


@pytest.mark.parametrize(
    ("fields", "quoted"),
    [
        ({"backend": "anthropic"}, "backend='anthropic'"),
        ({"backend": "openai", "model": "m"}, "url=None"),
        ({"backend": "openai", "url": "localhost:8000/v1", "model": "m"}, "localhost:8000"),
        ({"backend": "openai", "url": "http://h/v1"}, "model=None"),
        ({"url": "http://h/v1"}, "only used with backend='openai'"),
        ({"api_key_env": "sk-abc123"}, "sk-abc123"),
        ({"temperature": -0.1}, "temperature=-0.1"),
        ({"max_new_tokens": 0}, "max_new_tokens=0"),
        ({"history_top_k": -1}, "history_top_k=-1"),
        ({"timeout": 0}, "timeout=0"),
    ],
)
def test_config_rejects_bad_values_and_quotes_them(fields: dict[str, Any], quoted: str) -> None:
    with pytest.raises(ValueError) as caught:
        LLMEvolutionConfig(**fields)
    assert quoted in str(caught.value)


# -- prompt ---------------------------------------------------------------------------------------


def test_prompt_shows_the_best_k_earlier_meta_rewards_best_first_with_scores() -> None:
    history = [("g1", 0.30), ("g1 + g2", 0.62), ("g3", -1.0), ("g1 * g4", 0.55), ("g2", 0.10)]
    agent = LLMEvolutionAgent(primitive_names=NAMES, history_top_k=3, history="best")
    messages = agent.prompt(observation(history))
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert user.startswith("Generate a mathematical formula") and PRIMITIVES in user
    shown = ["Formula: g1 + g2\nScore: 0.6200", "Formula: g1 * g4\nScore: 0.5500"]
    shown.append("Formula: g1\nScore: 0.3000")
    positions = [user.index(block) for block in shown]
    assert positions == sorted(positions)
    assert "Formula: g2\n" not in user and "Formula: g3\n" not in user  # beyond history_top_k = 3


def test_prompt_uses_update_results_when_the_observation_has_no_history() -> None:
    agent = LLMEvolutionAgent(primitive_names=NAMES)
    assert "No formula has been tried yet" in agent.prompt(None)[1]["content"]
    agent.update(
        [
            StepResult(meta_reward="g1+g2", reward=0.4, info={"canonical": "g1 + g2"}),
            StepResult(meta_reward="g1 +", reward=-1.0, info={"canonical": None}),
        ]
    )
    user = agent.prompt(None)[1]["content"]
    assert user.index("Formula: g1 + g2\nScore: 0.4000") < user.index("Formula: g1 +\nScore: -1")


# -- extraction -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("```\ng1 + 0.5*g2\n```", "g1 + 0.5 * g2"),
        ("Sure! Here is a better reward:\n\n1. **Formula:** `g1 + 0.25 * g3`\n", "g1 + 0.25 * g3"),
        ("Formula: g1 * (g2 + 1)\nScore: 0.9", "g1 * (g2 + 1)"),
        ("- R = g1 + g4 / 2.", "g1 + g4 / 2"),
        ("I suggest g1 + 0.1 * g2 because format matters.", "g1 + 0.1 * g2"),
        ("Try g1 \u2212 0.5 \u00d7 g3", "g1 - 0.5 * g3"),
        ("Formula: g1 + sqrt(g2)\nFormula: g1 + 2 * g2", "g1 + 2 * g2"),  # first fails to parse
        ("g1 + g5\n(g1 + g2) / 2", "(g1 + g2) / 2"),  # g5 is not a primitive here
    ],
)
def test_extraction_picks_the_first_parseable_formula(reply: str, expected: str) -> None:
    assert extract_meta_reward(reply, NAMES) == expected


def test_extraction_prefers_a_formula_not_proposed_before() -> None:
    reply = "Formula: g1 + g2\nFormula: g1 + g3"
    assert extract_meta_reward(reply, NAMES, avoid={"g1 + g2"}) == "g1 + g3"
    assert extract_meta_reward(reply, NAMES, avoid={"g1 + g2", "g1 + g3"}) == "g1 + g2"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "The best reward is the one that works.\nNo formula today.",
            "The best reward is the one that works.",
        ),
        ("Output: \u221a1.4 \u2261 3", "Output: \u221a1.4 \u2261 3"),
        ("\n\n  g1 ** 2  \n", "g1 ** 2"),
        ("Formula: g1 + sqrt(g2)", "Formula: g1 + sqrt(g2)"),  # no fragment such as "g1"
        ("", ""),
    ],
)
def test_unparseable_replies_yield_an_invalid_string_without_raising(
    reply: str, expected: str
) -> None:
    text = extract_meta_reward(reply, NAMES)
    assert text == expected
    with pytest.raises(InvalidMetaReward):
        parse(text, NAMES)


# -- OpenAI-compatible backend against a local stand-in endpoint ----------------------------------


class _StandInEndpoint(BaseHTTPRequestHandler):
    """LOCAL STAND-IN for an OpenAI-compatible server (vLLM, llama.cpp, OpenAI): records each
    request and answers with the next canned reply, or with ``status`` if the test sets one."""

    replies: list[str] = []
    requests: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if type(self).status != 200:
            payload = b'{"error": {"message": "model not found"}}'
            self.send_response(type(self).status)
        else:
            reply = type(self).replies[(len(type(self).requests) - 1) % len(type(self).replies)]
            payload = json.dumps(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}
            ).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        del args


@pytest.fixture
def endpoint() -> Iterator[str]:
    _StandInEndpoint.replies = ["Formula: g1 + 0.5 * g2\nScore: 0.7", "I have no idea."]
    _StandInEndpoint.requests = []
    _StandInEndpoint.status = 200
    server = HTTPServer(("127.0.0.1", 0), _StandInEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_openai_backend_posts_chat_completions_and_parses_replies(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "secret-123")
    agent = get_agent(
        "llm_evolution",
        primitive_names=NAMES,
        seed=0,
        backend="openai",
        url=endpoint,
        model="stand-in-model",
        api_key_env="TEST_LLM_KEY",
        temperature=0.3,
        max_new_tokens=50,
    )
    proposals = agent.propose(observation([("g1", 0.5)]), 2)
    assert proposals == ["g1 + 0.5 * g2", "I have no idea."]  # the second is invalid, no raise
    sent = _StandInEndpoint.requests
    assert len(sent) == 2 and all(r["path"] == "/v1/chat/completions" for r in sent)
    assert sent[0]["auth"] == "Bearer secret-123"
    body = sent[0]["body"]
    assert body["model"] == "stand-in-model" and body["temperature"] == 0.3
    assert body["max_tokens"] == 50 and isinstance(body["seed"], int)
    assert body["messages"] == agent.prompt(observation([("g1", 0.5)]))
    assert "Formula: g1\nScore: 0.5000" in body["messages"][1]["content"]
    assert "secret-123" not in json.dumps(agent.config)


def test_openai_backend_http_error_names_url_and_status(endpoint: str) -> None:
    _StandInEndpoint.status = 404
    agent = LLMEvolutionAgent(backend="openai", url=endpoint, model="missing", api_key_env=None)
    with pytest.raises(LLMEndpointError, match=r"127\.0\.0\.1:\d+/v1/chat/completions.*HTTP 404"):
        agent.propose(observation([]), 1)
    assert _StandInEndpoint.requests[0]["auth"] is None  # no key configured, none sent


def test_openai_backend_unreachable_endpoint_is_a_clear_error() -> None:
    agent = LLMEvolutionAgent(
        backend="openai", url="http://127.0.0.1:9/v1", model="m", max_retries=0, timeout=5
    )
    with pytest.raises(LLMEndpointError, match=r"127\.0\.0\.1:9/v1/chat/completions"):
        agent.propose(observation([]), 1)


# -- local backend with the real SmolLM2-135M-Instruct --------------------------------------------


@pytest.fixture(scope="module")
def smollm2_agents() -> tuple[LLMEvolutionAgent, LLMEvolutionAgent, LLMEvolutionAgent]:
    pytest.importorskip("transformers")
    settings = LLMEvolutionConfig(max_new_tokens=16, device="cpu")
    return tuple(  # type: ignore[return-value]
        LLMEvolutionAgent(primitive_names=NAMES, seed=seed, config=settings) for seed in (7, 7, 8)
    )


@pytest.mark.slow
def test_local_smollm2_proposes_n_strings_deterministically_under_a_seed(
    smollm2_agents: tuple[LLMEvolutionAgent, LLMEvolutionAgent, LLMEvolutionAgent],
) -> None:
    first, same_seed, other_seed = smollm2_agents
    obs = observation([("g1", 0.3), ("g1 + g2", 0.35)])
    proposals = first.propose(obs, 2)
    assert len(proposals) == 2 and all(isinstance(p, str) for p in proposals)
    assert same_seed.propose(obs, 2) == proposals
    assert same_seed.last_replies == first.last_replies
    other_seed.propose(obs, 2)
    assert other_seed.last_replies != first.last_replies


def test_prompt_shows_each_round_with_its_scores_oldest_first() -> None:
    agent = LLMEvolutionAgent(primitive_names=NAMES, history_top_k=4)
    agent.update(
        [StepResult(meta_reward="g1", reward=0.3), StepResult(meta_reward="g2", reward=0.1)]
    )
    agent.update([StepResult(meta_reward="g1 + g2", reward=0.6)])
    user = agent.prompt(None)[1]["content"]
    assert user.index("Round 1:\nFormula: g1\nScore: 0.3000\nFormula: g2\nScore: 0.1000") < (
        user.index("Round 2:\nFormula: g1 + g2\nScore: 0.6000")
    )
    assert user.rstrip().endswith("Reply with the formula only.")  # local + constrained
    agent.update([StepResult(meta_reward=f"g{i}", reward=0.0) for i in (1, 2, 3)])
    user = agent.prompt(None)[1]["content"]  # rounds 2 and 3 fill history_top_k = 4
    assert "Round 1:\nFormula: g1 + g2" in user and "Round 3:" not in user
    assert "Score: 0.1000" not in user  # the oldest round is dropped
