"""Leaderboard submissions: validate accepts the shipped ones, rejects each kind of bad one with
its own message; render is deterministic, escapes submission text and matches the committed pages.

Bad submissions are generated from a shipped (real) one. The table-track re-check uses a fake
fidelity env (labelled FAKE below): the real table fidelity (issue 15) is not on this branch.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from derl_bench.cli import app
from derl_bench.leaderboards import render_leaderboard, validate_paths
from derl_bench.leaderboards.model import MAX_SUBMISSION_BYTES, Submission
from derl_bench.leaderboards.pack import pack_results
from derl_bench.leaderboards.recheck import fidelity_scores
from derl_bench.leaderboards.render import markdown_text, render_outputs, submission_files
from derl_bench.leaderboards.validate import check_submission
from derl_bench.meta_reward import InvalidMetaReward, parse
from derl_bench.results import best_meta_step

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "leaderboards"
SHIPPED = submission_files(BOARD)
GOOD = BOARD / "DERL-CartPole-v0" / "live-smoke-16--heuristic.json"


def _good() -> dict[str, Any]:
    return json.loads(GOOD.read_text())


def _write(tmp_path: Path, obj: Any, name: str = "sub.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, indent=1))
    return path


def _lines(path: Path, against: list[Path] | None = None, make: Any = None) -> list[str]:
    (report,) = validate_paths([path], against=against or [], make=make)
    return [p.line() for p in report.problems]


def test_shipped_submissions_are_accepted() -> None:
    assert len(SHIPPED) >= 3, "the seed entries are missing"
    reports = validate_paths(SHIPPED, against=SHIPPED)
    assert [(r.path.name, [p.line() for p in r.problems]) for r in reports] == [
        (p.name, []) for p in SHIPPED
    ]
    roles = {r.submission.role for r in reports}
    assert roles == {"entry", "outcome_only_baseline"}


def _set(path: str, value: Any):
    def mutate(obj: dict[str, Any]) -> None:
        keys = re.findall(r"[^.\[\]]+", path)
        target = obj
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _delete(path: str):
    def mutate(obj: dict[str, Any]) -> None:
        *head, last = path.split(".")
        target = obj
        for key in head:
            target = target[key]
        del target[last]

    return mutate


def _shift_mean(obj: dict[str, Any]) -> None:
    mean = obj["reported"]["test_success_mean"]
    obj["reported"]["test_success_mean"] = mean - 0.1 if mean >= 0.1 else mean + 0.1


def _over_budget(obj: dict[str, Any]) -> None:
    obj["results"][0]["budget"] = obj["results"][0]["env_spec"]["kwargs"]["budget"] = 64


def _unparsable_valid_step(obj: dict[str, Any]) -> None:
    obj["results"][0]["meta_steps"][-1]["meta_reward"] = "__import__('os').system('ls')"


BAD_CASES = [
    ("missing field", _delete("authors"), "authors: missing (required)"),
    ("unknown field", _set("extra", 1), "'extra': unexpected field"),
    ("mistyped field", _set("reported.n_seeds", "3"), "reported.n_seeds: '3' is not of type"),
    (
        "mistyped result field",
        _set("results.0.seed", "0"),
        "results[0].seed: '0' is not of type 'integer'",
    ),
    (
        "NaN",
        _set("reported.test_success_mean", math.nan),
        "reported.test_success_mean: is nan, not a finite number",
    ),
    (
        "inf",
        _set("results.1.meta_steps.0.cost.wall_seconds", math.inf),
        "results[1].meta_steps[0].cost.wall_seconds: is inf, not a finite number",
    ),
    (
        "negative track budget",
        _set("track.budget_meta_steps", -16),
        "track.budget_meta_steps: -16 is not one of [16, 64, 160]",
    ),
    (
        "negative run budget",
        _set("results.0.budget", -1),
        "results[0].budget: -1 is less than the minimum of 1",
    ),
    (
        "unknown env id",
        _set("track.env_id", "DERL-CartPol-v0"),
        "track.env_id: unknown env id 'DERL-CartPol-v0'. Did you mean 'DERL-CartPole-v0'",
    ),
    (
        "mismatched spec",
        _set("results.0.env_spec.kwargs.domain", "pendulum"),
        "results[0].env_spec.kwargs.domain: 'pendulum', but DERL-CartPole-v0 registers 'cartpole'",
    ),
    (
        "spec keyword that changes the rules",
        _set("results.2.env_spec.kwargs.inner_overrides", {"max_steps": 1}),
        "results[2].env_spec.kwargs.inner_overrides: {'max_steps': 1} changes the rules",
    ),
    (
        "unknown data hash",
        _set("results.0.data_hashes", {"gsm8k/train.jsonl": "0" * 64}),
        "results[0].data_hashes.gsm8k/train.jsonl: 000000000000… differs from the known",
    ),
    (
        "unknown lock hash",
        _set("results.0.provenance.lock_sha256", "f" * 64),
        "results[0].provenance.lock_sha256: ffffffffffff… is not a lock derl_bench knows",
    ),
    (
        "made outside the lock",
        _set("results.0.provenance.lock_sha256", None),
        "results[0].provenance.lock_sha256: missing: the run was not made under a lock",
    ),
    (
        "run budget over the track",
        _over_budget,
        "results[0].budget: 64 meta-steps is over the track's 16",
    ),
    (
        "mean that disagrees with its seeds",
        _shift_mean,
        "reported.test_success_mean: ",
    ),
    (
        "meta-reward that does not parse",
        _unparsable_valid_step,
        "is marked valid but derl_bench's parser refuses it",
    ),
    (
        "method name with markup",
        _set("method", "<script>alert(1)</script>"),
        "method: '<script>alert(1)</script>' contains markup characters",
    ),
    ("bad code URL", _set("code_url", "javascript:alert(1)"), "code_url: 'javascript:alert(1)'"),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_submission_is_rejected_with_its_message(
    tmp_path: Path, name: str, mutate: Any, expected: str
) -> None:
    obj = _good()
    mutate(obj)
    lines = _lines(_write(tmp_path, obj))
    assert any(expected in line for line in lines), lines
    assert all("; fix: " in line for line in lines)


def test_each_rejection_has_its_own_message(tmp_path: Path) -> None:
    firsts = []
    for _name, mutate, _ in BAD_CASES:
        obj = _good()
        mutate(obj)
        firsts.append(_lines(_write(tmp_path, obj, f"{len(firsts)}.json"))[0])
    assert len(set(firsts)) == len(BAD_CASES), firsts


def test_duplicate_submission_is_rejected(tmp_path: Path) -> None:
    copy_path = _write(tmp_path, _good(), "again.json")
    lines = _lines(copy_path, against=SHIPPED)
    assert any("method: " in x and "is already on this track" in x for x in lines), lines
    assert any("the same result file is already submitted" in x for x in lines), lines


def test_too_few_seeds_and_duplicate_seeds(tmp_path: Path) -> None:
    obj = _good()
    obj["results"] = obj["results"][:2]
    sub = pack_results(obj["results"], method="m", authors=["a"], code_url="derl_bench/x.py")
    lines = _lines(_write(tmp_path, sub.to_json()))
    assert lines == [
        "results: 2 distinct seed(s); a live track needs at least 3; fix: run at least 3 seeds "
        "(e.g. --seeds 0,1,2)"
    ]
    obj = _good()
    obj["results"][2] = copy.deepcopy(obj["results"][1])
    lines = _lines(_write(tmp_path, obj))
    assert any("seed(s) [1] appear more than once" in x for x in lines), lines


def test_a_ten_megabyte_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.json"
    text = json.dumps(_good())
    path.write_text(text[:-1] + " " * (10 * 1024 * 1024 - len(text)) + "}")
    assert path.stat().st_size == 10 * 1024 * 1024 > MAX_SUBMISSION_BYTES

    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr("derl_bench.leaderboards.model.json.loads", no_parsing)
    (line,) = _lines(path)
    assert line.startswith("<file>: is 10,485,760 bytes, over the limit of 5,242,880 bytes")


def test_validity_flags_are_rechecked_with_the_parser(tmp_path: Path) -> None:
    obj = _good()
    step = obj["results"][0]["meta_steps"][-1]  # a repeat of an earlier proposal: never the best
    step.update(valid=False, invalid_reason="failed", error="worker died", reward=-1.0)
    step["validation_success"] = None
    assert _lines(_write(tmp_path, obj)) == []  # a valid meta-reward whose training failed
    step["invalid_reason"] = "syntax"
    del step["error"]
    (line,) = _lines(_write(tmp_path, obj))
    assert line.startswith("results[0].meta_steps[15].valid: false, but derl_bench's parser ")


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"method": "a", "method": "b"}')
    (line,) = _lines(path)
    assert "duplicate key 'method'" in line


# ------------------------------------------------------- table track, FAKE fidelity env


class FakeTableEnv:
    """FAKE fidelity env for unit tests only: answers each meta-step from a made-up table.

    Stands in for ``gymnasium.make(env_id, fidelity="table", preset=...)`` (issue 15, not on this
    branch): reward = a fixed function of the canonical meta-reward and the seed; invalid -> -1.
    """

    calls: list[dict[str, Any]] = []

    def __init__(self, env_id: str, **kwargs: Any) -> None:
        FakeTableEnv.calls.append({"env_id": env_id, **kwargs})
        self.seed = None

    @staticmethod
    def answer(meta_reward: str, seed: int) -> float:
        try:
            canonical = parse(meta_reward).canonical
        except InvalidMetaReward:
            return -1.0
        return (sum(map(ord, canonical)) * 7 + seed) % 11 / 10

    def reset(self, *, seed: int) -> tuple[dict, dict]:
        self.seed = seed
        return {}, {}

    def step(self, meta_reward: str) -> tuple[dict, float, bool, bool, dict]:
        return {}, self.answer(meta_reward, self.seed), False, False, {}

    def close(self) -> None:
        pass


def _table_submission(n_seeds: int = 5) -> dict[str, Any]:
    """A table-track submission built from the shipped live runs, scored by the FAKE table."""
    base = _good()["results"]
    results = []
    for seed in range(n_seeds):
        record = copy.deepcopy(base[seed % len(base)])
        record["seed"] = seed
        record["env_spec"]["kwargs"]["fidelity"] = "table"
        for step in record["meta_steps"]:
            if step["valid"]:
                score = FakeTableEnv.answer(step["meta_reward"], seed)
                step["validation_success"] = step["reward"] = score
        record["best"] = best_meta_step(record["meta_steps"])
        results.append(record)
    sub = pack_results(results, method="m", authors=["a"], code_url="derl_bench/x.py")
    return sub.to_json()


def test_fidelity_scores_replays_the_run_through_the_env() -> None:
    FakeTableEnv.calls.clear()
    scores = fidelity_scores(
        "DERL-CartPole-v0",
        fidelity="table",
        preset="smoke",
        seed=3,
        budget=16,
        meta_rewards=["g1", "g1 +", "g1 + g2"],
        make=FakeTableEnv,
    )
    assert scores == [FakeTableEnv.answer("g1", 3), -1.0, FakeTableEnv.answer("g1 + g2", 3)]
    assert FakeTableEnv.calls == [
        {"env_id": "DERL-CartPole-v0", "fidelity": "table", "preset": "smoke", "budget": 16}
    ]


def test_table_track_scores_agreeing_with_the_fidelity_are_accepted(tmp_path: Path) -> None:
    assert _lines(_write(tmp_path, _table_submission()), make=FakeTableEnv) == []


def _contradict(obj: dict[str, Any], result: int, index: int) -> tuple[dict[str, Any], float]:
    """Report another score for one meta-step (the rest of the submission kept consistent)."""
    step = obj["results"][result]["meta_steps"][index]
    claimed = 1.0 if step["reward"] != 1.0 else 0.9
    step["reward"] = step["validation_success"] = claimed
    record = obj["results"][result]
    record["best"] = best_meta_step(record["meta_steps"])
    bests = [r["best"]["validation_success"] if r["best"] else 0.0 for r in obj["results"]]
    obj["reported"]["best_validation_mean"] = math.fsum(bests) / len(bests)
    return step, claimed


def test_table_track_scores_the_fidelity_contradicts_are_rejected(tmp_path: Path) -> None:
    obj = _table_submission()
    step, claimed = _contradict(obj, 3, 1)
    lines = _lines(_write(tmp_path, obj), make=FakeTableEnv)
    truth = FakeTableEnv.answer(step["meta_reward"], 3)
    assert lines == [
        f"results[3].meta_steps[1].reward: reported {claimed!r}, but the table fidelity returns "
        f"{truth!r} for {step['meta_reward']!r} at seed 3; fix: report what the fidelity returns "
        "(do not edit result files)"
    ]


def test_a_contradicted_run_made_on_another_table_is_told_the_table_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shipped tables grow shard by shard: when a run's scores disagree and the run names
    another table version (``fidelity_source``) than the one installed, the fix says so."""
    source = {
        "table": "DERL-CartPole-v0-smoke",
        "keys": 10,
        "entries": 20,
        "sha256": "a" * 64,
        "surrogate_model": None,
        "surrogate_features": None,
    }
    obj = _table_submission()
    for record in obj["results"]:
        record["fidelity_source"] = dict(source)
    _contradict(obj, 2, 0)
    path = _write(tmp_path, obj)
    installed = {**source, "keys": 12, "entries": 26, "sha256": "b" * 64}
    monkeypatch.setattr(FakeTableEnv, "fidelity_source", installed, raising=False)
    (line,) = _lines(path, make=FakeTableEnv)
    assert line.startswith("results[2].meta_steps[0].reward: reported ")
    assert line.endswith(
        "fix: this run was answered by table 'DERL-CartPole-v0-smoke' with 10 keys, 20 entries "
        "(sha256 aaaaaaaaaaaa...); this derl_bench's has 12 keys, 26 entries (sha256 "
        "bbbbbbbbbbbb...): the table changed since, so re-run the seeds with this version (or "
        "validate with the one that made them)"
    )
    # the same table: the plain fix
    monkeypatch.setattr(FakeTableEnv, "fidelity_source", dict(source), raising=False)
    (line,) = _lines(path, make=FakeTableEnv)
    assert line.endswith("fix: report what the fidelity returns (do not edit result files)")


def test_table_track_needs_five_seeds_and_a_fidelity_that_answers(tmp_path: Path) -> None:
    lines = _lines(_write(tmp_path, _table_submission(n_seeds=4)), make=FakeTableEnv)
    assert lines == [
        "results: 4 distinct seed(s); a table track needs at least 5; fix: run at least 5 seeds "
        "(e.g. --seeds 0,1,2,3,4)"
    ]

    def broken(env_id: str, **kwargs: Any) -> Any:
        raise TypeError("MetaRewardEnv.__init__() got an unexpected keyword argument 'fidelity'")

    lines = _lines(_write(tmp_path, _table_submission()), make=broken)
    assert len(lines) == 5
    assert "could not be re-checked with the table fidelity (TypeError" in lines[0]


# ------------------------------------------------------------------------------ rendering


def _small_live_board() -> list[Submission]:
    """The live track's outcome-only baseline, its shipped derl_pop entry and one more entry.

    Ranking bootstraps every entry (2,000 resamples each), so tests about one row's rendering
    use this small board; the whole board is ranked by the freshness and browser tests.
    """
    live = [
        r.submission for r in validate_paths([p for p in SHIPPED if p.name.startswith("live-")])
    ]
    baseline = next(s for s in live if s.role == "outcome_only_baseline")
    pop = next(s for s in live if s.agent_name == "derl_pop")
    other = next(s for s in live if s.role == "entry" and s is not pop)
    return [other, baseline, pop]


def _hostile(submission: Submission) -> Submission:
    return dataclasses.replace(
        submission,
        method="<script>alert(1)</script>",
        authors=("<img src=x onerror=alert(2)>", "A | B", "[x](javascript:alert(3))"),
        notes="</p><script>alert(4)</script>",
        agent_config={"k": "</pre><script>alert(5)</script>"},
        code_url="https://example.org/a?b=1&c=<d>",
    )


def test_render_escapes_submission_text_in_both_outputs() -> None:
    submissions = _small_live_board()
    submissions[0] = _hostile(submissions[0])
    pages = render_outputs(submissions)
    page, markdown = pages["index.html"], pages["README.md"]
    for text in (page, markdown):
        assert "<script>alert" not in text
        assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in markdown
    assert page.count("<script>") == 1  # ours only
    assert 'href="https://example.org/a?b=1&amp;c=&lt;d&gt;"' in page
    assert "javascript:" not in page.replace("[x](javascript:alert(3))", "")
    row = next(line for line in markdown.splitlines() if "alert\\(1\\)" in line)
    assert row.count(" | ") == 10  # eleven columns: no pipe from a submission breaks the row
    assert "A \\| B" in row
    assert markdown_text("[x](javascript:alert(3))") == "\\[x\\]\\(javascript:alert\\(3\\)\\)"


def test_derl_pops_chained_test_is_shown_beside_not_ranked() -> None:
    from derl_bench.leaderboards.ranking import rank_tracks

    live = _small_live_board()
    entry = next(s for s in live if s.role == "entry")
    chained = [0.25 + 0.25 * i for i in range(len(entry.results))]
    results = tuple(
        {**r, "chained_test": {"test_success": v, "n_test": 4, "cost": r["test_cost"]}}
        for r, v in zip(entry.results, chained, strict=True)
    )
    pop = dataclasses.replace(entry, method="Warm-started entry", results=results)
    (ranking,) = rank_tracks([*(s for s in live if s is not entry), pop])
    row = next(r for r in ranking.rows if r.submission is pop)
    assert row.chained_test_mean == pytest.approx(float(np.mean(chained)))
    plain = rank_tracks([entry, *(s for s in live if s is not entry)])[0]
    assert [r.test_success for r in plain.rows if r.submission is entry] == [row.test_success]
    others = [r for r in ranking.rows if r is not row]
    assert all(r.chained_test_mean is None for r in others if r.submission.agent_name != "derl_pop")
    shipped_pop = [r for r in others if r.submission.agent_name == "derl_pop"]
    assert shipped_pop and all(r.chained_test_mean is not None for r in shipped_pop)  # seed entry
    pages = render_outputs([*(s for s in live if s is not entry), pop])
    line = next(x for x in pages["README.md"].splitlines() if "Warm-started entry" in x)
    assert f"| {np.mean(chained):.3f} |" in line
    assert f'data-sort="{np.mean(chained):.6f}"' in pages["index.html"]


def test_render_is_deterministic_and_the_committed_pages_are_fresh() -> None:
    first = render_leaderboard(str(BOARD), write=False)
    second = render_leaderboard(str(BOARD), write=False)
    assert first == second
    for name, text in first.items():
        committed = (BOARD / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"leaderboards/{name} is stale: run `derl-bench leaderboard render leaderboards`"
        )


def test_intervals_are_rliables_stratified_bootstrap() -> None:
    from rliable import library, metrics

    from derl_bench.leaderboards import ranking

    rng = np.random.default_rng(0)
    scores = rng.random((7, 3))
    interval = ranking.iqm_interval(scores)
    assert interval.value == metrics.aggregate_iqm(scores)
    assert interval.low < interval.value < interval.high
    np.random.seed(123)  # the caller's global RNG state neither changes the interval ...
    assert ranking.iqm_interval(scores) == interval
    assert np.random.random() == np.random.RandomState(123).random_sample()  # ... nor is changed
    np.random.seed(ranking.BOOTSTRAP_SEED)  # rliable resamples runs with numpy's global RNG
    _, expected = library.get_interval_estimates(
        {"a": scores},
        lambda s: np.array([metrics.aggregate_iqm(s)]),
        reps=ranking.BOOTSTRAP_REPS,
        random_state=np.random.RandomState(ranking.BOOTSTRAP_SEED),
    )
    assert np.allclose([interval.low, interval.high], np.ravel(expected["a"]))
    x, y = rng.random(6), rng.random(4)
    y[1] = x[2]  # a tie counts one half
    better = ranking.improvement_interval(x, y)
    assert better.value == metrics.probability_of_improvement(x[:, None], y[:, None])
    assert better.low <= better.value <= better.high
    flat = ranking.mean_interval(np.full((5, 1), 0.5))  # no spread: no interval width
    assert flat.low == flat.value == flat.high == 0.5


def test_ranking_marks_ties_with_the_leader_and_compares_with_outcome_only() -> None:
    from derl_bench.leaderboards.ranking import rank_tracks

    rankings = rank_tracks([r.submission for r in validate_paths(SHIPPED)])
    assert len(rankings) >= 2  # the shipped live and surrogate tracks are ranked apart
    assert len({r.track.key for r in rankings}) == len(rankings)
    for ranking in rankings:
        _check_ties_and_improvements(ranking)


def _check_ties_and_improvements(ranking) -> None:
    assert ranking.baseline is not None
    assert ranking.baseline.improvement is None
    leader = ranking.rows[0]
    assert leader.rank == 1 and leader.tied_with_leader
    for row in ranking.rows:
        assert row.iqm.low <= row.iqm.value <= row.iqm.high
        overlaps = row.iqm.high >= leader.iqm.low and row.iqm.low <= leader.iqm.high
        assert row.tied_with_leader == overlaps
        if row is not ranking.baseline:
            assert row.improvement is not None and 0 <= row.improvement.value <= 1


# ------------------------------------------------------------------------------------ CLI


def test_cli_validate_prints_one_line_per_failure(tmp_path: Path) -> None:
    obj = _good()
    obj["method"] = "<script>x</script>"
    obj["reported"]["n_seeds"] = -1
    bad = _write(tmp_path, obj)
    runner = CliRunner()
    result = runner.invoke(app, ["leaderboard", "validate", str(GOOD), str(bad), "--against", "x"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"ok      {GOOD}")
    fields = sorted(x.split(": ", 1)[1].split(":")[0] for x in lines[1:])
    assert fields == ["method", "reported.n_seeds"]
    assert all(x.startswith(f"INVALID {bad}: ") and "; fix: " in x for x in lines[1:])


def test_cli_pack_then_validate(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    for record in _good()["results"]:
        (results / f"seed{record['seed']}.json").write_text(json.dumps(record))
    out = tmp_path / "board" / "DERL-CartPole-v0" / "mine.json"
    runner = CliRunner()
    packed = runner.invoke(
        app,
        [
            "leaderboard",
            "pack",
            *map(str, sorted(results.glob("*.json"))),
            "--method",
            "Mine",
            "--authors",
            "A, B",
            "--code-url",
            "https://example.org/mine",
            "--out",
            str(out),
        ],
    )
    assert packed.exit_code == 0, packed.output
    obj = json.loads(out.read_text())
    assert obj["authors"] == ["A", "B"] and obj["track"]["budget_meta_steps"] == 16
    assert check_submission(obj)[1] == []
