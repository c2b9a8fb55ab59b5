"""Print the README's signal summary table from the committed signal files (docs/signal/*.json).

Every number is recomputed from the files' per-seed rows with
:func:`derl_bench.signal_check.signal_statistics`, so files written before a statistic existed
(``above_bad``, ``above_untrained``) get it too, and the SNR / ANOVA columns are checked
against what the file states. Writes Markdown to stdout; exit code 1 if a recomputed SNR or p
differs from the file's.

Run::

    python scripts/signal_summary.py            # every docs/signal/*.json
    python scripts/signal_summary.py FILE.json ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from derl_bench.signal_check import BAD_META_REWARD, SignalRow, signal_statistics

_ROOT = Path(__file__).resolve().parent.parent


def _row(raw: dict[str, Any]) -> SignalRow:
    fields = SignalRow.__dataclass_fields__
    return SignalRow(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields}
    )


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _fmt_p(p: float | None) -> str:
    return "undefined" if p is None else f"{p:.2g}"  # as signal_markdown writes p


def summary_line(path: Path) -> tuple[str, bool]:
    """One Markdown table row for a signal JSON file, and whether its stated statistics match."""
    data = json.loads(path.read_text())
    rows = [_row(r) for r in data["rows"]]
    if data.get("untrained"):
        rows.append(_row(data["untrained"]))
    st = signal_statistics(rows)
    ok = _same(st.snr, data.get("snr")) and _same(st.anova_p, data.get("anova_p"))
    name = data["env_id"] + ("" if data["preset"] == "cpu" else f" (`{data['preset']}`)")
    snr = "undefined" if st.snr is None else f"{st.snr:.2f}"
    if st.bad_below_untrained is None:
        bad = "n/a"
    elif st.bad_below_untrained:
        bad = f"yes ({st.bad_mean:.3f} < {st.untrained_mean:.3f})"
    else:
        bad = f"no ({st.bad_mean:.3f}, untrained {st.untrained_mean:.3f})"
    n = st.n_meta_rewards
    counts = f"{st.above_bad} / {st.above_untrained} of {n}"
    panel = [r for r in rows if r.meta_reward not in {BAD_META_REWARD, "(untrained policy)"}]
    top = max(r.mean for r in panel)
    best = ", ".join(f"`{r.meta_reward}`" for r in panel if math.isclose(r.mean, top))
    md = path.with_suffix(".md")
    link = f"[md]({(md.relative_to(_ROOT) if md.is_relative_to(_ROOT) else md).as_posix()})"
    cells = [name, snr, _fmt_p(st.anova_p), bad, counts, f"{top:.3f} ({best})", link]
    return "| " + " | ".join(cells) + " |", ok


def main() -> None:
    """Print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="signal JSON files")
    args = parser.parse_args()
    files = args.files or sorted((_ROOT / "docs" / "signal").glob("*.json"))
    print(
        "| env | SNR | ANOVA p | `-g1` below untrained? | sensible rewards above `-g1` / "
        "above untrained | best mean (meta-reward) | file |"
    )
    print("|---|---|---|---|---|---|---|")
    mismatched = []
    for path in files:
        line, ok = summary_line(path.resolve())
        print(line)
        if not ok:
            mismatched.append(path)
    for path in mismatched:
        print(f"{path}: the recomputed SNR or p differs from the file's", file=sys.stderr)
    sys.exit(1 if mismatched else 0)


if __name__ == "__main__":
    main()
