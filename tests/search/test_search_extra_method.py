"""A method is one file plus one registry line: a method written outside the project
(tests/extra_methods/output_scaling.py, named in $VLPETL_EXTRA_METHODS) is in the default search
space, in search.params, in a study's warm starts and trials, and on the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from storage import load_results, make_engine

EXTRA = Path(__file__).resolve().parents[1] / "extra_methods"


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "VLPETL_EXTRA_METHODS": "output_scaling",
        "PYTHONPATH": os.pathsep.join([str(EXTRA), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def study(data_dir, env, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('extra') / 'studies.db'}"
    cli(
        "search.launch",
        "--workers",
        "1",
        "--confirm-seeds",
        "1",
        "--budget",
        "5%",
        "--trials",
        "1",
        "--steps",
        "2",
        "--rungs",
        "0",
        "--no-reference",
        "--tasks",
        "vqa",
        "--study",
        "extra",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    )
    return url


def test_the_method_is_in_the_default_space_and_in_search_params(data_dir, env):
    space = yaml.safe_load(cli("search.params", "--space").stdout)
    searched = space["methods"]["output_scaling"]
    assert {k: v for k, v in searched.items() if not k.startswith("freeze.")} == {"learning_rate_scale": [1.0, 2.0]}
    # Its block, plus the freezing every method with modules of its own searches.
    assert [k for k in searched if k.startswith("freeze.")] == [
        "freeze.train_layernorm",
        "freeze.train_bias",
        "freeze.train_vl_projection",
        "freeze.train_embeddings",
    ]
    assert "output-scaling" in cli("search.params", "--list").stdout
    counted = json.loads(
        cli(
            "search.params",
            "--backbone",
            "tiny-clip+tiny-t5",
            "--preset",
            "output-scaling",
            "--tasks",
            "vqa",
            "--json",
            "--data-dir",
            str(data_dir),
        ).stdout
    )
    from transformers import AutoConfig

    lm = AutoConfig.from_pretrained(env.location.language_model)
    # One d_model-wide scale per feed-forward sublayer of the encoder and the decoder.
    assert counted["breakdown"]["petl"]["trainable"] == lm.d_model * (lm.num_layers + lm.num_decoder_layers)
    assert counted["trainable"] == counted["breakdown"]["petl"]["trainable"] + counted["breakdown"]["vl_projection"]["trainable"]


def test_a_study_trains_it_as_its_first_warm_start_and_the_dashboard_shows_it(study, monkeypatch):
    results = load_results(make_engine(study), "extra")
    row = results.iloc[0]
    assert row["method"] == "output_scaling" and row["status"] == "complete"
    assert row["config"]["training"]["learning_rate"] == pytest.approx(1e-2)  # the method's own tiny rate

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
    from dashboard_helpers import Dash

    dash = Dash(monkeypatch)
    app = dash.open(study, "views/trials.py", study="extra")
    assert "output_scaling" in app.dataframe[0].value["method"].tolist()
