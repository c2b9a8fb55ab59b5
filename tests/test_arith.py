"""DERL-Arith: the generator, its splits, the primitives on its solutions, the tiny policy."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
from golden_cases import golden_path

from derl_bench.envs.arith import (
    SEED_RANGES,
    TEMPLATES,
    WARMUP_SEED_START,
    arith_record,
    arith_task_splits,
    generate_problem,
    solution_text,
)
from derl_bench.inner.base import PRESET_NAMES
from derl_bench.inner.lm_presets import lm_preset
from derl_bench.meta_env.math_domains import build_arith
from derl_bench.primitives import get_primitive_set
from derl_bench.primitives.base import EPSILON

PRIMITIVES = get_primitive_set("math")
ON, OFF = 1.0 + EPSILON, EPSILON

GENERATOR_DIGEST = "d652d959c865c9e5"
"""sha256 of the first 200 train problems; a change means ARITH_GENERATOR_VERSION must be bumped
(and DERL-Arith's version with it)."""


def _digest(n: int = 200) -> str:
    text = "\n".join(f"{r.question}|{r.answer}|{r.solution}" for r in map(arith_record, range(n)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_same_seed_gives_the_same_problem_and_the_generator_is_pinned() -> None:
    assert [generate_problem(s) for s in range(50)] == [generate_problem(s) for s in range(50)]
    assert _digest() == GENERATOR_DIGEST, "generator changed: bump ARITH_GENERATOR_VERSION"


def test_problems_cover_every_template_and_step_count_with_small_integer_answers() -> None:
    problems = [generate_problem(s) for s in range(2000)]
    assert {p.template for p in problems} == set(TEMPLATES)
    assert {len(p.steps) for p in problems} == {1, 2, 3}
    assert len({p.question for p in problems}) > 1900
    for p in problems:
        assert p.answer == p.steps[-1].value and 0 <= p.answer <= 100
        assert all(0 <= s.value <= 100 for s in p.steps)


def test_splits_are_disjoint_seed_ranges() -> None:
    ranges = sorted(SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    splits = arith_task_splits(300, 100, 100)
    seeds = {
        name: {int(r.uid.rsplit("/", 1)[1]) for r in records}
        for name, records in (("train", splits.d_in), ("val", splits.val), ("test", splits.test))
    }
    for name, values in seeds.items():
        lo, hi = SEED_RANGES[name]
        assert all(lo <= s < hi for s in values)
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"])
    assert not seeds["val"] & seeds["test"]
    assert max(seeds["train"]) < WARMUP_SEED_START  # the warm-up problems are not in D_in
    assert splits.train_pool == splits.d_in + splits.val
    with pytest.raises(ValueError, match="seed range"):
        arith_task_splits(10, 1_000_001, 10)


def test_reference_solutions_get_every_primitive_on_their_own_record() -> None:
    records = [arith_record(s) for s in range(300)]
    values = PRIMITIVES.compute([r.solution for r in records], records)
    assert (values == ON).all(), "g1..g4 must all be 1 + eps on the reference solution"


def test_warm_up_formats_move_exactly_the_format_primitives() -> None:
    records = [arith_record(s) for s in range(100)]
    problems = [generate_problem(s) for s in range(100)]
    boxed = [solution_text(p, step_markers=False, final="boxed") for p in problems]
    hashes = [solution_text(p, step_markers=True, final="hashes") for p in problems]
    v_boxed = PRIMITIVES.compute(boxed, records)
    v_hashes = PRIMITIVES.compute(hashes, records)
    g1, g2, g3 = 0, 1, 2
    assert (v_boxed[:, g1] == ON).all() and (v_hashes[:, g1] == ON).all()
    assert (v_boxed[:, g2] == ON).all() and (v_hashes[:, g2] == OFF).all()
    assert (v_boxed[:, g3] == OFF).all()
    wrong = [
        s.replace(f"#### {r.answer}", f"#### {int(r.answer) + 1}")
        for s, r in zip(hashes, records, strict=True)
    ]
    assert (PRIMITIVES.compute(wrong, records)[:, g1] == OFF).all()


def test_presets_are_valid_and_unknown_ones_are_rejected() -> None:
    for name in PRESET_NAMES:
        assert lm_preset("arith", name).max_steps >= 1
    assert lm_preset("arith", "smoke").model == "tiny-arith"
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        lm_preset("arith", "fast")


def test_arith_as_users_quote_it_is_v2_and_each_version_changes_only_its_fields() -> None:
    import gymnasium

    import derl_bench  # noqa: F401  (registers the ids)

    latest = gymnasium.make("DERL-Arith", preset="cpu")
    v1 = gymnasium.make("DERL-Arith-v1", preset="cpu")
    v0 = gymnasium.make("DERL-Arith-v0", preset="cpu")
    try:
        assert latest.spec.id == "DERL-Arith-v2"
        new, mid, old = (e.unwrapped.trainer.config for e in (latest, v1, v0))
        # v2: a larger inner learning rate and the mean of three trainings per meta-step.
        assert (new.learning_rate, mid.learning_rate) == (3e-4, 1e-4)
        assert (new.restarts, mid.restarts) == (3, 1)
        assert new.with_overrides(learning_rate=1e-4, restarts=1) == mid
        # v1: the direct-answer warm-up and 512 validation problems.
        assert (mid.model, old.model) == ("tiny-arith-direct", "tiny-arith")
        assert (mid.n_val, old.n_val) == (512, 128)
        assert mid.with_overrides(model="tiny-arith", n_val=128) == old
    finally:
        for env in (latest, v1, v0):
            env.close()
    with pytest.raises(ValueError, match="known: \\[0, 1, 2\\]"):
        lm_preset("arith", "cpu", version=3)
    with pytest.raises(ValueError, match="only env version 0"):
        lm_preset("gsm8k", "cpu", version=1)


def test_direct_answer_warm_up_drops_the_working_from_about_half_the_solutions() -> None:
    from derl_bench.inner.tiny_lm import ARITH_DIRECT_FRACTION, ArithTinyLMConfig, arith_sft_pairs

    config = ArithTinyLMConfig(sft_examples=2000, direct_fraction=ARITH_DIRECT_FRACTION)
    pairs = arith_sft_pairs(config)
    # Every problem has at least one step, so a worked solution has an ``a op b = c`` line.
    direct = [c for _, c in pairs if " = " not in c]
    assert 0.45 < len(direct) / len(pairs) < 0.55
    # Every target still ends with a final answer the outcome primitive reads.
    assert all("####" in c or "\\boxed{" in c for _, c in pairs)
    # v0's warm-up (direct_fraction 0) writes the working everywhere.
    v0 = arith_sft_pairs(ArithTinyLMConfig(sft_examples=200))
    assert all(" = " in c for _, c in v0)


def test_builder_is_cheap_and_sizes_the_splits_by_the_preset() -> None:
    heavy_before = "torch" in sys.modules
    domain = build_arith(preset="smoke", inner_overrides={"n_val": 16})
    assert domain.name == "arith" and domain.n_val == 16 and domain.n_test == 32
    assert domain.primitive_set.names == ("g1", "g2", "g3", "g4")
    assert len(domain.trainer.d_in) == 256
    assert heavy_before or "torch" not in sys.modules  # the policy is built lazily
    with pytest.raises(ValueError, match="generated locally"):
        build_arith(preset="smoke", data_source="hf")


@pytest.mark.slow
def test_warmed_up_policy_solves_some_but_not_all_validation_problems() -> None:
    domain = build_arith(preset="cpu")
    initial = domain.trainer.evaluate_initial()
    assert 0.0 < initial.success < 1.0
    # The mixed warm-up format leaves room for the format primitive to move both ways.
    assert 0.05 < initial.primitive_means["g2"] < 0.95


def _arith_env(monkeypatch: pytest.MonkeyPatch, **kwargs: object):  # noqa: ANN202
    """A MetaRewardEnv over the arith domain, whether or not the registry has it yet."""
    from derl_bench.meta_env import domains
    from derl_bench.meta_env.meta_reward_env import MetaRewardEnv

    if "arith" not in domains.DOMAINS:
        monkeypatch.setitem(domains.DOMAINS, "arith", build_arith)
    return MetaRewardEnv("arith", **kwargs)  # type: ignore[arg-type]


def test_check_env_passes_on_the_arith_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    from gymnasium.utils.env_checker import check_env

    env = _arith_env(monkeypatch, preset="smoke")
    check_env(env, skip_render_check=True)
    assert env.instruction.startswith("Generate a mathematical formula")


@pytest.mark.slow
def test_smoke_meta_step_is_in_unit_interval_and_reproducible_by_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = []
    for _ in range(2):
        env = _arith_env(monkeypatch, preset="smoke", inner_overrides={"max_steps": 2})
        env.reset(seed=5)
        _, reward, terminated, _, info = env.step("g1 + g2")
        info["cost"].pop("wall_seconds")
        info["cost"].pop("simulated_seconds")  # live: the wall seconds
        results.append((reward, info))
        assert not terminated
    assert results[0] == results[1]
    reward, info = results[0]
    assert 0.0 <= reward <= 1.0 and info["validation_success"] == reward
    assert info["cost"]["inner_steps"] == 2 and len(info["training_curve"]) == 2


@pytest.mark.slow
def test_bf16_false_trains_in_float32_and_changes_the_trained_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The field reaches TRL: the golden smoke step of DERL-Arith-v2 (bfloat16 autocast, TRL's
    # default; tests/test_golden.py re-runs it) trained in float32 ends elsewhere (validation
    # 0.1875 with autocast, 0.25 without, 2026-12-07).
    golden = json.loads(golden_path("DERL-Arith-v2").read_text())
    env = _arith_env(monkeypatch, preset="smoke", version=2, inner_overrides={"bf16": False})
    assert env.trainer.config.bf16 is False
    env.reset(seed=golden["seed"])
    _, reward, _, _, info = env.step(golden["meta_reward"])
    assert (reward, info["primitive_means"]) != (
        golden["validation_success"],
        golden["primitive_means"],
    )


@pytest.mark.slow
def test_sampled_validation_is_a_reproducible_mean_over_k_samples_per_problem() -> None:
    import torch

    domain = build_arith(preset="smoke", inner_overrides={"n_val": 16, "validation_samples": 4})
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = domain.trainer.evaluate_initial()
    assert torch.rand(1) == expected_next  # the caller's random state is untouched
    again = domain.trainer.evaluate_initial()
    assert first == again and first.n == 16
    assert first.success * 64 == pytest.approx(round(first.success * 64))
    greedy = build_arith(preset="smoke", inner_overrides={"n_val": 16}).trainer.evaluate_initial()
    assert greedy.n == 16 and greedy.success * 16 == pytest.approx(round(greedy.success * 16))
