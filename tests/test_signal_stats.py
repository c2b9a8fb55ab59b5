"""The signal statistics: SNR, one-way ANOVA and the bad-reward check, on hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from derl_bench.signal_check import (
    BAD_META_REWARD,
    SIGNAL_META_REWARDS,
    UNTRAINED,
    SignalRow,
    signal_markdown,
    signal_statistics,
)


def _row(name, values):
    return SignalRow(
        meta_reward=name,
        seeds=tuple(range(len(values))),
        validation_success=tuple(values),
        wall_seconds=(1.0,) * len(values),
    )


def test_snr_and_anova_follow_their_definitions_without_the_bad_reward():
    rows = [
        _row(UNTRAINED, [0.3, 0.3, 0.3]),
        _row("g1", [0.1, 0.2, 0.3]),
        _row("g1 + g2", [0.5, 0.6, 0.4]),
        _row("g2", [0.9, 0.8, 1.0]),
        _row(BAD_META_REWARD, [0.0, 0.0, 0.0]),
    ]
    st = signal_statistics(rows)
    means = [0.2, 0.5, 0.9]
    within = math.sqrt(np.mean([0.01, 0.01, 0.01]))
    assert st.n_meta_rewards == 3
    assert st.between_std == pytest.approx(np.std(means, ddof=1))
    assert st.within_std == pytest.approx(within)
    assert st.snr == pytest.approx(np.std(means, ddof=1) / within)
    reference = stats.f_oneway([0.1, 0.2, 0.3], [0.5, 0.6, 0.4], [0.9, 0.8, 1.0])
    assert st.anova_f == pytest.approx(reference.statistic)
    assert st.anova_p == pytest.approx(reference.pvalue)
    assert st.bad_mean == 0.0 and st.untrained_mean == pytest.approx(0.3)
    assert st.bad_below_untrained is True
    assert (st.above_bad, st.above_untrained) == (3, 2)  # g1's 0.2 is not above untrained 0.3


def test_counts_show_a_panel_that_spreads_rewards_without_ranking_them_over_the_bad_one():
    # The shape of a measured ScienceWorld probe: dense rewards wreck the policy, the outcome
    # reward and -g1 both keep it near the cold start. The SNR is high; the counts say why.
    rows = [
        _row(UNTRAINED, [0.344, 0.344, 0.344]),
        _row("g1", [0.28, 0.30, 0.26]),
        _row("g1 + g2", [0.09, 0.12, 0.06]),
        _row("g4", [0.0, 0.03, 0.0]),
        _row(BAD_META_REWARD, [0.27, 0.25, 0.29]),
    ]
    st = signal_statistics(rows)
    assert st.snr > 1.5 and st.bad_below_untrained is True
    assert (st.above_bad, st.above_untrained) == (1, 0)
    text = signal_markdown("DERL-X-v0", "cpu", rows)
    assert "1 of 3 above `-g1`; 0 of 3 above the untrained policy." in text


def test_a_mean_equal_to_the_untrained_one_up_to_rounding_is_not_counted_above_it():
    # Measured on DERL-ALFWorld-L0-v1: `g1 * g4` scored 0.175, 0.125, 0.225 on 40 V games, whose
    # float mean is 0.17500000000000002; the untrained policy scored 0.175. Not a raise.
    assert np.mean([0.175, 0.125, 0.225]) > 0.175  # the rounding this test is about
    rows = [
        _row(UNTRAINED, [0.175, 0.175, 0.175]),
        _row("g1", [0.1, 0.125, 0.25]),
        _row("g1 * g4", [0.175, 0.125, 0.225]),
        _row("g2", [0.2, 0.2, 0.2]),
        _row(BAD_META_REWARD, [0.175, 0.175, 0.175]),
    ]
    st = signal_statistics(rows)
    assert st.above_untrained == 1  # only g2's 0.2
    assert st.above_bad == 1  # -g1 sits at 0.175 too
    assert st.bad_below_untrained is False
    # One game of 40 on one seed of three is a real difference and is counted.
    raised = signal_statistics([*rows[:2], _row("g1 * g4", [0.175, 0.15, 0.225])])
    assert raised.above_untrained == 1


def test_no_separation_gives_a_low_snr_and_a_high_p():
    rows = [_row("g1", [0.1, 0.5, 0.3]), _row("g2", [0.3, 0.1, 0.5]), _row("g3", [0.5, 0.3, 0.1])]
    st = signal_statistics(rows)
    assert st.snr == pytest.approx(0.0)
    assert st.anova_p == pytest.approx(1.0)
    assert st.bad_below_untrained is None  # neither the bad reward nor the untrained row
    assert st.above_bad is None and st.above_untrained is None
    assert "Sensible rewards' means" not in signal_markdown("DERL-X-v0", "cpu", rows)


def test_undefined_statistics_are_none_not_nan():
    # Every reward scores 0 on every seed (the measured ALFWorld cpu table before v1).
    flat = [_row(m, [0.0, 0.0, 0.0]) for m in ("g1", "g1 + g2", "g2")]
    st = signal_statistics([_row(UNTRAINED, [0.0] * 3), *flat, _row(BAD_META_REWARD, [0.0] * 3)])
    assert st.snr is None and st.anova_f is None and st.anova_p is None
    assert st.bad_below_untrained is False
    text = signal_markdown("DERL-X-v0", "cpu", flat)
    assert "SNR undefined" in text
    # Seeds agree but the means differ: perfectly separated, p = 0, SNR undefined (no noise).
    sep = signal_statistics([_row("g1", [0.0, 0.0]), _row("g2", [1.0, 1.0])])
    assert sep.snr is None and sep.anova_p == 0.0 and sep.between_std > 0


def test_default_panel_covers_the_structure_families():
    panel = SIGNAL_META_REWARDS
    assert len(panel) >= 8 and panel[-1] == BAD_META_REWARD == "-g1"
    assert "g1" in panel and "g1 + g2" in panel and "(g1 + g2 + g3 + g4) / 4" in panel
    assert any("*" in m and "g" in m.split("*")[0] and "g" in m.split("*")[1] for m in panel)
    assert any("/" in m and "g" in m.split("/")[1] for m in panel)  # a ratio of primitives
    from derl_bench.meta_reward import parse

    for name in ("math", "episode"):
        from derl_bench.primitives import get_primitive_set

        names = get_primitive_set(name).names
        for meta_reward in panel:
            parse(meta_reward, primitive_names=names)  # valid on every primitive set


def test_committed_signal_files_state_the_statistics_their_rows_give():
    """Every docs/signal/*.json states the SNR and p its own per-seed rows give, and the
    README's summary table (scripts/signal_summary.py) has a row for each file."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(
        "signal_summary", root / "scripts" / "signal_summary.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = sorted((root / "docs" / "signal").glob("*.json"))
    assert files
    readme = (root / "README.md").read_text()
    for path in files:
        line, ok = module.summary_line(path)
        assert ok, f"{path.name}: stated SNR / p differ from its rows"
        assert line in readme, f"README's signal table lacks or differs from: {line}"
