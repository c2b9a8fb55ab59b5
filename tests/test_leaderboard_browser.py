"""The leaderboard page in a real headless browser: Debian's chromium driven by playwright.

``scripts/run_tests.sh`` installs chromium (``scripts/setup_browser.sh``); playwright's own
browser download is never used. The page is served from a local http.server; every request that
is not to that origin (or a ``data:`` image) is blocked and recorded, and fails the test.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from derl_bench.leaderboards import validate_paths
from derl_bench.leaderboards.ranking import rank_tracks
from derl_bench.leaderboards.render import render_outputs, submission_files

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "leaderboards"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _browser() -> Iterator[object]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: run `bash scripts/setup_browser.sh` (scripts/run_tests.sh does)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def _open(browser: object, origin: str) -> tuple[object, list[str], list[str], list[str]]:
    """A page that records foreign requests (blocked), console errors and dialogs."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    foreign: list[str] = []
    errors: list[str] = []
    dialogs: list[str] = []

    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if url.startswith(origin + "/") or url.startswith("data:"):
            r.continue_()  # type: ignore[attr-defined]
        else:
            foreign.append(url)
            r.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((origin + "/", "data:")) else foreign.append(request.url)
        ),
    )
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return page, foreign, errors, dialogs


def _column(page: object, table: object, index: int) -> list[str]:
    return table.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()  # type: ignore


def test_page_shows_every_track_sorts_on_click_and_loads_nothing_external(
    tmp_path: Path,
) -> None:
    submissions = [r.submission for r in validate_paths(submission_files(BOARD))]
    rankings = rank_tracks(submissions)
    assert rankings
    with _browser() as browser, _serve(BOARD) as origin:
        page, foreign, errors, dialogs = _open(browser, origin)
        page.goto(origin + "/index.html", wait_until="load")
        sections = page.locator("section.track")
        assert sections.count() == len(rankings)
        for ranking in rankings:
            section = page.locator(f'section.track[data-track="{ranking.track.slug}"]')
            assert section.is_visible()
            assert section.locator("h2").inner_text() == ranking.track.title
            rows = section.locator("table.sortable tbody tr")
            assert rows.count() == len(ranking.rows)
            for i, row in enumerate(ranking.rows):
                assert row.submission.method in rows.nth(i).inner_text()
            plot = section.locator("img.plot")
            assert plot.evaluate("img => img.complete && img.naturalWidth > 0")

        table = page.locator("section.track table.sortable").first
        headers = table.locator("thead th")
        methods = _column(page, table, 1)
        ranks = _column(page, table, 0)
        headers.nth(0).click()  # rank, ascending: the order it already has
        assert headers.nth(0).get_attribute("aria-sort") == "ascending"
        assert _column(page, table, 0) == ranks
        headers.nth(0).click()  # rank, descending: reversed
        assert headers.nth(0).get_attribute("aria-sort") == "descending"
        assert _column(page, table, 1) == methods[::-1] != methods
        headers.nth(1).click()  # method, ascending
        assert headers.nth(0).get_attribute("aria-sort") is None
        assert _column(page, table, 1) == sorted(methods, key=str.casefold)

        page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
        assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
        assert foreign == []
        assert errors == []  # includes Content-Security-Policy violations
        assert dialogs == []


def test_hostile_submission_text_stays_text_in_the_browser(tmp_path: Path) -> None:
    # one track's baseline and two entries: ranking bootstraps every entry, and one hostile row
    # is the point here (the whole board is opened by the test above)
    live = [p for p in submission_files(BOARD) if p.name.startswith("live-")]
    submissions = [r.submission for r in validate_paths(live)]
    baseline = next(s for s in submissions if s.role == "outcome_only_baseline")
    submissions = [*(s for s in submissions if s.role == "entry")][:2] + [baseline]
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    submissions[0] = dataclasses.replace(
        submissions[0], method=hostile, notes="<b>bold</b>", authors=("<i>a</i>",)
    )
    (tmp_path / "index.html").write_text(render_outputs(submissions)["index.html"])
    with _browser() as browser, _serve(tmp_path) as origin:
        page, foreign, errors, dialogs = _open(browser, origin)
        page.goto(origin + "/index.html", wait_until="load")
        assert page.evaluate("document.scripts.length") == 1
        assert (
            page.locator("section.track b, section.track i, section.track img:not(.plot)").count()
            == 0
        )
        assert hostile in page.locator("section.track").first.inner_text()
        assert dialogs == [] and foreign == [] and errors == []


if __name__ == "__main__":  # pragma: no cover - writes the README's screenshot
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "leaderboard.png")
    with _browser() as browser, _serve(BOARD) as origin:
        page, *_ = _open(browser, origin)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(origin + "/index.html", wait_until="load")
        page.screenshot(path=str(target), full_page=True)
    print(f"wrote {target}")
    pytest  # noqa: B018 - keep the import used when run as a script
