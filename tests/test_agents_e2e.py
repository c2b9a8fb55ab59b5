"""Every registered outer agent, end to end, on a real domain (DERL-CartPole-v0, smoke).

CartPole is the cheapest real domain: each meta-step is a real compact-GRPO training in
Gymnasium's CartPole. The inner budget is cut further (``inner_overrides``) to keep the
suite short; the code path is the one users run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derl_bench.baselines import list_agents
from derl_bench.meta_reward import parse
from derl_bench.primitives import get_primitive_set
from derl_bench.results import load_result
from derl_bench.runner import run

pytestmark = pytest.mark.slow

ENV = "DERL-CartPole-v0"
SMALL = {"inner_overrides": {"max_steps": 2, "tasks_per_step": 2, "n_val": 4, "n_test": 4}}
NAMES = get_primitive_set("episode").names
# derl/derl_pop default to SmolLM2 + LoRA (minutes of cold-start SFT on a CPU); here the cheap
# char-gru ablation runs the runner path. The LLM path end to end: tests/test_derl_llm.py.
AGENT_CONFIG = {name: {"backbone": "char-gru"} for name in ("derl", "derl_pop", "random")}


@pytest.mark.parametrize("agent", [a for a in list_agents() if a != "derl_pop"])
def test_agent_runs_end_to_end_on_cartpole(agent: str, tmp_path: Path) -> None:
    result = run(
        ENV,
        agent,
        budget=2,
        seed=0,
        preset="smoke",
        proposals_per_step=2,
        out_dir=tmp_path,
        env_kwargs=SMALL,
        progress=False,
        agent_config=AGENT_CONFIG.get(agent),
    )
    record = load_result(result.path)  # schema-valid
    assert record["status"] == "finished" and len(record["meta_steps"]) == 2
    for step in record["meta_steps"]:
        if step["valid"]:
            parse(step["meta_reward"], primitive_names=NAMES)
            assert 0.0 <= step["validation_success"] <= 1.0
            assert step["cost"]["inner_steps"] > 0
    if record["best"] is not None:
        assert 0.0 <= record["test_success"] <= 1.0


def test_derl_pop_warm_starts_from_real_checkpoints_with_lineage(tmp_path: Path) -> None:
    result = run(
        ENV,
        "derl_pop",
        budget=4,
        seed=0,
        preset="smoke",
        proposals_per_step=2,
        out_dir=tmp_path,
        env_kwargs=SMALL,
        progress=False,
        agent_config=AGENT_CONFIG["derl_pop"],
    )
    record = load_result(result.path)
    assert record["status"] == "finished"
    folder = tmp_path / ENV / "derl_pop" / "checkpoints"
    lineages = [json.loads(p.read_text()) for p in folder.glob("*/lineage.json")]
    assert len(lineages) >= 3  # one per trained meta-step (distinct meta-rewards)
    assert all((folder / entry["id"] / "policy.pt").is_file() for entry in lineages)
    # round 1 starts from the initial policy; round 2 from the best checkpoint of round 1
    first_round = {entry["meta_reward"] for entry in lineages if entry["parent"] is None}
    children = [entry for entry in lineages if entry["parent"] is not None]
    assert first_round and children
    parents = {Path(entry["parent"]).name for entry in children}
    assert len(parents) == 1
    parent = json.loads((folder / parents.pop() / "lineage.json").read_text())
    round_one = record["meta_steps"][:2]
    best = max((s for s in round_one if s["valid"]), key=lambda s: s["validation_success"])
    assert parent["meta_reward"] == best["canonical"]
    # the chained policy (the paper's DERL-pop number) is that checkpoint scored as it is,
    # beside the fresh policy's test_success
    chained = record["chained_test"]
    assert chained["n_test"] == 4 and chained["cost"]["inner_steps"] == 0
    assert 0.0 <= record["test_success"] <= 1.0
    best_canonical = record["best"]["canonical"]
    candidates = [folder / e["id"] for e in lineages if e["meta_reward"] == best_canonical]
    assert candidates
    import gymnasium

    env = gymnasium.make(ENV, preset="smoke", **SMALL)
    try:
        env.reset(seed=0)
        base = env.unwrapped
        scores = {base.evaluate_checkpoint_test(str(c))["test_success"] for c in candidates}
        assert chained["test_success"] in scores
        with pytest.raises(FileNotFoundError, match="keep_checkpoints"):
            env.unwrapped.evaluate_checkpoint_test(str(tmp_path / "no-such-checkpoint"))
    finally:
        env.close()


def test_only_warm_starting_agents_get_a_chained_test(tmp_path: Path) -> None:
    result = run(
        ENV,
        "heuristic",
        budget=1,
        seed=0,
        preset="smoke",
        proposals_per_step=1,
        out_dir=tmp_path,
        env_kwargs=SMALL,
        progress=False,
    )
    record = load_result(result.path)
    assert record["test_success"] is not None and "chained_test" not in record
