"""The Streamlit page, run headless with AppTest on a seeded SQLite database."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.settings import STORAGE_ENV
from storage import default_storage_url

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _run(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(STORAGE_ENV, url)
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _figure(app: AppTest) -> dict[str, Any]:
    charts = app.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def _values(array: Any) -> list[float]:
    """Plotly >= 6 sends numeric arrays as base64 ``{"dtype", "bdata"}`` dicts."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def _texts(elements: Any) -> str:
    return "\n".join(e.value for e in elements)


def test_page_shows_the_study_and_its_trials(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _run(seeded.url, monkeypatch)

    assert app.selectbox(key="study").value == seeded.study
    assert seeded.study in _texts(app.subheader)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Complete"] == str(seeded.n_complete)
    assert (metrics["Infeasible"], metrics["Failed"]) == ("1", "1")
    assert (metrics["Best score"], metrics["Front size"]) == ("77.60", str(len(seeded.front)))
    assert len(app.dataframe) == 2  # the front, then every trial


def test_chart_has_one_marker_per_complete_trial(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    figure = _figure(_run(seeded.url, monkeypatch))

    markers = [t for t in figure["data"] if "markers" in t.get("mode", "")]
    assert sum(len(_values(t["x"])) for t in markers) == seeded.n_complete
    assert {t["name"] for t in markers} == {"adapter", "lora"}
    (step,) = [t for t in figure["data"] if t.get("mode") == "lines"]
    assert step["line"]["shape"] == "hv"
    assert _values(step["x"]) == pytest.approx([1.14, 4.18, 100.0])
    assert _values(step["y"]) == pytest.approx([47.1, 77.4, 77.6])
    assert figure["layout"]["xaxis"]["type"] == "log"


def test_budget_draws_a_line_and_names_the_best_trial(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run(seeded.url, monkeypatch)
    app.number_input(key="budget").set_value(5.0).run()

    assert not app.exception
    assert "trial #0 (adapter)" in _texts(app.success)
    shapes = _figure(app)["layout"]["shapes"]
    assert [(s["x0"], s["x1"]) for s in shapes] == [(5.0, 5.0)]


def test_missing_database_gets_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run(default_storage_url(tmp_path / "absent"), monkeypatch)
    assert "No study database yet" in _texts(app.info)
    assert not app.get("plotly_chart")
    assert not (tmp_path / "absent").exists()


def test_database_without_studies_gets_a_message(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run(empty_url, monkeypatch)
    assert "No studies recorded yet" in _texts(app.info)


def test_bad_url_gets_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _run("mysql://user:hunter2@db/x", monkeypatch)
    message = _texts(app.error)
    assert "only sqlite and postgresql are supported" in message
    assert "hunter2" not in message
