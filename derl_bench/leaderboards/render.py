# Over 400 lines: the Markdown page, the HTML page (table, script, style) and the plots.
"""``derl-bench leaderboard render``: ``leaderboards/README.md`` and ``leaderboards/index.html``.

Both are generated from the validated submissions, never edited by hand, and are deterministic:
rendering twice gives identical bytes (sorted inputs, fixed bootstrap seeds, no timestamps, SVG
plots with a fixed hash salt and no date). The HTML page is one self-contained file: inline
style and script (allowed by a Content-Security-Policy that names their SHA-256 and nothing
else), plots as ``data:`` SVG images, no external resource.

Every string that comes from a submission (method, authors, agent name and configuration, code
URL, notes) is escaped where it is written: :func:`html.escape` in HTML, :func:`markdown_text`
in Markdown; in plots, matplotlib escapes SVG text and ``$`` is escaped so no mathtext runs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from derl_bench.leaderboards.model import Submission, Track
from derl_bench.leaderboards.ranking import (
    BOOTSTRAP_REPS,
    AggregateRanking,
    Interval,
    TrackRanking,
    TrackRow,
    aggregate_rankings,
    rank_tracks,
)

__all__ = ["html_page", "markdown_page", "markdown_text", "render_outputs", "trajectory_svg"]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~])")


def markdown_text(text: str) -> str:
    """Escape submission text for a Markdown table cell (GitHub-flavoured).

    ``&``, ``<`` and ``>`` become HTML entities (so no tag survives), the punctuation Markdown
    acts on inside a table cell is backslash-escaped (no link, image, emphasis, code span or
    column break), and line breaks become spaces.

    Args:
        text: Any text.

    Returns:
        The escaped text.
    """
    flat = " ".join(str(text).split())
    entities = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", entities)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(interval: Interval | None) -> str:
    if interval is None:
        return "–"
    return f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _rank(row: Any) -> str:
    return f"={row.rank}" if row.tied_with_leader and row.rank != 1 else str(row.rank)


def _role(submission: Submission) -> str:
    return " (outcome-only baseline)" if submission.role == "outcome_only_baseline" else ""


# ----------------------------------------------------------------------------------- plots


def _curves(submission: Submission, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-so-far validation success per meta-step: x (1..n) and (mean, min, max) rows."""
    runs = []
    for record in sorted(submission.results, key=lambda r: r["seed"]):
        best, curve = 0.0, []
        for step in record["meta_steps"][:budget]:
            score = step["validation_success"]
            if step["valid"] and score is not None:
                best = max(best, float(score))
            curve.append(best)
        runs.append(curve)
    length = max((len(c) for c in runs), default=0)
    table = np.full((len(runs), length), np.nan)
    for i, curve in enumerate(runs):
        table[i, : len(curve)] = curve
    band = np.stack([np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)])
    return np.arange(1, length + 1), band


def _plot_label(text: str) -> str:
    return text.replace("$", r"\$")  # no mathtext from a submission


def trajectory_svg(ranking: TrackRanking) -> bytes:
    """Draw the outer trajectories of a track: best validation success so far per meta-step.

    One line per submission (mean over seeds, shaded min–max band), in rank order.

    Args:
        ranking: The track's ranking.

    Returns:
        SVG bytes, identical for identical input (fixed hash salt, no date).
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    budget = ranking.track.budget_meta_steps
    with matplotlib.rc_context(
        {"svg.hashsalt": "derl-bench-leaderboard", "svg.fonttype": "path", "svg.id": None}
    ):
        figure = Figure(figsize=(7.5, 3.6), layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.subplots()
        for row in ranking.rows:
            x, (mean, low, high) = _curves(row.submission, budget)
            n = len(row.seeds)
            label = _plot_label(f"{row.submission.method} ({n} seed{'s' if n != 1 else ''})")
            (line,) = axes.plot(x, mean, marker="o", markersize=3, label=label)
            axes.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
        axes.set_xlabel("meta-step (inner trainings used)")
        axes.set_ylabel("best validation success so far")
        axes.set_xlim(0.5, budget + 0.5)
        axes.set_ylim(-0.03, 1.03)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        axes.set_title(_plot_label(ranking.track.title), fontsize="medium")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


# -------------------------------------------------------------------------------- Markdown


def _chained(row: TrackRow) -> str:
    """DERL-pop's chained-policy test mean, or an en dash (text, no markup to escape)."""
    return "–" if row.chained_test_mean is None else f"{row.chained_test_mean:.3f}"


_MD_HEADER = (
    "| rank | method | authors | agent | seeds | test IQM [95 % CI] | test mean [95 % CI] "
    "| P(improvement over outcome-only) [95 % CI] | best validation (mean) "
    "| chained test (mean) | code |"
)


def _md_track(ranking: TrackRanking) -> list[str]:
    lines = [
        f"### {markdown_text(ranking.track.title)}",
        "",
        _MD_HEADER,
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in ranking.rows:
        s = row.submission
        lines.append(
            f"| {_rank(row)} | {markdown_text(s.method)}{_role(s)} "
            f"| {markdown_text(', '.join(s.authors))} | {markdown_text(s.agent_name)} "
            f"| {len(row.seeds)} | {_fmt(row.iqm)} | {_fmt(row.mean)} | {_fmt(row.improvement)} "
            f"| {row.best_validation_mean:.3f} | {_chained(row)} | {markdown_text(s.code_url)} |"
        )
    if ranking.baseline is None:
        lines += ["", "No outcome-only baseline on this track: P(improvement) is not shown."]
    return lines


def _md_aggregate(aggregate: AggregateRanking) -> list[str]:
    title = (
        f"### Across envs · {aggregate.fidelity} · {aggregate.preset} · "
        f"{aggregate.budget_meta_steps} meta-steps"
    )
    lines = [title, ""]
    if aggregate.rows:
        lines += [
            f"Envs: {', '.join(aggregate.env_ids)}.",
            "",
            "| rank | method | envs | runs per env | normalised test IQM [95 % CI] |",
            "|---|---|---|---|---|",
        ]
        for i, row in enumerate(aggregate.rows):
            rank = f"={i + 1}" if row.tied_with_leader and i else str(i + 1)
            lines.append(
                f"| {rank} | {markdown_text(row.method)} | {len(row.env_ids)} | {row.n_runs} "
                f"| {_fmt(row.normalised_iqm)} |"
            )
    else:
        lines.append("No method can be aggregated on this group yet.")
    for reason in aggregate.skipped:
        lines.append(f"- left out: {markdown_text(reason)}")
    return lines


_EXPLAIN = (
    "Test success is that of a fresh policy trained under a run's best meta-reward (by "
    "validation success) and scored once on the test split, for every entry alike. Chained "
    "test: DERL-pop's best meta-step's warm-started policy scored on test as it is (the number "
    "the paper reports for DERL-pop; live tracks only), shown beside, not ranked. "
    "IQM: interquartile mean over seeds; "
    f"intervals: 95 % percentile stratified bootstrap over seeds ({BOOTSTRAP_REPS} resamples, "
    "fixed seed). P(improvement): probability that a run of the entry beats a run of the "
    "outcome-only baseline (the paper's outcome reward `g1`; ties count one half). Rank `=k`: "
    "the entry's IQM interval overlaps the leader's, so it is tied with the leader. Across envs, "
    "each env's IQM is normalised between its outcome-only baseline (0) and its best entry (1)."
)


def markdown_page(rankings: Sequence[TrackRanking], aggregates: Sequence[AggregateRanking]) -> str:
    """Render the leaderboard as Markdown (``leaderboards/README.md``).

    Args:
        rankings: Per-track rankings.
        aggregates: Across-env aggregates.

    Returns:
        The page, ending with a newline.
    """
    lines = [
        "# derl_bench leaderboards",
        "",
        "Generated by `derl-bench leaderboard render` from the submissions in this folder (one "
        "folder per env id); do not edit by hand. Every submission passed `derl-bench "
        "leaderboard validate`, and every number below is recomputed from its per-seed result "
        "files. The same tables, sortable, with the outer-trajectory plots: `index.html`.",
        "",
        _EXPLAIN,
        "",
        "## Tracks",
        "",
    ]
    if not rankings:
        lines += ["No submissions yet.", ""]
    for ranking in rankings:
        lines += _md_track(ranking) + [""]
    lines += ["## Across envs", ""]
    for aggregate in aggregates:
        lines += _md_aggregate(aggregate) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------ HTML

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222;
       padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { color: #555; font-style: italic; }
details pre { white-space: pre-wrap; max-width: 40em; margin: 0.3em 0; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f6f6f6; padding: 0 0.2em; }
td code { word-break: break-all; }
td:nth-child(2) { min-width: 12em; }
td:last-child { min-width: 18em; }
details { font-size: 90%; }
"""

_SCRIPT = """
function sortTable(table, header, column) {
  var ascending = header.getAttribute("aria-sort") !== "ascending";
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
    cell.removeAttribute("aria-sort");
  });
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[column].getAttribute("data-sort");
    var y = b.cells[column].getAttribute("data-sort");
    var nx = parseFloat(x), ny = parseFloat(y);
    var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return ascending ? order : -order;
  });
  rows.forEach(function (row) { body.appendChild(row); });
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
    header.tabIndex = 0;
    header.addEventListener("click", function () { sortTable(table, header, column); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sortTable(table, header, column);
      }
    });
  });
});
"""


def _csp() -> str:
    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    return (
        "default-src 'none'; img-src data:; "
        f"style-src 'sha256-{digest(_STYLE)}'; script-src 'sha256-{digest(_SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )


def _td(text: str, sort: Any = None, numeric: bool = False) -> str:
    key = text if sort is None else sort
    cls = ' class="num"' if numeric else ""
    return f'<td{cls} data-sort="{_e(key)}">{_e(text)}</td>'


def _interval_td(interval: Interval | None) -> str:
    if interval is None:
        return _td("–", sort=-1, numeric=True)
    return _td(_fmt(interval), sort=f"{interval.value:.6f}", numeric=True)


def _code_html(url: str) -> str:
    if url.startswith("https://"):
        return f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">{_e(url)}</a>'
    return f"<code>{_e(url)}</code>"


def _html_track(ranking: TrackRanking) -> list[str]:
    track = ranking.track
    headers = (
        "rank",
        "method",
        "authors",
        "agent",
        "seeds",
        "test IQM [95 % CI]",
        "test mean [95 % CI]",
        "P(improvement over outcome-only) [95 % CI]",
        "best validation (mean)",
        "chained test (mean)",
        "code",
    )
    parts = [
        f'<section class="track" id="{_e(track.slug)}" data-track="{_e(track.slug)}">',
        f"<h2>{_e(track.title)}</h2>",
        '<table class="sortable">',
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>",
        "<tbody>",
    ]
    for row in ranking.rows:
        s = row.submission
        config = json.dumps(dict(s.agent_config), indent=1, sort_keys=True)
        cls = ' class="baseline"' if s.role == "outcome_only_baseline" else ""
        notes = f"<details><summary>notes</summary>{_e(s.notes)}</details>" if s.notes else ""
        parts.append(
            f"<tr{cls}>"
            + _td(_rank(row), sort=row.rank, numeric=True)
            + f'<td data-sort="{_e(s.method)}">{_e(s.method)}{_e(_role(s))}{notes}</td>'
            + _td(", ".join(s.authors))
            + f'<td data-sort="{_e(s.agent_name)}">{_e(s.agent_name)}<details><summary>config'
            f"</summary><pre>{_e(config)}</pre></details></td>"
            + _td(str(len(row.seeds)), sort=len(row.seeds), numeric=True)
            + _interval_td(row.iqm)
            + _interval_td(row.mean)
            + _interval_td(row.improvement)
            + _td(f"{row.best_validation_mean:.3f}", numeric=True)
            + _td(
                _chained(row),
                sort=-1 if row.chained_test_mean is None else f"{row.chained_test_mean:.6f}",
                numeric=True,
            )
            + f'<td data-sort="{_e(s.code_url)}">{_code_html(s.code_url)}</td>'
            + "</tr>"
        )
    parts.append("</tbody></table>")
    if ranking.baseline is None:
        parts.append("<p>No outcome-only baseline on this track: P(improvement) is not shown.</p>")
    svg = base64.b64encode(trajectory_svg(ranking)).decode()
    parts.append(
        f'<img class="plot" alt="outer trajectories: {_e(track.title)}" '
        f'src="data:image/svg+xml;base64,{svg}">'
    )
    parts.append("</section>")
    return parts


def _html_aggregate(aggregate: AggregateRanking) -> list[str]:
    title = (
        f"Across envs · {aggregate.fidelity} · {aggregate.preset} · "
        f"{aggregate.budget_meta_steps} meta-steps"
    )
    parts = [f'<section class="aggregate"><h3>{_e(title)}</h3>']
    if aggregate.rows:
        parts.append(f"<p>Envs: {_e(', '.join(aggregate.env_ids))}.</p>")
        parts.append('<table class="sortable"><thead><tr>')
        for header in ("rank", "method", "envs", "runs per env", "normalised test IQM [95 % CI]"):
            parts.append(f"<th>{_e(header)}</th>")
        parts.append("</tr></thead><tbody>")
        for i, row in enumerate(aggregate.rows):
            rank = f"={i + 1}" if row.tied_with_leader and i else str(i + 1)
            parts.append(
                "<tr>"
                + _td(rank, sort=i + 1, numeric=True)
                + _td(row.method)
                + _td(str(len(row.env_ids)), sort=len(row.env_ids), numeric=True)
                + _td(str(row.n_runs), sort=row.n_runs, numeric=True)
                + _interval_td(row.normalised_iqm)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No method can be aggregated on this group yet.</p>")
    if aggregate.skipped:
        parts.append("<ul>" + "".join(f"<li>left out: {_e(r)}</li>" for r in aggregate.skipped))
        parts.append("</ul>")
    parts.append("</section>")
    return parts


def html_page(rankings: Sequence[TrackRanking], aggregates: Sequence[AggregateRanking]) -> str:
    """Render the leaderboard as one self-contained HTML page (``leaderboards/index.html``).

    Args:
        rankings: Per-track rankings.
        aggregates: Across-env aggregates.

    Returns:
        The page, ending with a newline.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>derl_bench leaderboards</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        "<h1>derl_bench leaderboards</h1>",
        "<p>Generated by <code>derl-bench leaderboard render</code>; do not edit by hand. "
        "Click a column header to sort.</p>",
        f"<p>{_e(_EXPLAIN).replace('`', '')}</p>",
        "<nav><ul>",
    ]
    for ranking in rankings:
        parts.append(f'<li><a href="#{_e(ranking.track.slug)}">{_e(ranking.track.title)}</a></li>')
    parts.append("</ul></nav>")
    if not rankings:
        parts.append("<p>No submissions yet.</p>")
    for ranking in rankings:
        parts += _html_track(ranking)
    parts.append("<h2>Across envs</h2>")
    for aggregate in aggregates:
        parts += _html_aggregate(aggregate)
    parts += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def render_outputs(submissions: Sequence[Submission]) -> dict[str, str]:
    """Rank validated submissions and render both pages.

    Args:
        submissions: Validated submissions (:func:`~derl_bench.leaderboards.validate.
            validate_paths`).

    Returns:
        ``{"README.md": markdown, "index.html": html}``.
    """
    rankings = rank_tracks(submissions)
    aggregates = aggregate_rankings(rankings)
    return {
        "README.md": markdown_page(rankings, aggregates),
        "index.html": html_page(rankings, aggregates),
    }


def tracks_of(submissions: Sequence[Submission]) -> list[Track]:
    """Return the distinct tracks of the submissions, sorted.

    Args:
        submissions: Submissions.

    Returns:
        Their tracks, one each.
    """
    return [t for _, t in sorted({s.track.key: s.track for s in submissions}.items())]


def submission_files(leaderboard_dir: str | Path) -> list[Path]:
    """Return the submission files of a leaderboard folder: ``<dir>/<env id>/*.json``, sorted.

    Args:
        leaderboard_dir: The folder (e.g. ``leaderboards``).

    Returns:
        The files.
    """
    return sorted(Path(leaderboard_dir).glob("*/*.json"))
