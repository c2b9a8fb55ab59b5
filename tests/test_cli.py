"""The derl-bench command line, driven through typer's CliRunner.

Runs use the FAKE MetaRewardEnv of test_runner.py (for unit tests only; no inner training).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium
import pytest
from test_runner import FAKE_ENV_ID, TEST_CALLS, register_fake_env
from typer.testing import CliRunner

from derl_bench.cli import MAIN_JOB_PRESET, app
from derl_bench.envs.data import DATA_ENV_VAR
from derl_bench.results import load_result
from derl_bench.runner import derl_env_ids

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fake_env() -> None:
    register_fake_env()
    TEST_CALLS.clear()


def _invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_help_shows_examples():
    result = _invoke("--help")
    assert result.exit_code == 0
    assert "Examples" in result.output and "derl-bench run" in result.output
    run_help = _invoke("run", "--agent", "heuristic", "--help")
    assert run_help.exit_code == 0
    assert "--seeds" in run_help.output and "Examples" in run_help.output


def test_ls_primitives_lists_g1_to_g4():
    result = _invoke("ls", "primitives", "--set", "math")
    assert result.exit_code == 0, result.output
    for name in ("g1", "g2", "g3", "g4"):
        assert name in result.output
    assert "boxed" in result.output


def test_ls_primitives_unknown_set_exits_2():
    result = _invoke("ls", "primitives", "--set", "mathh")
    assert result.exit_code == 2
    assert "Did you mean 'math'" in result.output


def test_ls_envs_lists_only_derl_bench_ids():
    result = _invoke("ls", "envs")
    assert result.exit_code == 0, result.output
    assert FAKE_ENV_ID in gymnasium.registry
    assert FAKE_ENV_ID not in result.output  # registered, but not by derl_bench
    for env_id in derl_env_ids():  # DERL-GSM8K-v0, DERL-MATH-v0, ... once registered
        assert env_id in result.output


def test_ls_tables_says_what_each_table_can_answer(tmp_path):
    """`ls tables`: per shipped table its size, test coverage, surrogate, held-out rho and
    build status (read from the tables themselves)."""
    import re
    import shutil

    from derl_bench.fidelity.table import table_dir, table_overview

    rows = {(r["env_id"], r["preset"]): r for r in table_overview()}
    cpu = rows[("DERL-CartPole-v0", "cpu")]
    report = json.loads(
        (
            Path(__file__).resolve().parents[1] / "docs/fidelity/DERL-CartPole-v0-cpu.json"
        ).read_text()
    )
    assert (cpu["keys"], cpu["entries"], cpu["seeds"]) == (
        report["keys"],
        report["entries"],
        report["seeds"],
    )
    assert cpu["surrogate"] == f"{report['chosen']} on {report['chosen_features']}"
    assert cpu["with_test"] == cpu["entries"]
    result = _invoke("ls", "tables")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "DERL-CartPole-v0" in x and "cpu" in x)
    assert re.search(rf"\b{cpu['keys']}\b.*\b{cpu['entries']}\b", line)
    assert f"{cpu['heldout_rho']:.3f}" in line
    # a table whose build has not finished says so
    shutil.copytree(
        table_dir("DERL-CartPole-v0", "smoke"), table_dir("DERL-CartPole-v0", "smoke", tmp_path)
    )
    from derl_bench.fidelity_build import record_build_status

    record_build_status(table_dir("DERL-CartPole-v0", "smoke", tmp_path), complete=False)
    result = _invoke("ls", "tables", "--root", str(tmp_path))
    assert result.exit_code == 0 and "building" in result.output
    assert len([x for x in result.output.splitlines() if "DERL-" in x]) == 1


def test_ls_agents_lists_heuristic():
    result = _invoke("ls", "agents")
    assert result.exit_code == 0, result.output
    assert "heuristic" in result.output


def test_run_unknown_env_exits_2_with_message_and_no_traceback(tmp_path):
    result = _invoke(
        "run",
        "--agent",
        "heuristic",
        "--env",
        "DERL-GSM9K-v0",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert result.exit_code == 2
    assert "Unknown environment id 'DERL-GSM9K-v0'" in result.output
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_run_unknown_agent_exits_2(tmp_path):
    result = _invoke(
        "run",
        "--agent",
        "heuristic",
        "--env",
        FAKE_ENV_ID,
        "--agent",
        "heuristik",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert "Did you mean 'heuristic'" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--preset", "fast"],
        ["--seeds", "0,x"],
        ["--budget", "0"],
        ["--proposals", "0"],
        ["--group-size", "0"],
    ],
)
def test_run_bad_options_exit_2(tmp_path, args):
    result = _invoke(
        "run", "--agent", "heuristic", "--env", FAKE_ENV_ID, "--out", str(tmp_path), *args
    )
    assert result.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_auto_fidelity_answers_from_a_surrogate_only_for_a_real_table(capsys):
    """`--fidelity auto` (run's default) picks the surrogate only where a table of at least
    AUTO_SURROGATE_MIN_KEYS meta-rewards ships; the nine cells a signal check leaves, or no
    table at all, mean live. Shipped tables: CartPole smoke 24 keys, ScienceWorld-L2-v2 cpu 9."""
    from derl_bench.cli import AUTO_SURROGATE_MIN_KEYS, _resolve_fidelity

    assert AUTO_SURROGATE_MIN_KEYS > 9
    assert _resolve_fidelity("auto", "DERL-CartPole-v0", "smoke") == "surrogate"
    said = capsys.readouterr().err
    assert "holds 24 meta-rewards" in said
    # ... and how well its surrogate ranks held-out meta-rewards (the report's number)
    report_path = Path(__file__).resolve().parents[1] / "docs/fidelity/DERL-CartPole-v0-smoke.json"
    report = json.loads(report_path.read_text())
    chosen = report["feature_sets"][report["chosen_features"]][report["chosen"]]
    assert f"Spearman rho {chosen['spearman_rho']:.3f}, see docs/fidelity/" in said
    assert _resolve_fidelity("auto", "DERL-ScienceWorld-L2-v2", "cpu") == "live"
    assert "holds 9 meta-rewards, fewer than" in capsys.readouterr().err
    assert _resolve_fidelity("auto", "DERL-GSM8K-v0", "smoke") == "live"
    assert "no table ships" in capsys.readouterr().err
    assert _resolve_fidelity("table", "DERL-ScienceWorld-L2-v2", "cpu") == "table"


def test_auto_fidelity_stays_live_on_a_table_whose_surrogate_is_not_measured(
    tmp_path, monkeypatch, capsys
):
    """A table being built crosses AUTO_SURROGATE_MIN_KEYS before anyone measures its surrogate
    (Arith-v2's did): auto stays live and names the command that measures it; once the report
    has recorded the held-out error, auto answers from the surrogate and quotes it."""
    import shutil

    from derl_bench.cli import _resolve_fidelity
    from derl_bench.fidelity import table as table_module
    from derl_bench.fidelity_report import surrogate_report

    folder = table_module.table_dir("DERL-CartPole-v0", "smoke", tmp_path)
    shutil.copytree(table_module.table_dir("DERL-CartPole-v0", "smoke"), folder)
    meta = json.loads((folder / "meta.json").read_text())
    for name in ("surrogate_heldout", "surrogate_model", "surrogate_features"):
        meta.pop(name, None)
    (folder / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(table_module, "TABLES_DIR", tmp_path)
    assert _resolve_fidelity("auto", "DERL-CartPole-v0", "smoke") == "live"
    said = " ".join(capsys.readouterr().err.split())
    assert "holds 24 meta-rewards, but its surrogate's held-out error is not measured" in said
    assert "derl-bench fidelity report --env DERL-CartPole-v0 --preset smoke" in said
    report = surrogate_report(
        "DERL-CartPole-v0", "smoke", root=tmp_path, folds=3, models=("knn",), out=tmp_path / "d"
    )
    assert _resolve_fidelity("auto", "DERL-CartPole-v0", "smoke") == "surrogate"
    rho = report["feature_sets"][report["chosen_features"]][report["chosen"]]["spearman_rho"]
    assert f"Spearman rho {rho:.3f}" in capsys.readouterr().err


def test_run_without_options_is_the_main_job(tmp_path, recwarn):
    """The README's first command: a full outer budget at the surrogate, then a live check."""
    import re

    from derl_bench.results import load_result

    result = _invoke("run", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    # Its id is v0 on purpose; gymnasium's "out of date" notice would read as a fault.
    assert not [w for w in recwarn if "out of date" in str(w.message)]
    record = load_result(tmp_path / "DERL-CartPole-v0" / "evolution" / "seed0.json")
    assert record["fidelity"] == "surrogate" and len(record["meta_steps"]) == 160
    assert record["env_spec"]["kwargs"]["preset"] == MAIN_JOB_PRESET
    assert result.output.count("  meta-step ") == 20  # the trajectory, one line per round of 8
    assert (tmp_path / "DERL-CartPole-v0" / "evolution" / "plots").is_dir()
    check = re.search(r"surrogate validation success ([\d.]+), live ([\d.]+)", result.output)
    assert check, result.output
    assert float(check.group(1)) == round(record["best"]["validation_success"], 3)
    assert 0.0 <= float(check.group(2)) <= 1.0


def test_run_fake_env_seeds_table_and_files(tmp_path):
    result = _invoke(
        "run",
        "--agent",
        "heuristic",
        "--env",
        FAKE_ENV_ID,
        "--preset",
        "smoke",
        "--seeds",
        "0,1",
        "--budget",
        "3",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    paths = [tmp_path / FAKE_ENV_ID / "heuristic" / f"seed{s}.json" for s in (0, 1)]
    for path in paths:
        record = load_result(path)
        assert record["status"] == "finished"
        assert record["preset"] == "smoke"
        assert str(path) in result.output
    assert len(TEST_CALLS) == 2
    assert "best meta-reward" in result.output and "test success" in result.output


def test_run_deprecated_group_size_option_still_sets_proposals_per_step(tmp_path):
    args = [
        "run",
        "--agent",
        "heuristic",
        "--env",
        FAKE_ENV_ID,
        "--budget",
        "3",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    result = _invoke(*args, "--group-size", "2")
    assert result.exit_code == 0, result.output
    assert "--group-size is deprecated" in result.output
    record = load_result(tmp_path / FAKE_ENV_ID / "heuristic" / "seed0.json")
    assert record["proposals_per_step"] == 2 and "group_size" not in record
    assert "--group-size" not in _invoke("run", "--agent", "heuristic", "--help").output  # hidden


def test_run_crash_reports_partial_file(tmp_path, monkeypatch):
    import derl_bench.runner

    real_make = gymnasium.make

    def make_crashing(env_id, **kwargs):
        return real_make(env_id, crash_at=1, **kwargs)

    monkeypatch.setattr(derl_bench.runner.gymnasium, "make", make_crashing)
    result = _invoke(
        "run", "--agent", "heuristic", "--env", FAKE_ENV_ID, "--out", str(tmp_path), "--no-progress"
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError)
    path = tmp_path / FAKE_ENV_ID / "heuristic" / "seed0.json"
    assert str(path) in result.output
    assert load_result(path)["status"] == "failed"


def test_run_data_dir_sets_env_var_for_the_run_only(tmp_path, monkeypatch):
    import derl_bench.runner

    seen: list[str | None] = []
    real_run = derl_bench.runner.run

    def spy(*args, **kwargs):
        seen.append(os.environ.get(DATA_ENV_VAR))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(derl_bench.runner, "run", spy)
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "out"
    result = _invoke(
        "run",
        "--agent",
        "heuristic",
        "--env",
        FAKE_ENV_ID,
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert seen == [str(data.resolve())]
    assert DATA_ENV_VAR not in os.environ


def test_run_missing_data_file_exits_2(tmp_path, monkeypatch):
    import derl_bench.runner
    from derl_bench.envs.data import DataFileMissing

    def missing(*args, **kwargs):
        raise DataFileMissing(tmp_path / "gsm8k" / "train.jsonl")

    monkeypatch.setattr(derl_bench.runner, "run", missing)
    result = _invoke("run", "--agent", "heuristic", "--out", str(tmp_path / "out"), "--no-progress")
    assert result.exit_code == 2
    assert "Data file not found" in result.output and DATA_ENV_VAR in result.output
    assert "Traceback" not in result.output


def test_validate_good_and_bad_files(tmp_path):
    result = _invoke(
        "run", "--agent", "heuristic", "--env", FAKE_ENV_ID, "--out", str(tmp_path), "--no-progress"
    )
    assert result.exit_code == 0, result.output
    good = tmp_path / FAKE_ENV_ID / "heuristic" / "seed0.json"
    ok = _invoke("validate", str(good))
    assert ok.exit_code == 0, ok.output
    assert "ok" in ok.output

    obj = json.loads(good.read_text())
    obj["seed"] = "zero"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj))
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    res = _invoke("validate", str(good), str(bad), str(not_json))
    assert res.exit_code == 1
    assert "INVALID" in res.output and "seed" in res.output
    assert res.output.count("INVALID") == 2


def test_validate_missing_file_exits_2(tmp_path):
    result = _invoke("validate", str(tmp_path / "nope.json"))
    assert result.exit_code == 2


# --- resuming and plotting ------------------------------------------------------------------


def _counting_env(monkeypatch, tmp_path):
    import resume_fakes

    resume_fakes.register_env()
    counter = tmp_path / "counter"
    monkeypatch.setenv(resume_fakes.COUNTER_VAR, str(counter))
    return resume_fakes, counter


def test_run_help_shows_resume_option():
    result = _invoke("run", "--agent", "heuristic", "--help")
    assert result.exit_code == 0
    assert "--resume" in result.output and "--no-resume" in result.output


def test_run_interrupted_then_same_command_resumes(tmp_path, monkeypatch):
    fakes, counter = _counting_env(monkeypatch, tmp_path)
    args = [
        "run",
        "--agent",
        "heuristic",
        "--env",
        fakes.ENV_ID,
        "--budget",
        "4",
        "--proposals",
        "3",
    ]
    args += ["--out", str(tmp_path / "out"), "--no-progress"]
    monkeypatch.setenv(fakes.INTERRUPT_VAR, "2")
    interrupted = _invoke(*args)
    assert interrupted.exit_code == 130, interrupted.output
    assert "interrupted" in interrupted.output
    monkeypatch.delenv(fakes.INTERRUPT_VAR)
    assert len(fakes.trained(counter)) == 2

    resumed = _invoke(*args)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 2 of 4 meta-steps done" in resumed.output
    record = load_result(tmp_path / "out" / fakes.ENV_ID / "heuristic" / "seed0.json")
    assert record["status"] == "finished" and len(record["meta_steps"]) == 4
    steps = [line for line in fakes.trained(counter) if line.startswith("step ")]
    assert steps == ["step g1", "step g1 + g2", "step (g1 + g2 + g3 + g4) / 4", "step g2"]

    again = _invoke(*args)
    assert again.exit_code == 0, again.output
    assert "already finished" in again.output and "resuming" not in again.output
    assert len(fakes.trained(counter)) == 5  # 4 meta-steps and 1 test, nothing redone

    fresh = _invoke(*args, "--no-resume")
    assert fresh.exit_code == 0, fresh.output
    assert "resuming" not in fresh.output and "already finished" not in fresh.output
    assert len(fakes.trained(counter)) == 10


def test_run_resume_with_another_budget_exits_2_naming_the_fix(tmp_path, monkeypatch):
    fakes, counter = _counting_env(monkeypatch, tmp_path)
    base = [
        "run",
        "--agent",
        "heuristic",
        "--env",
        fakes.ENV_ID,
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    monkeypatch.setenv(fakes.INTERRUPT_VAR, "1")
    assert _invoke(*base, "--budget", "3").exit_code == 130
    monkeypatch.delenv(fakes.INTERRUPT_VAR)
    result = _invoke(*base, "--budget", "5")
    assert result.exit_code == 2
    assert "budget=3" in result.output and "budget=5" in result.output
    assert "--out" in result.output and "Traceback" not in result.output
    assert len(fakes.trained(counter)) == 1


def test_plot_writes_pngs_and_lists_them(tmp_path):
    from test_plots import PNG_MAGIC, write_synthetic_result

    write_synthetic_result(
        tmp_path,
        env_id="DERL-Test-v0",
        agent="a",
        seed=0,
        proposals_per_step=2,
        steps=[("g1", 0.2), ("g1 + g2", 0.5), ("g1 * g2", 0.4)],
    )
    result = _invoke("plot", str(tmp_path))
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert png.name in result.output


def test_plot_without_results_exits_2(tmp_path):
    result = _invoke("plot", str(tmp_path))
    assert result.exit_code == 2
    assert "no readable result file" in result.output


def test_compare_runs_every_agent_and_seed_then_writes_table_and_plots(tmp_path):
    result = _invoke(
        "compare",
        "--env",
        FAKE_ENV_ID,
        "--agents",
        "heuristic,random_tree",
        "--budget",
        "3",
        "--seeds",
        "0,1",
        "--proposals",
        "3",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / FAKE_ENV_ID
    for agent in ("heuristic", "random_tree"):
        for seed in (0, 1):
            assert load_result(folder / agent / f"seed{seed}.json")["status"] == "finished"
    table = (folder / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith(f"| {FAKE_ENV_ID}")]
    assert len(rows) == 2 and all("| 0,1 |" in row for row in rows)
    assert table in result.output
    assert len(list((folder / "plots").glob("*.png"))) == 3
    again = _invoke("table", str(folder))
    assert again.exit_code == 0 and again.output.strip() == table.strip()


def test_table_of_a_missing_folder_exits_2(tmp_path):
    result = _invoke("table", str(tmp_path / "nope"))
    assert result.exit_code == 2


def test_signal_writes_the_table_with_the_untrained_reference(tmp_path):
    # Real DERL-CartPole-v0 (smoke) cut to one GRPO iteration and 4 validation episodes.
    result = _invoke(
        "signal", "--env", "DERL-CartPole-v0", "--preset", "smoke", "--seeds", "0,1",
        "--meta-rewards", "g1 + g2;-g1", "--inner", "max_steps=1", "--inner", "n_val=4",
        "--out", str(tmp_path), "--table-dir", str(tmp_path / "tables"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = (tmp_path / "DERL-CartPole-v0-smoke.md").read_text()
    assert table in result.output
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert [line.split(" | ")[0] for line in lines[1:]] == [
        "| (untrained policy)",
        "| `g1 + g2`",
        "| `-g1`",
    ]
    payload = json.loads((tmp_path / "DERL-CartPole-v0-smoke.json").read_text())
    assert "SNR" in table and "ANOVA" in table and "untrained policy (" in table
    for key in ("snr", "anova_p", "bad_below_untrained", "wall_seconds", "provenance"):
        assert key in payload
    assert payload["provenance"]["lock_file"] == "requirements/lock-py311.txt"
    assert payload["wall_seconds"] > 0
    rows = {row["meta_reward"]: row for row in payload["rows"] + [payload["untrained"]]}
    assert rows["-g1"]["seeds"] == [0, 1]
    for row in rows.values():
        assert all(0.0 <= v <= 1.0 for v in row["validation_success"])
        assert [set(m) for m in row["primitive_means"]] == [{"g1", "g2", "g3", "g4"}] * 2
    # The reference row is the initial policy of each seed, scored as evaluate_initial does.
    env = gymnasium.make(
        "DERL-CartPole-v0", preset="smoke", inner_overrides={"max_steps": 1, "n_val": 4}
    )
    expected = [env.unwrapped.trainer.evaluate_initial(seed=s)[0].success for s in (0, 1)]
    env.close()
    assert rows["(untrained policy)"]["validation_success"] == expected


def test_signal_cells_are_table_entries_and_a_rerun_resumes(tmp_path, monkeypatch):
    # Real DERL-CartPole-v0 (smoke), one GRPO iteration: an interrupted check resumes, and its
    # cells are entries of a fidelity table (the overrides' own folder) that a build reuses.
    from derl_bench.fidelity.table import FidelityTable

    tables = tmp_path / "tables"
    args = [
        "signal", "--env", "DERL-CartPole-v0", "--preset", "smoke", "--seeds", "0",
        "--meta-rewards", "g1 + g2;-g1", "--inner", "max_steps=1", "--inner", "n_val=4",
        "--out", str(tmp_path), "--table-dir", str(tables),
    ]  # fmt: skip
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    (folder,) = tables.iterdir()
    assert folder.name.startswith("DERL-CartPole-v0-smoke-")  # overrides: never the preset's
    table = FidelityTable(folder)
    assert table.meta["env_kwargs"]["inner_overrides"] == {"max_steps": 1, "n_val": 4}
    assert sorted(e.canonical for k in table.keys for e in table.entries(k)) == ["-g1", "g1 + g2"]
    assert all(e.test_success is None and e.seed == 0 for k in table.keys for e in table.entries(k))
    payload = json.loads((tmp_path / "DERL-CartPole-v0-smoke.json").read_text())
    by_name = {r["meta_reward"]: r for r in payload["rows"]}
    for key in table.keys:
        (entry,) = table.entries(key)
        assert by_name[entry.canonical]["validation_success"] == [entry.validation_success]
    # Drop the last shard as an interruption before its write would: only that cell trains again.
    shards = sorted(folder.glob("entries-*.parquet"))
    assert len(shards) == 2
    shards[-1].unlink()
    import derl_bench.meta_env.executors as executors

    trained: list[str] = []
    real_run = executors.SyncExecutor.run

    def counting_run(self, env_id, env_kwargs, tasks):
        trained.extend(t.meta_reward for t in tasks)
        return real_run(self, env_id, env_kwargs, tasks)

    monkeypatch.setattr(executors.SyncExecutor, "run", counting_run)
    again = _invoke(*args)
    assert again.exit_code == 0, again.output
    assert trained == ["-g1"]
    assert again.output.count("(resumed)") == 1
    resumed = json.loads((tmp_path / "DERL-CartPole-v0-smoke.json").read_text())
    numbers = ("seeds", "validation_success", "primitive_means")
    assert {k: resumed["untrained"][k] for k in numbers} == {
        k: payload["untrained"][k] for k in numbers
    }
    assert resumed["rows"][0] == payload["rows"][0]  # read back, wall time included
    assert [{k: r[k] for k in numbers} for r in resumed["rows"]] == [
        {k: r[k] for k in numbers} for r in payload["rows"]
    ]
    # Other settings (here n_val) go to another folder and reuse nothing; --fresh trains again.
    trained.clear()
    other = _invoke(*[a if a != "n_val=4" else "n_val=3" for a in args])
    assert other.exit_code == 0, other.output
    assert trained == ["g1 + g2", "-g1"] and "(resumed)" not in other.output
    assert len(list(tables.iterdir())) == 2
    trained.clear()
    fresh = _invoke(*args, "--fresh")
    assert fresh.exit_code == 0 and trained == ["g1 + g2", "-g1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--inner", "max_steps"), "is not FIELD=JSON"),
        (("--inner", "no_such_field=1"), "Unknown inner setting"),
        (("--meta-rewards", "g9"), "is invalid"),
    ],
)
def test_signal_rejects_bad_input_with_a_clear_error(tmp_path, args, message):
    result = _invoke(
        "signal", "--env", "DERL-CartPole-v0", "--preset", "smoke", "--seeds", "0",
        "--out", str(tmp_path), "--table-dir", str(tmp_path / "tables"), *args,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_fidelity_build_dry_run_says_what_is_left_and_writes_nothing():
    """A user about to resume (or extend) a long table build asks what it has left and how long
    it takes; the shipped table is read, not changed."""
    from derl_bench.fidelity.table import FidelityTable

    before = FidelityTable.load("DERL-CartPole-v0", "smoke").sha256
    result = _invoke(
        "fidelity", "build", "--env", "DERL-CartPole-v0", "--preset", "smoke",
        "--seeds", "0-2", "--sample", "panel", "--workers", "2", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "dry run (nothing trained or written): sampled families: " in out
    assert "(panel " in out and "cost: " in out and "on 2 workers" in out
    assert FidelityTable.load("DERL-CartPole-v0", "smoke").sha256 == before


def test_build_and_signal_name_a_bad_env_and_build_a_folder_of_another_configuration():
    """Fidelity commands and ``signal`` name an unknown env id and the close ids (exit 2)."""
    commands = (
        ("fidelity", "build", "--dry-run"),
        ("signal",),
        ("fidelity", "check"),
        ("fidelity", "report", "--out", "/nonexistent/never-written"),
    )
    for command in commands:
        unknown = _invoke(*command, "--env", "DERL-CartPol-v0")
        assert unknown.exit_code == 2, command
        assert "Unknown environment id 'DERL-CartPol-v0'" in unknown.output
        assert "DERL-CartPole-v0" in unknown.output  # the close id suggested
    other = _invoke(
        "fidelity", "build", "--env", "DERL-CartPole-v0", "--preset", "smoke",
        "--inner", "max_steps=3", "--dry-run",
    )  # fmt: skip
    assert other.exit_code == 2  # a message, not a traceback
    message = " ".join(other.output.split())
    assert "holds a table of another configuration" in message and "Use another --out" in message


def test_fidelity_check_without_options_checks_the_shipped_cpu_cartpole_table():
    """``derl-bench fidelity check`` with no options re-runs the 3 cheapest entries of the
    table the docs publish (CartPole at ``cpu``, the preset ``build`` and ``run`` default to)
    live, and finds them equal."""
    result = _invoke("fidelity", "check")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " @ seed " in line]
    assert len(lines) == 3 and all(line.endswith(": equal") for line in lines)
