"""How long the dashboard's main page takes to render for a 1,000-trial study.

    .venv/bin/python benchmarks/dashboard_render.py [--trials 1000] [--runs 5]

Seeds a SQLite database with synthetic trials through ``storage.record_trial`` (the
workers' own write path), each row with the inputs a search records, and an Optuna study
holding the settings and data digests ``search.launch`` stores; then renders the Overview
page (studies table, headline numbers, the study's description, the Pareto chart and the
front table) with Streamlit's AppTest and prints
the median wall time of several runs, cold (every Streamlit cache cleared first, as
for the first visitor after a trial is recorded) and warm (a rerun with nothing new,
as on a widget change). The target is a cold median under 2 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import positive_int

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import TrialRecord, default_storage_url, init_schema, make_engine, record_trial  # noqa: E402

APP = ROOT / "dashboard" / "app.py"
STUDY = "render-benchmark"
TARGET_S = 2.0
TOTAL = 2_000_000


DATA_FILES = 5_000  # digests stored with the study, as for a mid-sized dataset
TASKS = ["vqa", "gqa", "nlvr2"]


def _launch(url: str) -> dict:
    """The Optuna study with what search.launch stores; returns a row's ``inputs``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    files = {f"images/{n:06d}.png": f"{n:032x}" for n in range(DATA_FILES)}
    settings = {
        "budget": "5%", "backbone": "tiny-clip+tiny-t5-vlp", "tasks": TASKS, "target_trials": 1000, "seed": 0,
        "steps": 200, "sampler": "tpe", "space_yaml": "methods: {}\n", "space_source": "search/spaces/default.yaml",
        "count_clip": False, "objectives": ["score", "trainable_pct"], "random_init": False, "rungs": 0, "data": None,
        "version": 1,
    }  # fmt: skip
    study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr("vlpetl_settings", settings)
    study.set_user_attr("vlpetl_inputs", {"files": files})
    return {
        "backbone": settings["backbone"], "random_init": False, "clip_weights_sha256": "1" * 64,
        "language_model_weights_sha256": "2" * 64, "vl_projection_sha256": "3" * 64,
        "benchmark": "mini-vl-v3-seed0", "benchmark_manifest_sha256": "4" * 64,
        "data": {"tasks": {t: {"format": t} for t in TASKS}, "source": "generated benchmark (seed 0)", "generated": {"seed": 0}},
        "data_files": {"files": DATA_FILES, "sha256": "5" * 64},
    }  # fmt: skip


def seed(url: str, trials: int, seed_value: int = 0) -> float:
    """Write ``trials`` varied trials (mostly complete) and return the seconds it took."""
    rng = random.Random(seed_value)
    start, began = datetime(2025, 1, 1, tzinfo=UTC), time.perf_counter()
    inputs = _launch(url)
    engine = make_engine(url)
    init_schema(engine)
    for n in range(trials):
        method = rng.choice(["adapter", "lora", "compacter", "prompt", "full_ft"])
        trainable = TOTAL if method == "full_ft" else rng.randint(2_000, 300_000)
        status = rng.choices(["complete", "infeasible", "failed", "running"], [85, 8, 5, 2])[0]
        score = round(40 + 30 * rng.random() + 5 * (trainable / TOTAL), 2) if status == "complete" else None
        record_trial(
            engine,
            TrialRecord(
                study_name=STUDY, trial_number=n, status=status, method=method,
                config={
                    "backbone": "tiny-clip+tiny-t5-vlp", "tasks": TASKS, "method": method,
                    "method_params": {"rank": rng.choice([4, 8, 16, 32])},
                    "sharing": rng.choice(["single", "half", "multiple"]),
                    "training": {"learning_rate": 10 ** rng.uniform(-4, -2), "steps": 200},
                },
                trainable_params=trainable, total_params=TOTAL, score=score,
                task_scores={t: round(score + rng.uniform(-5, 5), 2) for t in TASKS} if score else None,
                train_seconds=rng.uniform(20, 600) if status != "running" else None,
                error="CUDA out of memory" if status == "failed" else None,
                finished_at=None if status == "running" else start + timedelta(minutes=n),
                environment={"python": "3.11", "git_revision": "0" * 40, "inputs": inputs},
            ),
        )  # fmt: skip
    engine.dispose()
    return time.perf_counter() - began


def render_times(url: str, runs: int) -> tuple[list[float], list[float]]:
    """Cold and warm wall times (seconds) of the Overview page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["VLPETL_STORAGE"] = url
    # Outside a served app Streamlit warns about its missing runtime on every run; errors
    # still surface, as app.exception.
    logging.disable(logging.WARNING)
    cold, warm = [], []
    AppTest.from_file(str(APP), default_timeout=120).run()  # imports, once, outside the timings
    for _ in range(runs):
        st.cache_data.clear()
        st.cache_resource.clear()
        app = AppTest.from_file(str(APP), default_timeout=120)
        began = time.perf_counter()
        app.run()
        cold.append(time.perf_counter() - began)
        assert not app.exception, [e.value for e in app.exception]
        assert app.get("plotly_chart"), "the Pareto chart was not drawn"
        assert app.text_input(key="budget_text").value == "5%", "the study's budget was not read"
        began = time.perf_counter()
        app.run()
        warm.append(time.perf_counter() - began)
    logging.disable(logging.NOTSET)
    return cold, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--trials", type=positive_int, default=1000, help="trials to seed (default 1000)")
    parser.add_argument("--runs", type=positive_int, default=5, help="timed renders (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = default_storage_url(Path(folder))
        seconds = seed(url, args.trials)
        print(f"seeded {args.trials} trials via storage.record_trial in {seconds:.1f} s")
        cold, warm = render_times(url, args.runs)
    fmt = ", ".join
    print(f"overview page, cold: median {statistics.median(cold):.2f} s  (runs: {fmt(f'{t:.2f}' for t in cold)})")
    print(f"overview page, warm: median {statistics.median(warm):.2f} s  (runs: {fmt(f'{t:.2f}' for t in warm)})")
    verdict = "meets" if statistics.median(cold) < TARGET_S else "MISSES"
    print(f"target: cold median < {TARGET_S:.0f} s -> {verdict}")
    return 0 if verdict == "meets" else 1


if __name__ == "__main__":
    raise SystemExit(main())
