"""The dashboard served by ``python -m dashboard`` and driven in headless Chromium, as a new user sees it.

Needs Chromium at /usr/bin/chromium (``apt-get install -y chromium``); Playwright never
downloads a browser here. Skipped without it, except under ``CI=true``, where it must run.
Writes ``test-artifacts/dashboard.png``; the README's screenshot comes from the demo study
through ``python -m dashboard.screenshot`` (see README, "Dashboard").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import SPACE_STUDY, seed_space_study

from core.pareto import pareto_front
from dashboard.importance import DEFAULT_AXES, parcoords_frame, rank_parameters
from dashboard.processing import memory_front_report
from dashboard.screenshot import (
    CHROMIUM,
    COUNT_POINTS,
    ROOT,
    capture,
    open_browser,
    overview_ready,
    serve,
)
from storage import default_storage_url, load_results, make_readonly_engine

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 60_000
# Every text of a kind on the page, as the four corners of its glyph box in page pixels
# (rotation included), so overlap is judged on what is drawn, tilted titles too.
_BOXES = """(selector) => Array.from(document.querySelectorAll(selector)).map(t => {
    const b = t.getBBox(), m = t.getScreenCTM();
    const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]];
    return {text: t.textContent, height: b.height,
            corners: corners.map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f])};
})"""
# The Pareto table as text: header cells, then each row's cells (the row's name first).
_REPORT = """(key) => {
    const table = document.querySelector(`.st-key-${key} table`);
    const cells = row => Array.from(row.querySelectorAll('th, td')).map(c => c.textContent.trim());
    return {header: cells(table.querySelector('thead tr')), rows: Array.from(table.querySelectorAll('tbody tr')).map(cells)};
}"""


# Whether the page's rerun is over (Streamlit marks the previous run's elements data-stale
# until the script finishes) and it shows one parallel-coordinates chart with `count` axis titles.
_ONE_CHART_WITH_TITLES = """(count) => {
    const boxes = document.querySelectorAll('.st-key-parcoords');
    return document.querySelectorAll('[data-stale="true"]').length === 0 && boxes.length === 1
        && boxes[0].querySelectorAll('.js-plotly-plot').length === 1
        && boxes[0].querySelectorAll('text.axis-title').length === count;
}"""


def _parameter_ranking(url: str, study: str) -> Any:
    """The parameters the Parameters page ranks for its parallel coordinates, from the stored rows."""
    engine = make_readonly_engine(url)
    try:
        return rank_parameters(parcoords_frame(load_results(engine, study)))
    finally:
        engine.dispose()


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing; .ci/run installs it (apt-get install -y chromium).")
    pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium); runs whenever it is.")


@pytest.fixture
def served(real_study: Any, tmp_path: Path) -> Iterator[str]:
    """The dashboard on the real study, served on a free local port; yields its base URL."""
    _require_chromium()
    with serve(real_study.url, tmp_path / "dashboard.log") as base:
        yield base


@pytest.fixture
def page(served: str) -> Iterator[Any]:
    with open_browser() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        opened = context.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened


def _apart(a: list[list[float]], b: list[list[float]]) -> bool:
    """Whether two convex quadrilaterals do not overlap (a separating axis exists)."""
    for quad in (a, b):
        for (x1, y1), (x2, y2) in zip(quad, quad[1:] + quad[:1], strict=True):
            normal = (y2 - y1, x1 - x2)
            on_a = [normal[0] * x + normal[1] * y for x, y in a]
            on_b = [normal[0] * x + normal[1] * y for x, y in b]
            if max(on_a) <= min(on_b) or max(on_b) <= min(on_a):
                return True
    return False


def _readable_titles(page: Any, selector: str) -> list[str]:
    """The texts at ``selector``: each non-empty, distinct, of a readable size, none over another."""
    boxes = page.evaluate(_BOXES, selector)
    texts = [b["text"] for b in boxes]
    assert texts and all(t.strip() for t in texts), texts
    assert len(set(texts)) == len(texts), texts
    assert min(b["height"] for b in boxes) >= 10, boxes  # pixels
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert _apart(first["corners"], second["corners"]), f"{first['text']!r} overlaps {second['text']!r}"
    return texts


def _front(real_study: Any) -> Any:
    engine = make_readonly_engine(real_study.url)
    try:
        return pareto_front(load_results(engine, real_study.study)).set_index("trial_number")
    finally:
        engine.dispose()


def _memory_front(real_study: Any) -> list[str]:
    engine = make_readonly_engine(real_study.url)
    try:
        return memory_front_report(load_results(engine, real_study.study))["trial"].tolist()
    finally:
        engine.dispose()


def test_overview_as_a_new_user_sees_it(page: Any, served: str, real_study: Any) -> None:
    page.goto(served)  # no ?budget=: the study's own budget must fill the box

    page.wait_for_function(f"({COUNT_POINTS})() > 0")
    assert page.evaluate(COUNT_POINTS) == real_study.n_complete
    assert page.get_by_role("textbox", name="Budget").input_value() == real_study.budget
    page.get_by_text(f"Best within {real_study.budget}: trial #{real_study.best_trial}").wait_for()
    description = page.locator(".st-key-study_description")
    for fact in ("vqa", "tiny-clip+tiny-t5-vlp", f"{real_study.budget} (as launched)", "generated benchmark"):
        assert fact in description.inner_text()

    report = page.evaluate(_REPORT, "front_table")
    assert report["header"] == ["trial", "method", "score", "trainable %", "trainable", f"budget {real_study.budget}",
                                "hyperparameters"]  # fmt: skip
    stored = _front(real_study)
    assert [int(r[0]) for r in report["rows"]] == stored.sort_values("trainable_pct").index.tolist()
    for trial, _method, score, pct, count, within, _hyper in report["rows"]:
        row = stored.loc[int(trial)]
        assert re.fullmatch(r"\d+\.\d", score) and float(score) == pytest.approx(row["score"], abs=0.05)
        assert re.fullmatch(r"\d+\.\d\d%", pct) and float(pct[:-1]) == pytest.approx(row["trainable_pct"], abs=0.005)
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", count) and int(count.replace(",", "")) == row["trainable_params"]
        assert within in ("within", "over (reference)")
    # Trials record their peak memory, so the memory front is drawn beside the parameter front.
    memory = page.evaluate(_REPORT, "memory_front_table")
    assert memory["header"][:5] == ["trial", "method", "score", "peak memory", "trainable %"]
    assert [r[0] for r in memory["rows"]] == _memory_front(real_study)
    assert page.locator(".st-key-memory_pareto .js-plotly-plot").count() == 1
    overview_ready(page)
    capture(page, ROOT / "test-artifacts" / "dashboard.png")

    page.get_by_role("link", name=f"Open trial #{real_study.best_trial} (best within budget)").click()
    page.get_by_role("heading", name=f"Trial #{real_study.best_trial}:").wait_for()
    page.wait_for_url(re.compile(rf"/trial\?.*\btrial={real_study.best_trial}\b"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download recipe (YAML)").click()
    # The recipe records the budget, which the user never typed: it is the study's.
    assert Path(download.value.path()).read_bytes() == real_study.exported["yaml"]


def test_parameters_axis_titles_are_apart(page: Any, served: str, real_study: Any) -> None:
    page.goto(f"{served}/parameters")
    page.locator(".st-key-parcoords text.axis-title").first.wait_for()
    page.wait_for_timeout(500)
    titles = _readable_titles(page, ".st-key-parcoords text.axis-title")
    assert titles[-2:] == ["trainable %", "score"]


def test_parameters_of_a_default_sized_space(tmp_path: Path) -> None:
    """About twenty varying entries and six ranked parameters: every title and bar name readable."""
    _require_chromium()
    url = default_storage_url(tmp_path)
    seed_space_study(url)
    with serve(url, tmp_path / "dashboard.log") as base, open_browser() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{base}/parameters?study={SPACE_STUDY}")
        page.locator(".st-key-importance .ytick text").first.wait_for()
        page.locator(".st-key-parcoords text.axis-title").first.wait_for()
        page.wait_for_timeout(500)

        bars = page.locator(".st-key-importance .bars .point").count()
        names = _readable_titles(page, ".st-key-importance .ytick text")
        assert len(names) == bars == 6
        assert page.locator(".st-key-importance .bartext").count() == bars  # each bar carries its value
        assert len(_readable_titles(page, ".st-key-parcoords text.axis-title")) == DEFAULT_AXES + 2

        every = len(_parameter_ranking(url, SPACE_STUDY)) + 2  # every varying entry, then trainable % and score
        assert every > 15
        page.get_by_role("slider", name="Parameters shown").press("End")  # every parameter
        # Streamlit draws the new chart in a container of its own and keeps the old one, greyed
        # as stale, until the script's run ends (0.02 to 0.6 s later here, more on a loaded
        # machine): meanwhile the page holds both charts and most titles twice, so the wait is
        # for the finished run's one chart, not for "enough titles".
        page.wait_for_function(_ONE_CHART_WITH_TITLES, arg=every)
        assert len(_readable_titles(page, ".st-key-parcoords text.axis-title")) == every
