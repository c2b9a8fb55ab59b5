"""Canonical keys: the invariances they claim are proved by training both forms.

The training tests run the real inner trainers on CartPole (no data files) with a tiny budget
(2 GRPO steps of 2 x 4 episodes of at most 40 actions) and compare the trained parameters: a
claimed invariance must give bit-identical parameters, a pair the keys keep apart must give
different ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derl_bench.fidelity.keys import (
    Invariance,
    effective_key,
    key_bank,
    key_scheme,
    trainer_invariance,
)
from derl_bench.meta_reward import parse
from derl_bench.primitives import get_primitive_set

SHIFT = Invariance(shift=True, reason="test")
RAW = Invariance(shift=False, reason="test")
AVERAGE = "(g1 + g2 + g3 + g4) / 4"


def _key(text: str, set_name: str = "episode", invariance: Invariance = SHIFT) -> str:
    primitives = get_primitive_set(set_name)
    return effective_key(parse(text, primitives.names), key_scheme(primitives, invariance))


# -- keys without training -----------------------------------------------------------------------


@pytest.mark.parametrize("set_name", ["math", "episode"])
def test_translations_share_a_key_and_other_maps_do_not(set_name: str) -> None:
    base = _key("g1 + 0.5 * g2", set_name)
    for same in ("g1 + 0.5 * g2 + 3", "0.5 * g2 - 7 + g1", "(2 * g1 + g2) / 2 + 1e-3"):
        assert _key(same, set_name) == base, same
    for other in (
        "2 * g1 + g2",  # scale: not invariant at the trainers' std epsilon (tests below)
        "-(g1 + 0.5 * g2)",
        "g1 + 0.6 * g2",
        "(g1 + 0.5 * g2) * (g1 + 0.5 * g2)",
    ):
        assert _key(other, set_name) != base, other


def test_raw_scheme_keeps_scale_and_offset() -> None:
    base = _key("g1 + g2", invariance=RAW)
    assert _key("g2 + g1", invariance=RAW) == base  # same function, other text
    assert _key("2 * (g1 + g2)", invariance=RAW) != base
    assert _key("g1 + g2 + 1", invariance=RAW) != base


def test_binary_sets_key_on_the_value_table() -> None:
    # Math primitives take only ε and 1 + ε: the 2^4 corners are everything training sees.
    scheme = key_scheme(get_primitive_set("math"), SHIFT)
    assert scheme.name == "tt4-shift"
    assert key_bank(scheme.binary).shape == (16, 4)
    # g1 * g1 takes two values, 1 + 2ε apart: a translation of g1 (range equal to 4 digits)...
    assert _key("g1 * g1", "math") == _key("g1", "math")
    # ...but not where g1 is multiplied by a continuous primitive.
    assert _key("g2 * g2", "episode") != _key("g2", "episode")
    assert _key("g1 * g1", "episode") == _key("g1", "episode")  # episode g1 is binary


def test_distinct_functions_get_distinct_keys() -> None:
    texts = [
        "g1",
        "g2",
        "g1 + g2",
        "g1 - g2",
        "g1 * g2",
        "g4 / g2",
        "g2 / g4",
        AVERAGE,
        "g2 + g3 + g4",
        "2 * g1 + 0.5 * g2 + 0.25 * g3",
        "-g1",
        "g1 * g4",
    ]
    keys = [_key(t) for t in texts]
    assert len(set(keys)) == len(texts)


# -- training both forms -------------------------------------------------------------------------

TINY = {
    "max_steps": 2,
    "tasks_per_step": 2,
    "group_size": 4,
    "max_episode_steps": 40,
    "n_val": 1,
    "n_test": 1,
}


def _trained(tmp_path: Path, text: str, overrides: dict, inner: str = "grpo") -> dict:
    """Parameters of a policy trained under ``text`` (seed 0), by name."""
    import torch

    from derl_bench.inner.threads import pinned_torch_threads
    from derl_bench.meta_env.domains import build_domain

    folder = tmp_path / f"ckpt-{abs(hash((text, inner, str(overrides))))}"
    domain = build_domain(
        "cartpole",
        preset="smoke",
        inner_overrides={**TINY, **overrides},
        keep_checkpoints=str(folder),
        inner=inner,
    )
    with pinned_torch_threads(1):  # as the env trains; also keeps the test cheap
        result = domain.trainer.train(parse(text, domain.primitive_set.names), seed=0)
    files = list(Path(result.checkpoint).glob("*.pt*"))
    state = torch.load(files[0], weights_only=False)
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        state = _flatten(state)
    return {k: v.detach().numpy().astype(np.float64) for k, v in state.items()}


def _flatten(obj: object, prefix: str = "") -> dict:
    out: dict = {}
    if hasattr(obj, "shape"):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
    return out


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def _moved(a: dict, init: dict) -> float:
    return max(float(np.max(np.abs(a[k] - init[k]))) for k in a)


@pytest.mark.parametrize("credit", ["episode", "reward_to_go"])
def test_episode_grpo_is_invariant_to_translations(tmp_path: Path, credit: str) -> None:
    overrides = {"credit": credit}
    base = _trained(tmp_path, AVERAGE, overrides)
    # Training moved the parameters (else the equality below would prove nothing)...
    assert _max_diff(_trained(tmp_path, f"-({AVERAGE})", overrides), base) > 1e-3
    for form in (f"{AVERAGE} + 2", f"{AVERAGE} - 1"):
        # ...and a translated reward trains bit-identical parameters.
        assert _max_diff(_trained(tmp_path, form, overrides), base) == 0.0, form
        assert _key(form) == _key(AVERAGE)


def test_episode_grpo_scale_invariance_holds_only_without_the_std_epsilon(
    tmp_path: Path,
) -> None:
    form = f"3 * ({AVERAGE}) + 2"
    # Without the epsilon, group normalisation removes the scale: bit-identical parameters.
    no_eps = {"advantage_eps": 1e-12}
    assert _max_diff(_trained(tmp_path, form, no_eps), _trained(tmp_path, AVERAGE, no_eps)) == 0
    # With the presets' epsilon (1e-4) a small group std lets the scale through, so keys keep it.
    assert _max_diff(_trained(tmp_path, form, {}), _trained(tmp_path, AVERAGE, {})) > 1e-4
    assert _key(form) != _key(AVERAGE)


def test_episode_grpo_is_not_invariant_to_a_nonlinear_increasing_map(tmp_path: Path) -> None:
    linear = _trained(tmp_path, "g2 + g3 + g4", {})
    squared = _trained(tmp_path, "(g2 + g3 + g4) * (g2 + g3 + g4)", {})
    assert _max_diff(linear, squared) > 1e-4
    assert _key("g2 + g3 + g4") != _key("(g2 + g3 + g4) * (g2 + g3 + g4)")


def test_trainer_invariance_names_each_trainer() -> None:
    from derl_bench.meta_env.domains import build_domain

    grpo = build_domain("cartpole", preset="smoke", inner_overrides=TINY).trainer
    es_rl = build_domain("cartpole", preset="smoke", inner_overrides=TINY, inner="es_rl").trainer
    assert trainer_invariance(grpo).shift
    assert not trainer_invariance(es_rl).shift
    assert not trainer_invariance(object()).shift


def test_es_rl_is_not_invariant_to_translations_so_its_keys_keep_them(tmp_path: Path) -> None:
    overrides = {"max_steps": 1}
    base = _trained(tmp_path, "g1 + g2", overrides, inner="es_rl")
    shifted = _trained(tmp_path, "g1 + g2 + 1", overrides, inner="es_rl")
    assert _max_diff(base, shifted) > 1e-4
    assert _key("g1 + g2", invariance=RAW) != _key("g1 + g2 + 1", invariance=RAW)


@pytest.mark.slow
def test_trl_grpo_is_not_exactly_invariant_to_translations(tmp_path: Path) -> None:
    """TRL's GRPOTrainer (math domains) on a random tiny LM; the primitives are TEST FAKES
    (binary "letter present" checks), so that a random LM's rewards vary within a group.

    TRL rounds rewards to float32 before normalising: R + 2 changes the advantages at ~1e-7,
    enough to flip a sampled token and end elsewhere; so math keys are the raw value table."""
    import sys

    from derl_bench.envs.arith import arith_record
    from derl_bench.inner.lm_grpo_config import LMGRPOConfig
    from derl_bench.inner.lm_grpo_trainer import LMGRPOTrainer
    from derl_bench.inner.threads import pinned_torch_threads
    from derl_bench.primitives import BinaryPrimitive, PrimitiveSet

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_text_lm import tiny_text_lm

    records = [arith_record(s) for s in range(6)]
    model, tokenizer = tiny_text_lm(
        [r.question for r in records] + ["a e i o 1 2 3"], max_position_embeddings=256
    )
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")

    def letter(c: str) -> BinaryPrimitive:
        return BinaryPrimitive(
            name=f"g{'aeio'.index(c) + 1}",
            description=c,
            source="test fake",
            test=lambda t, _: c in t,
        )

    primitives = PrimitiveSet(name="test-letters", primitives=tuple(letter(c) for c in "aeio"))
    config = LMGRPOConfig(
        model=str(tmp_path / "lm"),
        prompt_style="plain",
        max_steps=2,
        tasks_per_step=2,
        group_size=4,
        max_completion_length=8,
        learning_rate=5e-2,
        beta=0.0,
        temperature=1.0,
        n_val=1,
        n_test=1,
    )
    trainer = LMGRPOTrainer(
        d_in=records[:4],
        val=records[4:5],
        train_pool=records[:5],
        test=records[5:],
        primitive_set=primitives,
        config=config,
    )

    def trained(text: str) -> dict:
        with pinned_torch_threads(1):
            policy, _, _, _ = trainer.train_policy(
                parse(text, primitives.names), records[:4], seed=0, init=None
            )
        return {n: p.detach().numpy().astype(np.float64) for n, p in policy.named_parameters()}

    base = trained("g1 + g2 + g3")
    assert _max_diff(trained("-(g1 + g2 + g3)"), base) > 1e-3  # training moved them
    assert _max_diff(trained("g1 + g2 + g3 + 2"), base) > 1e-4
    assert not trainer_invariance(trainer).shift
    scheme = key_scheme(primitives, trainer_invariance(trainer))
    assert scheme.name == "tt4-raw"
    keys = {
        effective_key(parse(t, primitives.names), scheme)
        for t in ("g1 + g2 + g3", "g1 + g2 + g3 + 2")
    }
    assert len(keys) == 2
