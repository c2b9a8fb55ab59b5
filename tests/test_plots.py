"""Plots of result files and the structure taxonomy.

The result files here are TEST DATA made by :func:`write_synthetic_result` (schema-valid, but
no run produced them; the numbers are chosen to make the expected curves easy to compute).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derl_bench.meta_reward import parse
from derl_bench.meta_reward.structure import STRUCTURES, classify_structure
from derl_bench.report.aggregate import primitive_usage, structure_shares, validation_curves
from derl_bench.report.load import load_run_dir
from derl_bench.report.plots import plot_run_dir
from derl_bench.results import SCHEMA_VERSION, hardware_info, utc_now, write_result
from derl_bench.runner import result_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_COST = {"wall_seconds": 1.0, "inner_steps": 1, "rollouts": 4, "tokens": 10}
_ZERO = {"wall_seconds": 0.0, "inner_steps": 0, "rollouts": 0, "tokens": 0}


def write_synthetic_result(
    out: Path,
    *,
    env_id: str,
    agent: str,
    seed: int,
    proposals_per_step: int,
    steps: list[tuple[str, float | None]],
) -> Path:
    """Write TEST DATA: a schema-valid result whose meta-steps are ``(text, validation)``.

    A validation of None makes the meta-step invalid (reward -1, reason "syntax").
    """
    names = ("g1", "g2", "g3", "g4")
    meta_steps = []
    for index, (text, validation) in enumerate(steps):
        valid = validation is not None
        meta_steps.append(
            {
                "index": index,
                "meta_reward": text,
                "canonical": parse(text, names).canonical if valid else None,
                "valid": valid,
                "invalid_reason": None if valid else "syntax",
                "validation_success": validation,
                "reward": validation if valid else -1.0,
                "cost": dict(_COST if valid else _ZERO),
                "primitive_means": {n: 0.5 for n in names} if valid else {},
                "cache_hit": False,
            }
        )
    scored = [s for s in meta_steps if s["valid"]]
    best = max(scored, key=lambda s: s["validation_success"], default=None)
    now = utc_now()
    record = {
        "schema_version": SCHEMA_VERSION,
        "derl_bench_version": "0.0.0-test-data",
        "git_hash": None,
        "env_id": env_id,
        "env_spec": {"id": env_id},
        "preset": "smoke",
        "data_hashes": {},
        "agent": {"name": agent, "config": {"primitive_names": list(names), "seed": seed}},
        "seed": seed,
        "budget": len(steps),
        "proposals_per_step": proposals_per_step,
        "meta_steps": meta_steps,
        "best": None
        if best is None
        else {
            "meta_reward": best["meta_reward"],
            "canonical": best["canonical"],
            "validation_success": best["validation_success"],
        },
        "test_success": None,
        "n_test": None,
        "test_cost": None,
        "total_cost": {
            "wall_seconds": float(len(scored)),
            "inner_steps": len(scored),
            "rollouts": 4 * len(scored),
            "tokens": 10 * len(scored),
        },
        "hardware": hardware_info(),
        "started_at": now,
        "finished_at": now,
        "status": "finished",
        "error": None,
    }
    return write_result(result_path(out, env_id, agent, seed), record)


def _two_seeds(out: Path) -> None:
    """TEST DATA: agent "a" with 2 seeds x 2 iterations of 2, agent "b" with 1 seed."""
    write_synthetic_result(
        out,
        env_id="DERL-Test-v0",
        agent="a",
        seed=0,
        proposals_per_step=2,
        steps=[("g1", 0.2), ("g1 * g2", 0.4), ("-(g1 + g2)", 0.1), ("(g1", None)],
    )
    write_synthetic_result(
        out,
        env_id="DERL-Test-v0",
        agent="a",
        seed=1,
        proposals_per_step=2,
        steps=[("g1 + g3", 0.6), ("g2", None), ("g1 / (g2 + 1)", 0.8), ("g1 + g4", 0.3)],
    )
    write_synthetic_result(
        out,
        env_id="DERL-Test-v0",
        agent="b",
        seed=0,
        proposals_per_step=3,
        steps=[("g1", 0.5), ("g2", 0.5), ("g3", 0.5)],
    )


# --- the taxonomy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the paper's examples (PAPER_FACTS.md §5, v2 Table 3 / §5.2)
        ("0.5*g1+0.8*g2", "stable"),
        ("g1/(g2+1)", "stable"),
        ("g1*(g2+0.2)*g3", "unstable"),
        ("-(g1+0.5*g2)", "invalid"),
        # further cases of the documented rules
        ("g1 + 0.5*(g2 + 0.5*(g3 + 0.5*(g4 + 0.5)))", "stable"),
        ("2 * g1 * 3", "stable"),
        ("g1*(g2+(g3-1.0)*(g4-0.0))", "unstable"),
        ("g2 - g1", "invalid"),
        ("g2 * g3", "unstable"),
        ("g2 + g3", "stable"),
        ("g1 * -2", "invalid"),
    ],
)
def test_classify_structure(text, expected):
    assert classify_structure(text) == expected


def test_invalid_meta_steps_are_invalid():
    assert classify_structure(None, valid=False) == "invalid"
    assert classify_structure("g1 + g2", valid=False) == "invalid"
    assert classify_structure("(g1") == "invalid"
    assert classify_structure("g7 + g1", ("g1", "g2")) == "invalid"


# --- the numbers behind the plots -----------------------------------------------------------


def test_validation_curves_best_so_far_and_mean_over_seeds(tmp_path):
    _two_seeds(tmp_path)
    curves = {c.agent: c for c in validation_curves(load_run_dir(tmp_path).results)}
    a = curves["a"]
    assert a.n_seeds == 2 and list(a.iterations) == [0, 1]
    # seed 0: best 0.4, 0.4; seed 1: best 0.6, 0.8
    np.testing.assert_allclose(a.best, [[0.5, 0.6], [0.4, 0.4], [0.6, 0.8]])
    # seed 0: means 0.3, 0.1 (the invalid step is left out); seed 1: 0.6, 0.55
    np.testing.assert_allclose(a.mean, [[0.45, 0.325], [0.3, 0.1], [0.6, 0.55]])
    # the best-so-far band of the plot: mean over seeds with its 95 % bootstrap interval
    np.testing.assert_allclose(a.best_ci[0], a.best[0])
    assert np.all(a.best_ci[1] <= a.best_ci[0]) and np.all(a.best_ci[0] <= a.best_ci[2])
    assert np.all(a.best_ci[1] >= a.best[1]) and np.all(a.best_ci[2] <= a.best[2])
    assert a.best_ci[2, 1] - a.best_ci[1, 1] > 0  # seeds differ: the interval has width
    b = curves["b"]
    assert b.n_seeds == 1 and list(b.iterations) == [0]
    np.testing.assert_allclose(b.best[:, 0], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(b.best_ci[:, 0], [0.5, 0.5, 0.5])  # one seed: no width


def test_primitive_usage_counts_valid_meta_rewards_only(tmp_path):
    _two_seeds(tmp_path)
    usage = {u.agent: u for u in primitive_usage(load_run_dir(tmp_path).results)}["a"]
    assert usage.primitive_names == ("g1", "g2", "g3", "g4")
    # iteration 0 valid: g1, g1*g2, g1+g3 -> g1 3/3, g2 1/3, g3 1/3, g4 0
    # iteration 1 valid: -(g1+g2), g1/(g2+1), g1+g4 -> g1 3/3, g2 2/3, g3 0, g4 1/3
    np.testing.assert_allclose(usage.share, [[1, 1 / 3, 1 / 3, 0], [1, 2 / 3, 0, 1 / 3]])
    assert list(usage.n_valid) == [3, 3]


def test_structure_shares_per_iteration(tmp_path):
    _two_seeds(tmp_path)
    shares = {s.agent: s for s in structure_shares(load_run_dir(tmp_path).results)}["a"]
    assert STRUCTURES == ("stable", "unstable", "invalid")
    # iteration 0: g1 stable, g1*g2 unstable, g1+g3 stable, g2 invalid (step) -> 2/4, 1/4, 1/4
    # iteration 1: -(g1+g2) invalid, (g1 invalid, g1/(g2+1) stable, g1+g4 stable
    np.testing.assert_allclose(shares.share, [[0.5, 0.25, 0.25], [0.5, 0.0, 0.5]])
    assert list(shares.n_meta_steps) == [4, 4]


# --- the PNGs -------------------------------------------------------------------------------


def test_plot_run_dir_writes_three_nonempty_pngs_per_env(tmp_path):
    _two_seeds(tmp_path)
    write_synthetic_result(
        tmp_path,
        env_id="DERL-Other-v0",
        agent="a",
        seed=0,
        proposals_per_step=1,
        steps=[("g1", 0.9)],
    )
    broken = tmp_path / "DERL-Test-v0" / "c" / "seed0.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{")
    (tmp_path / "DERL-Test-v0" / "a" / "seed0.invalid.json").write_text("{}")

    found = load_run_dir(tmp_path)
    assert len(found.results) == 4
    assert [s.path for s in found.skipped] == [broken]

    written = plot_run_dir(tmp_path)
    assert [p.name for p in written] == [
        "DERL-Other-v0__validation.png",
        "DERL-Other-v0__primitives.png",
        "DERL-Other-v0__structures.png",
        "DERL-Test-v0__validation.png",
        "DERL-Test-v0__primitives.png",
        "DERL-Test-v0__structures.png",
    ]
    for path in written:
        assert path.parent == tmp_path / "plots"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    # Plotting again reads no PNG or plots/ content as results and gives the same files.
    assert plot_run_dir(tmp_path) == written


def test_plot_run_dir_without_results_is_a_clear_error(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "seed0.json").write_text("not json")
    with pytest.raises(FileNotFoundError, match="no readable result file") as caught:
        plot_run_dir(tmp_path)
    assert "seed0.json" in str(caught.value)
    with pytest.raises(NotADirectoryError):
        plot_run_dir(tmp_path / "missing")


def test_best_so_far_counts_a_run_without_valid_meta_rewards_as_0_like_the_table(tmp_path):
    from derl_bench.report.tables import agent_rows

    write_synthetic_result(
        tmp_path, env_id="DERL-Test-v0", agent="c", seed=0, proposals_per_step=2,
        steps=[("g1", 0.6), ("g2", 0.2), ("g3", 0.8), ("g4", 0.1)],
    )  # fmt: skip
    write_synthetic_result(
        tmp_path, env_id="DERL-Test-v0", agent="c", seed=1, proposals_per_step=2,
        steps=[("(g1", None), ("g2 +", None), ("g1 *", None), (")", None)],
    )  # fmt: skip
    results = load_run_dir(tmp_path).results
    (curve,) = validation_curves(results)
    # seed 0: 0.6, 0.8; seed 1: nothing valid, 0 throughout.
    np.testing.assert_allclose(curve.best, [[0.3, 0.4], [0.0, 0.0], [0.6, 0.8]])
    (row,) = agent_rows(results)
    assert row.best_validation == (0.8, 0.0)
    assert curve.best[0, -1] == pytest.approx(np.mean(row.best_validation))


def test_comparison_table_gives_the_iqm_with_a_bootstrap_interval_from_three_seeds(tmp_path):
    """The table's IQM column is rliable's IQM over seeds with a 95 % interval that contains it;
    with two seeds it says '-' (no interval from two runs). Result files are TEST DATA."""
    from derl_bench.report.intervals import iqm_interval
    from derl_bench.report.tables import agent_rows, markdown_table

    bests = {"three": [0.2, 0.5, 0.9, 0.6], "two": [0.4, 0.7]}
    for agent, values in bests.items():
        for seed, value in enumerate(values):
            write_synthetic_result(
                tmp_path, env_id="DERL-Test-v0", agent=agent, seed=seed, proposals_per_step=1,
                steps=[("g1", value / 2), ("g2", value)],
            )  # fmt: skip
    rows = {row.agent: row for row in agent_rows(load_run_dir(tmp_path).results)}
    assert rows["three"].fidelity == "live"
    expected = iqm_interval(np.array(bests["three"])[:, None])
    assert expected.low <= expected.value <= expected.high and expected.low < expected.high
    table = markdown_table(list(rows.values()))
    header = [c.strip() for c in table.splitlines()[0].split("|")]
    column = header.index("best validation IQM [95 % CI]")
    cells = {}
    for line in table.splitlines():
        if line.startswith("| DERL-Test-v0"):
            row = [c.strip() for c in line.split("|")]
            cells[row[2].split()[0]] = row  # agent, without a lock mark
    assert (
        cells["three"][column] == f"{expected.value:.3f} [{expected.low:.3f}, {expected.high:.3f}]"
    )
    assert cells["two"][column] == "-"


def test_recheck_live_picks_each_agents_best_meta_reward_over_seeds(tmp_path):
    """scripts/recheck_live.py re-checks, per agent, the meta-reward with the highest best
    validation over its seeds (ties: the one more seeds found). Result files are TEST DATA."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "recheck_live", Path(__file__).parent.parent / "scripts" / "recheck_live.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs = {
        "a": [[("g1", 0.5), ("g2", 0.9)], [("g2", 0.9)], [("g3", 0.9), ("g1", 0.2)]],
        "b": [[("g4", 0.3)], [("g1 + g2", 0.7)]],
    }
    for agent, seeds in runs.items():
        for seed, steps in enumerate(seeds):
            write_synthetic_result(
                tmp_path, env_id="DERL-Test-v0", agent=agent, seed=seed, proposals_per_step=1,
                steps=steps,
            )  # fmt: skip
    chosen = module.best_per_agent(tmp_path)
    assert chosen["a"]["meta_reward"] == "g2"  # 0.9 on seeds 0 and 1; g3 only on seed 2
    assert chosen["a"]["seeds_that_found_it"] == [0, 1]
    assert chosen["a"]["answer_mean"] == pytest.approx(0.9)
    assert chosen["b"]["meta_reward"] == "g1 + g2"


def test_comparison_table_wall_time_leaves_out_the_gap_before_a_resume(tmp_path):
    """A run stopped at night and resumed the next day worked for its clock's wall seconds, not
    for finish minus start; a result without a clock falls back to the timestamps. Result files
    are TEST DATA."""
    import json

    from derl_bench.report.tables import agent_rows

    clock_of_seed_0 = {
        "simulated_seconds": 500.0, "agent_seconds": 90.0, "budget_seconds": None,
        "stopped_by_budget": False, "wall_seconds": 100.0,
    }  # fmt: skip
    for seed, clock in ((0, clock_of_seed_0), (1, None)):
        path = write_synthetic_result(
            tmp_path, env_id="DERL-Test-v0", agent="a", seed=seed, proposals_per_step=1,
            steps=[("g1", 0.5)],
        )  # fmt: skip
        record = json.loads(path.read_text())
        record["started_at"] = "2026-01-01T00:00:00.000Z"
        record["finished_at"] = "2026-01-02T00:00:00.000Z"  # a day later
        if clock is None:
            record.pop("clock", None)
        else:
            record["clock"] = clock
        path.write_text(json.dumps(record))
    loaded = load_run_dir(tmp_path)
    assert len(loaded.results) == 2, loaded
    (row,) = agent_rows(loaded.results)
    assert row.wall_seconds == pytest.approx((100.0 + 86_400.0) / 2)


def test_proposal_quality_compares_iteration_means_paired_by_seed(tmp_path):
    """scripts/proposal_quality.py: per seed, the mean answer of each iteration's valid
    proposals; over the last K iterations, A minus B paired by seed, with the bootstrap interval
    and the Wilcoxon p; refuses agents without shared seeds. Result files are TEST DATA."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "proposal_quality", Path(__file__).parent.parent / "scripts" / "proposal_quality.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # A learns: its second iteration beats the first on every seed; B does not change.
    for seed in range(6):
        lift = 0.05 * seed
        write_synthetic_result(
            tmp_path, env_id="DERL-Test-v0", agent="a", seed=seed, proposals_per_step=2,
            steps=[("g1", 0.2), ("g2", 0.4), ("g3", 0.7 + lift), ("(g1", None)],
        )  # fmt: skip
        write_synthetic_result(
            tmp_path, env_id="DERL-Test-v0", agent="b", seed=seed, proposals_per_step=2,
            steps=[("g1", 0.2), ("g2", 0.4), ("g4", 0.3), ("g1 + g2", 0.3)],
        )  # fmt: skip
    summary = module.main([str(tmp_path), "--agents", "a,b", "--last", "1", "--out", str(tmp_path)])
    assert summary["seeds"] == list(range(6))
    # seed 2: iteration means a = [0.3, 0.8] (the invalid proposal is left out), b = [0.3, 0.3]
    assert summary["last_window"]["a"][2] == pytest.approx(0.8)
    assert summary["paired_first"]["mean"] == pytest.approx(0.0)
    assert summary["paired_first"]["wilcoxon_p"] is None  # identical pairs: no test
    last = summary["paired_last"]
    assert last["differences"] == pytest.approx([0.4 + 0.05 * s for s in range(6)])
    assert last["mean"] == pytest.approx(0.525)
    assert last["ci95"][0] <= 0.525 <= last["ci95"][1] and last["ci95"][0] > 0.4
    assert last["seeds_a_higher"] == 6 and last["wilcoxon_p"] == pytest.approx(1 / 32)
    written = json.loads((tmp_path / "proposal_quality.json").read_text())
    assert written["paired_last"] == last
    assert "| last 1 | " in (tmp_path / "proposal_quality.md").read_text()
    with pytest.raises(SystemExit, match="share 0 finished seed"):
        module.main([str(tmp_path), "--agents", "a,c", "--out", str(tmp_path)])
