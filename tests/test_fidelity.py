"""The table and surrogate fidelities, on the real shipped DERL-CartPole-v0 ``smoke`` table.

The table under ``derl_bench/fidelity/tables/DERL-CartPole-v0-smoke`` was built from live
meta-steps by ``derl-bench fidelity build`` (command in the README); these tests read it, re-run
its cheapest entries live (integrity), and build tiny tables under ``tmp_path``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd
import pytest

import derl_bench  # noqa: F401  (registers the ids)
from derl_bench.fidelity.table import FidelityTable, TableKeyMissing, TableMissing, table_dir

ENV_ID = "DERL-CartPole-v0"
TINY = {"max_steps": 1, "tasks_per_step": 2, "group_size": 2, "max_episode_steps": 20, "n_val": 1}


@pytest.fixture(scope="module")
def table() -> FidelityTable:
    return FidelityTable.load(ENV_ID, "smoke")


def _make(fidelity: str, **kwargs):  # noqa: ANN202
    return gymnasium.make(ENV_ID, preset="smoke", fidelity=fidelity, budget=8, **kwargs)


def _record_without_test(full: FidelityTable, keys: list[str], shard: int) -> FidelityTable:
    """Re-record ``keys`` of a table copy without test success, as a signal check or a
    ``--no-test`` build records them (a later shard's entry wins); return the table."""
    from derl_bench.fidelity import answers

    rows = full.frame[full.frame["key"].isin(keys)].copy()
    rows[["test_success", "n_test", "test_wall_seconds"]] = np.nan
    rows.to_parquet(full.folder / f"entries-{shard:05d}.parquet", index=False)
    answers._load_table.cache_clear()
    return FidelityTable(full.folder)


def _smoke_table_copy(root: Path) -> Path:
    """Copy the shipped smoke table under ``root`` (a table root); return its folder."""
    import shutil

    folder = table_dir(ENV_ID, "smoke", root)
    shutil.copytree(table_dir(ENV_ID, "smoke"), folder)
    return folder


def test_the_shipped_table_has_real_entries_with_provenance(table: FidelityTable) -> None:
    assert len(table.keys) >= 20 and len(table) >= 40
    frame = table.frame
    assert set(frame["seed"]) == {0, 1}
    assert frame["lock_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert frame["validation_success"].between(0, 1).all()
    assert frame["test_success"].between(0, 1).all()
    assert (frame["wall_seconds"] > 0).all()
    assert table.probe_bank().shape[1] == 4


def test_table_step_answers_the_recorded_entry_of_the_seed(table: FidelityTable) -> None:
    key = table.keys[0]
    entry = table.entries(key)[1]  # seed 1
    env = _make("table")
    assert env.spec.kwargs["fidelity"] == "table"
    env.reset(seed=entry.seed)
    _, reward, _, _, info = env.step(entry.canonical)
    assert info["effective_key"] == key and info["fidelity"] == "table"
    assert reward == entry.validation_success
    assert info["primitive_means"] == entry.primitive_means
    assert info["training_curve"] == entry.training_curve
    assert info["answer"] == {
        "source": "table",
        "seed": entry.seed,
        "canonical": entry.canonical,
        "table_sha256": table.sha256,
    }
    assert info["cost"]["simulated_seconds"] == entry.cost["wall_seconds"]
    assert info["cost"]["inner_steps"] == entry.cost["inner_steps"]
    # A translation of the same meta-reward has the same key: answered from the same entry.
    env.reset(seed=entry.seed)
    _, again, _, _, info2 = env.step(f"{entry.canonical} + 3")
    assert again == reward and info2["effective_key"] == key
    # The info a user gets is theirs: editing it changes neither the env's cache nor the table.
    for edited in (info, info2):
        edited["training_curve"][0]["loss"] = 99.0
        edited["primitive_means"]["g1"] = 99.0
        edited["cost"]["inner_steps"] = -1
    env.reset(seed=entry.seed)
    info3 = env.step(entry.canonical)[4]  # the env's cache answers
    assert info3["cache_hit"] is True
    assert info3["training_curve"] == table.entries(key)[1].training_curve == entry.training_curve
    assert info3["primitive_means"] == entry.primitive_means
    fresh = _make("table")
    fresh.reset(seed=entry.seed)
    info4 = fresh.step(entry.canonical)[4]  # a new env asks the table
    assert info4["training_curve"] == entry.training_curve
    assert info4["cost"]["inner_steps"] == entry.cost["inner_steps"]


def test_unrecorded_seed_uses_the_seed_mod_n_rule(table: FidelityTable) -> None:
    key = table.keys[0]
    seeds = table.seeds(key)
    env = _make("table")
    env.reset(seed=7)
    _, _, _, _, info = env.step(table.entries(key)[0].canonical)
    assert info["answer"]["seed"] == seeds[7 % len(seeds)]


def test_missing_key_and_missing_table_errors_name_the_fix(tmp_path: Path) -> None:
    env = _make("table")
    env.reset(seed=0)
    with pytest.raises(TableKeyMissing) as missing:
        env.step("g1 * g2 * g3 + 0.123 * g4")
    text = str(missing.value)
    assert "g1 * g2 * g3 + 0.123 * g4" in text and "derl-bench fidelity build" in text
    # the command adds the key at the table's own seeds (the cpu table holds seeds 0, 1, 2)
    cpu = gymnasium.make(ENV_ID, preset="cpu", fidelity="table", budget=2)
    cpu.reset(seed=0)
    with pytest.raises(TableKeyMissing, match="--preset cpu --seeds 0,1,2 --sample '' --meta-"):
        cpu.step("g1 * g2 * g3 + 0.123 * g4")
    with pytest.raises(TableMissing, match="derl-bench fidelity build --env DERL-CartPole-v0"):
        gymnasium.make(ENV_ID, preset="cpu", fidelity="table", table_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown fidelity 'tabel'"):
        gymnasium.make(ENV_ID, preset="smoke", fidelity="tabel")
    with pytest.raises(ValueError, match="was built with"):
        _make("table", inner_overrides={"max_steps": 3})


def test_every_fidelity_has_the_same_info_keys_and_cost_fields(table: FidelityTable) -> None:
    live = gymnasium.make(ENV_ID, preset="smoke", budget=2, inner_overrides=TINY)
    live.reset(seed=0)
    _, _, _, _, live_info = live.step("g1 + g2")
    canonical = table.entries(table.keys[0])[0].canonical
    for fidelity in ("table", "surrogate"):
        env = _make(fidelity)
        env.reset(seed=0)
        obs, _, _, _, info = env.step(canonical)
        assert set(info) == set(live_info), fidelity
        assert set(info["cost"]) == set(live_info["cost"]), fidelity
        assert env.observation_space.contains(obs)
        test = env.unwrapped.evaluate_test(canonical)
        assert set(test) == {"test_success", "n_test", "cost", "primitive_means"}
        assert set(test["cost"]) == set(live_info["cost"])
        assert 0.0 <= test["test_success"] <= 1.0


def test_surrogate_is_deterministic_and_noisy_draws_follow_the_seed() -> None:
    env = _make("surrogate")
    env.reset(seed=0)
    first = env.step("g1 + 0.3 * g2 - 0.2 * g4")[1]
    env.reset(seed=0)
    assert env.step("g1 + 0.3 * g2 - 0.2 * g4")[1] == first
    assert 0.0 <= first <= 1.0
    noisy = _make("surrogate", noisy=True)
    draws = []
    for seed in range(6):
        noisy.reset(seed=seed)
        _, reward, _, _, info = noisy.step("g1 + 0.3 * g2 - 0.2 * g4")
        assert 0.0 <= reward <= 1.0 and info["answer"]["noisy"] is True
        draws.append(reward)
    noisy.reset(seed=0)
    assert noisy.step("g1 + 0.3 * g2 - 0.2 * g4")[1] == draws[0]
    # Test success: the predicted mean at every seed, or (noisy) a draw from the predicted test
    # spread, deterministic in key and seed and not the validation draw.
    text = "g1 + 0.3 * g2 - 0.2 * g4"
    mean = env.unwrapped.evaluate_test(text)["test_success"]
    tests = []
    for seed in range(6):
        env.reset(seed=seed)
        assert env.unwrapped.evaluate_test(text)["test_success"] == mean
        noisy.reset(seed=seed)
        tests.append(noisy.unwrapped.evaluate_test(text)["test_success"])
    assert all(0.0 <= t <= 1.0 for t in tests) and len(set(tests)) > 1 and tests != draws
    noisy.reset(seed=0)
    assert noisy.unwrapped.evaluate_test(text)["test_success"] == tests[0]


def test_compare_noisy_answers_seed_draws_in_their_own_rows(tmp_path: Path) -> None:
    """`--noisy` reaches the env (each answer is the seed's draw, as ``noisy=True`` gives), its
    runs get their own "surrogate (noisy)" rows, packing them for a leaderboard is refused, and
    `--noisy` at another fidelity is a usage error."""
    from typer.testing import CliRunner

    from derl_bench.cli import app
    from derl_bench.leaderboards.pack import pack_results
    from derl_bench.results import load_result

    out = tmp_path / "runs"
    args = ["compare", "--env", ENV_ID, "--preset", "smoke", "--fidelity", "surrogate"]
    args += ["--agents", "heuristic", "--budget", "3", "--seeds", "0,1", "--out", str(out)]
    noisy_out = tmp_path / "noisy"
    for flags, folder in (([], out), (["--noisy"], noisy_out)):
        done = CliRunner().invoke(app, [*args[:-1], str(folder), *flags])
        assert done.exit_code == 0, done.output
    table_md = (noisy_out / ENV_ID / "table.md").read_text()
    assert "| surrogate (noisy) |" in table_md
    assert "| surrogate |" in (out / ENV_ID / "table.md").read_text()
    differs = False
    for seed in (0, 1):
        mean_run = json.loads((out / ENV_ID / "heuristic" / f"seed{seed}.json").read_text())
        noisy_run = json.loads((noisy_out / ENV_ID / "heuristic" / f"seed{seed}.json").read_text())
        assert noisy_run["env_spec"]["kwargs"]["noisy"] is True
        env = _make("surrogate", noisy=True)
        env.reset(seed=seed)
        steps = zip(mean_run["meta_steps"], noisy_run["meta_steps"], strict=True)
        for mean_step, noisy_step in steps:
            assert mean_step["meta_reward"] == noisy_step["meta_reward"]
            assert noisy_step["reward"] == env.step(noisy_step["meta_reward"])[1]
            differs |= noisy_step["reward"] != mean_step["reward"]
    assert differs, "the noisy surrogate answered exactly the predicted means"
    results = [load_result(noisy_out / ENV_ID / "heuristic" / f"seed{s}.json") for s in (0, 1)]
    with pytest.raises(ValueError, match="noisy surrogate"):
        pack_results(results, method="m", authors=["a"], code_url="derl_bench/x.py")
    wrong = CliRunner().invoke(app, ["run", "--fidelity", "table", "--noisy", "--out", str(out)])
    assert wrong.exit_code == 2 and "--fidelity surrogate" in wrong.output, wrong.output
    with pytest.raises(ValueError, match="fidelity='surrogate'"):
        _make("table", noisy=True)


def test_surrogate_without_a_report_warns_that_its_error_is_unpublished(
    table: FidelityTable, tmp_path: Path
) -> None:
    import shutil
    import warnings

    # The shipped smoke table as a user's own build before `fidelity report`: no recorded choice.
    copy = tmp_path / table.folder.name
    shutil.copytree(table.folder, copy)
    meta = json.loads((copy / "meta.json").read_text())
    del meta["surrogate_model"]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="no published held-out error"):
        gymnasium.make(
            ENV_ID, preset="smoke", fidelity="surrogate", budget=8, table_dir=str(tmp_path)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _make("surrogate")  # the shipped table's report is published (docs/fidelity)


def test_table_fidelity_loads_no_torch() -> None:
    code = (
        "import sys, gymnasium, derl_bench\n"
        "env = gymnasium.make('DERL-CartPole-v0', preset='smoke', fidelity='table')\n"
        "env.reset(seed=0); env.step('g1 + g2')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("env_id", "preset", "n"),
    [(ENV_ID, "smoke", 2), (ENV_ID, "cpu", 2), ("DERL-Pendulum-v0", "cpu", 1)],
)
def test_integrity_cheapest_entries_rerun_live_equal_the_table(
    env_id: str, preset: str, n: int
) -> None:
    """The issue's integrity check: the cheapest entries of the shipped tables re-run live under
    the lock and equal the stored values exactly (every number of the training curve, the
    primitive means, validation success): two of each CartPole-v0 table (the cpu table's
    cheapest meta-steps take about a second), one of Pendulum's cpu table (about 35 s)."""
    from derl_bench.fidelity_report import integrity_check

    rows = integrity_check(env_id, preset, n=n)
    assert len(rows) == n
    for row in rows:
        assert row["equal"], row


def test_build_is_resumable_and_records_provenance(tmp_path: Path) -> None:
    from derl_bench.fidelity_build import build_table, record_build_status

    kwargs = dict(
        sample="",
        meta_rewards=["g1 + g2", "g2 + g1 + 1", "g4"],  # the second is a translation of the first
        out=tmp_path,
        with_test=False,
        env_kwargs={"inner_overrides": TINY},
        say=lambda _: None,
    )
    first = build_table(ENV_ID, "smoke", [0], **kwargs)
    assert (first.trained, first.skipped, first.keys) == (2, 0, 2)
    again = build_table(ENV_ID, "smoke", [0, 1], **kwargs)
    assert (again.trained, again.skipped, again.entries) == (2, 2, 4)
    meta = json.loads((first.folder / "meta.json").read_text())
    assert meta["env_kwargs"] == {"inner_overrides": TINY}
    assert meta["key_scheme"]["name"] == "pb4-shift"
    built = FidelityTable(first.folder)
    assert built.frame["git_hash"].notna().all() and built.frame["created_at"].notna().all()
    env = gymnasium.make(
        ENV_ID, preset="smoke", fidelity="table", table_dir=str(tmp_path), inner_overrides=TINY
    )
    env.reset(seed=1)
    _, reward, _, _, info = env.step("g4")
    assert reward == built.lookup(info["effective_key"], 1).validation_success
    assert info["answer"]["seed"] == 1
    # Entries without test success (as a signal check or --no-test records) are trained again
    # by a build that measures test success; the later entry wins.
    messages: list[str] = []
    tested = build_table(
        ENV_ID,
        "smoke",
        [0],
        **{**kwargs, "meta_rewards": ["g4"], "with_test": True, "say": messages.append},
    )
    assert (tested.trained, tested.skipped) == (1, 0)
    # the user is told why held entries are trained again (the 4 entries of the --no-test build)
    assert any(m.startswith("4 (key, seed) entries held without test success") for m in messages)
    # ... what it will train, and after each shard how much is left
    assert "sampled families: 1 (key, seed) entries to train, 0 already in the table" in messages
    assert messages[-1].startswith("1 trained, 0 already in the table, 0 failed (")
    assert "0 left in this phase, about 0 s at this pace" in messages[-1]
    (entry,) = [
        e for e in FidelityTable(first.folder).entries(info["effective_key"]) if e.seed == 0
    ]
    assert entry.test_success is not None
    # builds of --meta-rewards alone leave no build status; a designed sample records its plan
    # and, once every planned entry is trained, that it is complete
    assert "build" not in json.loads((first.folder / "meta.json").read_text())
    build_table(ENV_ID, "smoke", [0], **{**kwargs, "sample": "random:1", "meta_rewards": []})
    status = json.loads((first.folder / "meta.json").read_text())["build"]
    assert status["complete"] is True and status["sample"] == "random:1"
    assert status["command"].endswith("--seeds 0 --sample random:1")
    # a build in phases: a phase of the recorded plan (fewer seeds, a prefix of a family, no
    # evolution) keeps the plan as the record and does not mark it complete when it ends
    plan = "derl-bench fidelity build ... --seeds 0,1 --sample random:2,evolution:1"
    record_build_status(
        first.folder, command=plan, sample="random:2,evolution:1", seeds=[0, 1], complete=False
    )
    meta_bytes = (first.folder / "meta.json").read_bytes()
    messages.clear()
    phase = build_table(
        ENV_ID,
        "smoke",
        [0],
        **{**kwargs, "sample": "random:1", "meta_rewards": [], "say": messages.append},
    )
    assert phase.trained == 0 and (first.folder / "meta.json").read_bytes() == meta_bytes
    assert f"a phase of the table's recorded plan ({plan})" in messages[0]
    # another --sample-seed draws other random trees: another plan, recorded with its seed (the
    # command resumes it), and removed from the record when the next plan uses the default
    again = {**kwargs, "sample": "random:1", "meta_rewards": []}
    build_table(ENV_ID, "smoke", [0], **again, sample_seed=5)
    status = json.loads((first.folder / "meta.json").read_text())["build"]
    assert status["command"].endswith("--sample random:1 --sample-seed 5")
    assert status["sample_seed"] == 5 and status["complete"] is True
    build_table(ENV_ID, "smoke", [0], **again)
    status = json.loads((first.folder / "meta.json").read_text())["build"]
    assert "sample_seed" not in status and status["command"].endswith("--sample random:1")


def test_a_build_stopped_early_holds_keys_of_every_family(tmp_path: Path) -> None:
    """Long builds span many stops: keys take turns by family, seeds of a key stay together;
    ``dry_run`` says what a build (or its resumption) has left to train, writing nothing."""
    from derl_bench.fidelity_build import build_table, interleave_families

    rows = [("a1", "sweep", "k1", 0), ("a1", "sweep", "k1", 1), ("a2", "sweep", "k2", 0)]
    rows += [("b1", "random", "k3", 0), ("b1", "random", "k3", 1), ("x", "extra", "k4", 0)]
    assert [r[2:] for r in interleave_families(rows)] == [
        ("k4", 0),  # the user's own meta-rewards first
        ("k1", 0),
        ("k1", 1),
        ("k3", 0),
        ("k3", 1),
        ("k2", 0),
    ]
    # through a real build: one meta-step per shard, shards in training order
    kwargs = dict(
        sample="sweep:3,random:3",
        out=tmp_path,
        with_test=False,
        flush=1,
        env_kwargs={"inner_overrides": TINY},
    )
    # a dry run first: it writes nothing and plans what the build then trains
    said: list[str] = []
    plan = build_table(ENV_ID, "smoke", [0], **kwargs, say=said.append, dry_run=True)
    assert list(tmp_path.iterdir()) == [] and plan.trained == 0
    assert plan.planned == {"sweep": 3, "random": 3}
    assert "cost: no entry held to time it by" in said[-1]
    summary = build_table(ENV_ID, "smoke", [0], **kwargs, say=lambda _: None)
    assert summary.trained == 6 and summary.planned == plan.planned
    shards = sorted(summary.folder.glob("entries-*.parquet"))
    families = [pd.read_parquet(shard)["sample"].item() for shard in shards]
    assert families[:6] == ["sweep", "random"] * 3
    # resumed, nothing is left; the estimate for one more seed comes from the entries' times
    files = {p: p.read_bytes() for p in summary.folder.iterdir()}
    said.clear()
    again = build_table(ENV_ID, "smoke", [0, 1], **kwargs, say=said.append, dry_run=True)
    assert again.planned == {"sweep": 3, "random": 3} and again.skipped == 6
    assert {p: p.read_bytes() for p in summary.folder.iterdir()} == files
    per_entry = pd.concat(pd.read_parquet(shard) for shard in shards)["wall_seconds"].mean()
    assert f"cost: {per_entry:.0f} s per entry (meta-step, wall, the mean of the 6 " in said[-1]


def test_surrogate_report_measures_held_out_error(tmp_path: Path) -> None:
    from derl_bench.fidelity.surrogate import FEATURE_SETS, MODEL_NAMES
    from derl_bench.fidelity_report import surrogate_report

    report = surrogate_report(
        ENV_ID, "smoke", folds=3, out=tmp_path, models=("knn", "lgbm"), record_choice=False
    )
    assert report["chosen"] in MODEL_NAMES
    assert set(report["feature_sets"]) == set(FEATURE_SETS)
    # the shipped table's recorded surrogate (k-NN on the bank features) is kept
    assert (report["chosen_features"], report["chosen"]) == ("bank", "knn")
    for results in report["feature_sets"].values():
        for metrics in results.values():
            assert 0.0 <= metrics["mae"] <= 1.0 and 0.0 <= metrics["top10_recall"] <= 1.0
            rho = metrics["spearman_rho"]
            assert rho is None or -1.0 <= rho <= 1.0
            # the bootstrap interval over keys brackets the point estimate
            low, high = metrics["spearman_rho_ci95"]
            assert -1.0 <= low <= rho <= high <= 1.0 and high - low > 0.0
    markdown = (tmp_path / f"{ENV_ID}-smoke.md").read_text()
    assert markdown.startswith("# Surrogate error")
    ceiling = report["noise_ceiling_rho"]
    assert ceiling is None or 0.0 <= ceiling <= 1.0
    # Every key of the shipped table has test success, so the held-out error of the predicted
    # test success (what a run reports for its best meta-reward) is published beside it.
    for results in report["feature_sets"].values():
        for metrics in results.values():
            test = metrics["test"]
            names = {
                "spearman_rho",
                "spearman_rho_ci95",
                "kendall_tau",
                "mae",
                "top10_recall",
                "top10_live_mean",
            }
            assert set(test) == names
            assert 0.0 <= test["mae"] <= 1.0 and test != {k: metrics[k] for k in names}
    assert report["test_agreement"]["seed_pairs"] >= 1
    assert "## Test success" in markdown


def test_report_keeps_a_recorded_surrogate_choice_unless_asked_to_rechoose(tmp_path: Path) -> None:
    """A table's surrogate choice is part of the benchmark (results at the surrogate fidelity
    are checked against its answers): re-running the report keeps it; --rechoose replaces it."""

    from derl_bench.fidelity_report import surrogate_report

    _smoke_table_copy(tmp_path)
    meta_path = table_dir(ENV_ID, "smoke", tmp_path) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["surrogate_model"], meta["surrogate_features"] = "lgbm", "correlation"
    meta_path.write_text(json.dumps(meta))
    kwargs = dict(root=tmp_path, folds=3, models=("knn", "lgbm"), out=tmp_path / "docs")
    kept = surrogate_report(ENV_ID, "smoke", **kwargs)
    assert (kept["chosen_features"], kept["chosen"]) == ("correlation", "lgbm")
    rho = {
        (f, m): r["spearman_rho"] for f, res in kept["feature_sets"].items() for m, r in res.items()
    }
    best = max(rho, key=lambda pair: rho[pair])
    if best != ("correlation", "lgbm"):
        assert "recorded choice, kept" in kept["why"] and "--rechoose" in kept["why"]
    assert json.loads(meta_path.read_text())["surrogate_model"] == "lgbm"
    chosen = surrogate_report(ENV_ID, "smoke", rechoose=True, **kwargs)
    assert rho[(chosen["chosen_features"], chosen["chosen"])] == rho[best]
    meta = json.loads(meta_path.read_text())
    assert (meta["surrogate_features"], meta["surrogate_model"]) == (
        chosen["chosen_features"],
        chosen["chosen"],
    )


def test_seed_agreement_states_the_noise_ceiling_of_the_held_out_rho() -> None:
    from derl_bench.fidelity_report import seed_agreement

    # Synthetic values (a labelled fake table): 12 keys with a true success each.
    truth = [i / 11 for i in range(12)]
    same = {f"k{i}": {0: t, 1: t, 2: t} for i, t in enumerate(truth)}
    agreement = seed_agreement(same)
    assert agreement["seed_vs_seed_rho"] == pytest.approx(1.0)
    assert agreement["seed_pairs"] == 3 and agreement["mean_seeds_per_key"] == 3.0
    assert agreement["noise_ceiling_rho"] == pytest.approx(1.0)
    # Seeds that disagree as often as they agree: nothing to rank, ceiling 0.
    crossed = {f"k{i}": {0: t, 1: 1 - t} for i, t in enumerate(truth)}
    assert seed_agreement(crossed)["noise_ceiling_rho"] == 0.0
    # Noisy seeds: one seed ranks the others worse than the mean of three ranks the truth.
    rng = np.random.default_rng(0)
    noisy = {f"k{i}": {s: t + rng.normal(0, 0.3) for s in range(3)} for i, t in enumerate(truth)}
    agreement = seed_agreement(noisy)
    assert 0.0 < agreement["seed_vs_seed_rho"] < agreement["noise_ceiling_rho"] < 1.0
    # Fewer than 5 keys shared by any pair of seeds: not measured.
    few = {f"k{i}": {i % 3: 0.5} for i in range(12)}
    assert seed_agreement(few)["seed_vs_seed_rho"] is None


def test_report_measures_test_success_on_the_tested_keys_of_a_table_being_built(
    tmp_path: Path,
) -> None:
    """A table being built holds keys without test success yet (a signal check's cells): the
    report cross-validates test success on the keys that have it, in folds of their own."""
    from scipy.stats import spearmanr

    from derl_bench.fidelity import answers
    from derl_bench.fidelity_report import out_of_fold_predictions, surrogate_report
    from derl_bench.meta_reward import parse

    full = FidelityTable(_smoke_table_copy(tmp_path))
    untested = full.keys[:4]
    partial = _record_without_test(full, untested, 90000)
    kwargs = dict(
        root=tmp_path, folds=3, models=("knn",), feature_sets=("bank",), record_choice=False
    )
    report = surrogate_report(ENV_ID, "smoke", out=tmp_path / "docs", **kwargs)
    assert report["keys"] == len(full.keys) and report["test_keys"] == len(full.keys) - 4
    agreement = report["test_agreement"]
    assert report["test_own_folds"] and agreement["seed_pairs"] == 1
    assert agreement["mean_seeds_per_key"] == 2.0 and 0.0 <= agreement["live_top10_mean"] <= 1.0
    # the same numbers as cross-validating the tested keys alone
    tested = [k for k in full.keys if k not in untested]
    summary = full.summary()
    parsed = [parse(summary[k]["canonical"], full.scheme.primitive_names) for k in tested]
    alone = out_of_fold_predictions(
        full, tested, parsed, model="knn", feature_set="bank", folds=3, targets=("test_mean",)
    )
    truth = [summary[k]["test_mean"] for k in tested]
    test = report["feature_sets"]["bank"]["knn"]["test"]
    assert test["spearman_rho"] == pytest.approx(spearmanr(truth, alone["test_mean"]).statistic)
    markdown = (tmp_path / "docs" / f"{ENV_ID}-smoke.md").read_text()
    assert f"The {len(tested)} keys with test success so far, in 3 folds of their own" in markdown
    # fewer tested keys than 2 x folds: no test part, the validation part as before
    _record_without_test(partial, full.keys[5:], 90001)  # keys[4] alone keeps test success
    few = surrogate_report(ENV_ID, "smoke", out=tmp_path / "few", **kwargs)
    assert few["test_keys"] == 1 and few["feature_sets"]["bank"]["knn"]["test"] is None
    assert few["feature_sets"]["bank"]["knn"]["spearman_rho"] == pytest.approx(
        report["feature_sets"]["bank"]["knn"]["spearman_rho"]
    )
    assert "## Test success" not in (tmp_path / "few" / f"{ENV_ID}-smoke.md").read_text()
    answers._load_table.cache_clear()


def test_report_top10_counts_ties_and_states_what_picking_gets() -> None:
    from derl_bench.fidelity_report import _metrics, seed_agreement

    # Synthetic values (a labelled fake table). 14 keys tie at the top (Pendulum has 17 at
    # 1.000): any 10 of them are a live top-10, so a surrogate picking 10 of them recalls all.
    truth = np.array([1.0] * 14 + [i / 20 for i in range(10)])
    predicted = np.array([0.9 - i / 100 for i in range(14)][::-1] + [0.1] * 10)
    metrics = _metrics(truth, predicted)
    assert metrics["top10_recall"] == 1.0 and metrics["top10_live_mean"] == 1.0
    # A surrogate that ranks upside down picks the ten worst: recall 0, their live mean.
    ranked = np.arange(24) / 23
    upside_down = _metrics(ranked, -ranked)
    assert upside_down["top10_recall"] == 0.0
    assert upside_down["top10_live_mean"] == pytest.approx(ranked[:10].mean())
    # Picking by one seed, scored on the others: seed 0 ranks the keys upside down, seed 1
    # right; seed 0's top-10 are worst at seed 1 and the reverse, so the pick is poor.
    values = {f"k{i}": {0: 1 - t, 1: t} for i, t in enumerate(ranked)}
    agreement = seed_agreement(values)
    assert agreement["live_top10_mean"] == pytest.approx(0.5)
    assert agreement["seed_pick_top10"] == pytest.approx(ranked[:10].mean())
    # Seeds that agree pick the best ten, scored on the other seed.
    agreeing = seed_agreement({f"k{i}": {0: t, 1: t} for i, t in enumerate(ranked)})
    assert agreeing["seed_pick_top10"] == pytest.approx(ranked[-10:].mean())
    assert agreeing["live_top10_mean"] == pytest.approx(ranked[-10:].mean())


def _heuristic_run(out: Path, env_kwargs: dict):  # noqa: ANN202
    """The heuristic's first three meta-rewards (seed 0, one round) at a recorded fidelity."""
    from derl_bench.runner import run

    return run(
        ENV_ID,
        "heuristic",
        budget=3,
        seed=0,
        preset="smoke",
        proposals_per_step=3,
        out_dir=out,
        env_kwargs=env_kwargs,
        progress=False,
    )


def test_run_at_table_fidelity_writes_fidelity_clock_and_distinct_keys(tmp_path: Path) -> None:
    from derl_bench.results import load_result
    from derl_bench.runner import run

    result = _heuristic_run(tmp_path, {"fidelity": "table"})
    record = load_result(result.path)
    assert record["fidelity"] == "table"
    assert record["env_spec"]["kwargs"]["fidelity"] == "table"
    # The heuristic's first three meta-rewards (g1, g1 + g2, the average; the shipped table
    # holds them, not its fourth, g2): three meta-steps, three distinct keys.
    assert len(record["meta_steps"]) == 3
    assert record["distinct_effective_meta_rewards"] == 3
    clock = record["clock"]
    charged = sum(s["cost"]["simulated_seconds"] for s in record["meta_steps"])
    assert clock["simulated_seconds"] == pytest.approx(charged + clock["agent_seconds"])
    assert not clock["stopped_by_budget"]
    first_cost = record["meta_steps"][0]["cost"]["simulated_seconds"]
    stopped = run(
        ENV_ID,
        "heuristic",
        budget=6,
        seed=0,
        preset="smoke",
        proposals_per_step=1,
        out_dir=tmp_path / "budgeted",
        env_kwargs={"fidelity": "table"},
        progress=False,
        budget_seconds=first_cost * 0.5,
    )
    assert len(stopped.record["meta_steps"]) == 1
    assert stopped.record["clock"]["stopped_by_budget"] is True


def test_a_result_names_the_table_that_answered_it(tmp_path: Path) -> None:
    """Table and surrogate runs record the table that answered (folder, keys, entries, SHA-256 of
    its files, the surrogate's choice): a shipped table grows shard by shard, so a published
    number must say which version of it gave the number."""

    import pandas as pd

    from derl_bench.results import load_result

    root = tmp_path / "tables"
    _smoke_table_copy(root)
    copy = FidelityTable(table_dir(ENV_ID, "smoke", root))
    assert copy.sha256 == FidelityTable.load(ENV_ID, "smoke").sha256  # same files, same digest
    sources = {}
    for fidelity in ("table", "surrogate"):
        result = _heuristic_run(tmp_path / fidelity, {"fidelity": fidelity, "table_dir": str(root)})
        sources[fidelity] = load_result(result.path)["fidelity_source"]
    assert sources["table"] == {
        "table": "DERL-CartPole-v0-smoke",
        "keys": len(copy.keys),
        "entries": len(copy),
        "sha256": copy.sha256,
        "surrogate_model": None,
        "surrogate_features": None,
    }
    recorded = (copy.meta["surrogate_model"], copy.meta["surrogate_features"])
    assert (
        sources["surrogate"]["surrogate_model"],
        sources["surrogate"]["surrogate_features"],
    ) == (recorded)
    assert sources["surrogate"]["sha256"] == copy.sha256
    # A new shard that re-records one entry with another value: other answers, other digest.
    first = sorted(copy.folder.glob("entries-*.parquet"))[0]
    frame = pd.read_parquet(first).iloc[:1].copy()
    frame["validation_success"] = 1.0 - frame["validation_success"]
    frame.to_parquet(copy.folder / "entries-99999.parquet")
    grown = FidelityTable(copy.folder)
    assert len(grown) == len(copy) and grown.sha256 != copy.sha256
    row = frame.iloc[0]
    assert grown.lookup(row["key"], int(row["seed"])).validation_success == pytest.approx(
        1.0 - copy.lookup(row["key"], int(row["seed"])).validation_success
    )
    # a live env trains; nothing recorded answers it
    assert gymnasium.make(ENV_ID, preset="smoke").unwrapped.fidelity_source is None


def test_a_table_still_being_built_warns_that_its_answers_will_change(tmp_path: Path) -> None:

    from derl_bench.fidelity_build import record_build_status

    root = tmp_path / "tables"
    folder = _smoke_table_copy(root)
    record_build_status(folder, command="derl-bench fidelity build ...", complete=False)
    assert json.loads((folder / "meta.json").read_text())["surrogate_model"]  # kept
    for fidelity in ("table", "surrogate"):
        with pytest.warns(UserWarning, match="table is still being built \\(24 meta-rewards"):
            _make(fidelity, table_dir=str(root))
    record_build_status(folder, complete=True)
    import warnings

    from derl_bench.fidelity import answers

    answers._load_table.cache_clear()  # a new process would load the finished table
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _make("table", table_dir=str(root))


def test_entries_without_test_success_leave_the_other_keys_answering(tmp_path: Path) -> None:
    """A table being built holds a signal check's cells, recorded without test success. The
    surrogate predicts test success from the keys that have it (validation from all, as
    before); a table step on an entry without it, or a surrogate with fewer than 3 tested keys,
    raises an error naming the command that trains them with test."""

    from derl_bench.fidelity import answers
    from derl_bench.fidelity.surrogate import Surrogate
    from derl_bench.fidelity.table import TestSuccessMissing
    from derl_bench.meta_reward import parse

    root = tmp_path / "tables"
    folder = _smoke_table_copy(root)
    full = FidelityTable(folder)

    def record_without_test(keys: list[str], shard: int) -> FidelityTable:
        return _record_without_test(full, keys, shard)

    untested = full.keys[:4]
    partial = record_without_test(untested, 90000)
    surrogate, before = Surrogate(partial), Surrogate(full)
    assert surrogate.test_keys == len(full.keys) - 4
    # test success as a surrogate fitted on the tested keys alone predicts it
    tested_only = Surrogate(full, keys=[k for k in full.keys if k not in untested])
    summary = full.summary()
    for key in full.keys:
        meta_reward = parse(summary[key]["canonical"], partial.scheme.primitive_names)
        prediction, reference = surrogate.predict(meta_reward), tested_only.predict(meta_reward)
        assert prediction.validation_mean == before.predict(meta_reward).validation_mean
        assert prediction.test_mean is not None and prediction.test_mean == reference.test_mean
        assert prediction.test_std == reference.test_std
        assert prediction.test_neighbour == reference.neighbour not in untested
    canonical = summary[untested[0]]["canonical"]
    env = _make("table", table_dir=str(root))
    env.reset(seed=0)
    with pytest.raises(TestSuccessMissing, match="without test success") as missing:
        env.unwrapped.evaluate_test(canonical)
    assert "--sample '' --meta-rewards" in str(missing.value) and "--seeds 0" in str(missing.value)
    # a surrogate of 2 tested keys predicts no test success, and says so
    record_without_test(full.keys[6:], 90001)  # with keys[:4]: keys[4:6] keep test success
    env = _make("surrogate", table_dir=str(root))
    env.reset(seed=0)
    with pytest.raises(TestSuccessMissing, match="test success for 2 of its 24 meta-rewards"):
        env.unwrapped.evaluate_test("g1")
    answers._load_table.cache_clear()


def test_resuming_a_build_with_the_same_plan_keeps_the_table_and_its_digest(
    tmp_path: Path,
) -> None:
    """A stopped build resumed with the same plan rewrites nothing: ``meta.json`` keeps its bytes,
    so the table's digest (which runs on the table are pinned to) and the work tree are unchanged.
    A changed status (the build finished) is written, with a new ``updated_at``."""

    from derl_bench.fidelity.table import FidelityTable
    from derl_bench.fidelity_build import record_build_status

    folder = _smoke_table_copy(tmp_path)
    plan = {"command": "derl-bench fidelity build ... --sample random:2", "sample": "random:2"}
    record_build_status(folder, **plan, seeds=(0, 1), complete=False)
    meta_bytes = (folder / "meta.json").read_bytes()
    digest = FidelityTable(folder).sha256
    time.sleep(0.01)  # a rewrite would change updated_at (millisecond resolution)
    record_build_status(folder, **plan, seeds=(0, 1), complete=False)  # the build resumed
    assert (folder / "meta.json").read_bytes() == meta_bytes
    assert FidelityTable(folder).sha256 == digest
    record_build_status(folder, complete=True)  # ... and finished
    build = json.loads((folder / "meta.json").read_text())["build"]
    assert build["complete"] is True and build["sample"] == "random:2" and build["seeds"] == [0, 1]
    assert FidelityTable(folder).sha256 != digest


def test_a_run_does_not_resume_on_another_version_of_its_table(tmp_path: Path) -> None:
    """A table run interrupted (here: its 4th meta-reward, g2, is not in the smoke table) keeps
    its 3 stored meta-steps; after the table changed, resuming is refused with the fix named
    (the run would mix two tables' answers), and --no-resume runs it afresh."""

    import pandas as pd

    from derl_bench.fidelity import answers
    from derl_bench.run_files import store_path
    from derl_bench.runner import run
    from derl_bench.store import TableChangedError, read_store_steps

    root = tmp_path / "tables"
    _smoke_table_copy(root)
    kwargs = dict(
        budget=4,
        seed=0,
        preset="smoke",
        proposals_per_step=1,
        out_dir=tmp_path / "runs",
        env_kwargs={"fidelity": "table", "table_dir": str(root)},
        progress=False,
    )
    with pytest.raises(TableKeyMissing):
        run(ENV_ID, "heuristic", **kwargs)
    stored = store_path(tmp_path / "runs", ENV_ID, "heuristic", 0)
    assert len(read_store_steps(stored)) == 3
    folder = table_dir(ENV_ID, "smoke", root)
    first = sorted(folder.glob("entries-*.parquet"))[0]
    pd.read_parquet(first).iloc[:1].to_parquet(folder / "entries-99999.parquet")
    answers._load_table.cache_clear()  # a new process would load the changed table
    answers._load_surrogate.cache_clear()
    with pytest.raises(TableChangedError, match="--no-resume to run it afresh"):
        run(ENV_ID, "heuristic", **kwargs)
    assert len(read_store_steps(stored)) == 3  # nothing lost
    with pytest.raises(TableKeyMissing):  # afresh: the same 3 steps, then g2 again
        run(ENV_ID, "heuristic", resume=False, **kwargs)


def test_cli_run_and_compare_take_fidelity(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from derl_bench.cli import app

    out = tmp_path / "runs"
    args = ["--env", ENV_ID, "--preset", "smoke", "--fidelity", "surrogate", "--out", str(out)]
    result = CliRunner().invoke(app, ["run", "--agent", "random_tree", "--budget", "4", *args])
    assert result.exit_code == 0, result.output
    record = json.loads((out / ENV_ID / "random_tree" / "seed0.json").read_text())
    assert record["fidelity"] == "surrogate"
    bad = CliRunner().invoke(app, ["run", "--fidelity", "tabel"])
    assert bad.exit_code == 2 and "not a fidelity" in bad.output
    # A deep output folder: the suggested command must come out on one line, however long
    # the paths in it (CI's checkout path is longer than a developer's; rich wrapped at 80).
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    for env, preset, problem in (
        ("DERL-Arith-v0", "cpu", "No table for DERL-Arith-v0"),  # no table at all
        # A big table, but random_tree's trees at seed 7 are not in it (at seed 0 they are
        # the build's own random family: same generator, same seed).
        (ENV_ID, "cpu", "holds no entry for"),
    ):
        missing = CliRunner().invoke(
            app,
            [
                "run",
                "--agent",
                "random_tree",
                "--env",
                env,
                "--preset",
                preset,
                "--fidelity",
                "table",
                "--seeds",
                "7",
                "--out",
                str(deep),
            ],
        )
        assert missing.exit_code == 2, missing.output
        assert "derl-bench fidelity build" in missing.output, missing.output
        assert problem in missing.output, missing.output


def test_fast_predict_equals_scikit_learn_predict(table: FidelityTable) -> None:
    from derl_bench.fidelity.surrogate import (
        FEATURE_SETS,
        MODEL_NAMES,
        Surrogate,
        fast_predict,
        features,
    )
    from derl_bench.meta_reward import parse

    names = table.scheme.primitive_names
    texts = ("g1", "g2 * g3 + g4", "g4 / g2", "-g1 + 0.7 * g2")
    for feature_set in FEATURE_SETS:
        for model in MODEL_NAMES:
            surrogate = Surrogate(table, model=model, feature_set=feature_set)
            x = np.stack(
                [
                    features(parse(t, names), surrogate.bank, affine=True, kind=feature_set)
                    for t in texts
                ]
            )
            together = surrogate.predict_features(x)
            for name, regressor in surrogate.regressors.items():
                fast, slow = fast_predict(regressor, x), regressor.predict(x)
                assert np.allclose(fast, slow, rtol=1e-6, atol=1e-7), (feature_set, model)
                assert np.allclose(together[name], slow, rtol=1e-6, atol=1e-7), (name, model)
            step = surrogate.predict(parse(texts[1], names), test=False)
            full = surrogate.predict(parse(texts[1], names))
            assert step.test_mean is None and step.test_std is None
            assert full.test_mean is not None and full.test_std is not None
            assert (step.validation_mean, step.wall_seconds) == (
                full.validation_mean,
                full.wall_seconds,
            )


def test_correlation_features_are_spearman_rho_with_each_primitive(table: FidelityTable) -> None:
    from scipy.stats import spearmanr

    from derl_bench.fidelity.keys import normalised_values
    from derl_bench.fidelity.surrogate import features
    from derl_bench.meta_reward import parse

    bank = table.probe_bank()
    names = table.scheme.primitive_names
    for text in ("g2 * g3 + g4", "g4 / g2", "-g1 + 0.7 * g2"):
        reward = parse(text, names)
        values = normalised_values(reward, bank, shift=True, scale=True).values
        expected = [spearmanr(values, bank[:, j]).statistic for j in range(bank.shape[1])]
        assert features(reward, bank, affine=True, kind="correlation") == pytest.approx(expected)
    # a positive affine map of a reward has its features
    assert features(parse("3 * g4 + 1", names), bank, affine=True, kind="correlation") == (
        pytest.approx(features(parse("g4", names), bank, affine=True, kind="correlation"))
    )
    with pytest.raises(ValueError, match="Unknown surrogate feature set 'corr'"):
        features(parse("g4", names), bank, affine=True, kind="corr")


def test_recorded_answers_are_looked_up_under_the_versioned_id():
    from derl_bench.fidelity.answers import env_id_for

    assert env_id_for("alfworld", "L2", 1) == "DERL-ALFWorld-L2-v1"
    assert env_id_for("alfworld", "L2") == "DERL-ALFWorld-L2-v0"
    assert env_id_for("cartpole", None) == "DERL-CartPole-v0"
    with pytest.raises(ValueError, match="version=7"):
        env_id_for("alfworld", "L2", 7)
