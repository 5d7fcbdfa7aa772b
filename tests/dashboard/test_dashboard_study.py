"""The study's own record on the Overview: its budget in the sidebar, its tasks, data, backbone."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dashboard_helpers import (
    DATA_FILES,
    WEIGHTS,
    Dash,
    launch_settings,
    make_trial,
    seed_launched,
    trial_inputs,
)

import search.study_settings
from dashboard import study as study_module
from dashboard.settings import shown_storage
from dashboard.study import StudyAttrs, describe_study, shown_path, study_attrs
from storage import default_storage_url
from tasks.digests import summary

LAUNCHED = "shapes-budget-5pct"
OTHER = "vqa-budget-150k"
BARE = "recorded-elsewhere"


def _records(study: str, data_files: dict[str, Any]) -> list[Any]:
    environment = trial_inputs(data_files)
    return [
        make_trial(0, "complete", "full_ft", 100.0, 70.0, study=study, environment=environment),
        make_trial(1, "complete", "lora", 1.5, 66.25, study=study, environment=environment),
        make_trial(2, "complete", "adapter", 4.0, 68.75, study=study, environment=environment),
        make_trial(3, "complete", "adapter", 6.0, 69.0, study=study, environment=environment),
    ]


@pytest.fixture
def launched(tmp_path: Path) -> str:
    """Two studies as search.launch leaves them (settings, data digests, rows with inputs) and
    one without settings. ``vqa-budget-150k`` was written last, so it opens first; its
    budget is a count.
    """
    url = default_storage_url(tmp_path)
    seed_launched(url, BARE, None, _records(BARE, {}))
    seed_launched(url, LAUNCHED, launch_settings(), _records(LAUNCHED, summary(DATA_FILES)))
    seed_launched(url, OTHER, launch_settings(budget="150k"), _records(OTHER, summary(DATA_FILES)))
    return url


def _description(app: Any) -> dict[str, str]:
    return Dash.report(app, "item")["value"].to_dict()


def test_attribute_names_are_the_searchs() -> None:
    # dashboard.study names them itself so that the dashboard need not import search.
    assert study_module.SETTINGS_ATTR == search.study_settings.SETTINGS_ATTR
    assert study_module.INPUTS_ATTR == search.study_settings.INPUTS_ATTR


def test_description_of_a_study_on_user_data() -> None:
    attrs = study_attrs({"vlpetl_settings": launch_settings(), "vlpetl_inputs": {"files": DATA_FILES}})
    rows = pd.DataFrame({"environment": [trial_inputs(summary(DATA_FILES))] * 2, "config": [{}, {}]})
    described = describe_study(attrs, rows).set_index("item")["value"].to_dict()

    assert described["tasks"] == "shapes, vqa"
    assert described["data"].endswith("my-data/data.yaml")
    assert described["data: shapes"] == "jsonl · train: shapes/train.jsonl · val: shapes/val.jsonl"
    assert described["data: vqa"] == "vqa · root: /datasets/vqa · images: /datasets/coco/images · search_examples: 2000"
    combined = summary(DATA_FILES)["sha256"]
    assert described["data files"] == f"3 files pinned by content, sha256 {combined[:16]}"
    assert described["backbone"] == "tiny-clip+tiny-t5-vlp"
    weights = described["backbone weights (sha256)"]
    assert (
        weights == f"CLIP {WEIGHTS['clip_weights_sha256'][:16]} · language model "
        f"{WEIGHTS['language_model_weights_sha256'][:16]} · V→L projection {WEIGHTS['vl_projection_sha256'][:16]}"
    )
    assert described["budget"] == "5% (as launched)"
    assert described["search"] == "24 trials, 225 steps each, tpe sampler, seed 0"
    assert described["objectives"] == "score, trainable_pct"
    space = hashlib.sha256(launch_settings()["space_yaml"].encode()).hexdigest()[:16]
    assert described["search space"] == f"default.yaml, sha256 {space} of its text"  # no machine path
    assert described["code revision"] == "0123456789ab"
    assert attrs.budget == "5%"


NO_ROWS = pd.DataFrame({"environment": [], "config": []})


def test_description_says_how_the_rungs_rank_trials() -> None:
    def search_row(**changes) -> str:
        attrs = study_attrs({"vlpetl_settings": launch_settings(**changes)})
        return describe_study(attrs, NO_ROWS).set_index("item")["value"]["search"]

    today = search_row(rungs=2, rung_measure="loss", rung_peers="method")
    assert today == "24 trials, 225 steps each, 2 fidelity rungs by held-out loss, within each method, tpe sampler, seed 0"
    # Settings stored before the peers were recorded ranked every trial together.
    before = {k: v for k, v in launch_settings(rungs=1).items() if k != "rung_peers"}
    attrs = study_attrs({"vlpetl_settings": before})
    assert "1 fidelity rungs by score, across methods" in describe_study(attrs, NO_ROWS).set_index("item")["value"]["search"]


def test_description_flags_trials_that_read_other_weights() -> None:
    one, other = trial_inputs({}), trial_inputs({}, clip_weights_sha256="9f" * 32)
    rows = pd.DataFrame({"environment": [one, other, one], "config": [{}] * 3})
    described = describe_study(None, rows).set_index("item")["value"].to_dict()
    assert described["backbone weights (sha256)"].startswith(f"CLIP 2 different ({WEIGHTS['clip_weights_sha256'][:16]}, {'9f' * 8})")
    assert "budget" not in described and "search" not in described  # nothing recorded them


def test_description_of_the_generated_benchmark_from_rows_alone() -> None:
    inputs = {"backbone": "tiny-clip+tiny-t5-vlp", **WEIGHTS, "benchmark": "mini-vl-v3-seed0",
              "benchmark_manifest_sha256": "4f" * 32}  # fmt: skip
    rows = pd.DataFrame({"environment": [{"inputs": inputs}], "config": [{"tasks": ["vqa", "gqa"], "backbone": "x"}]})
    described = describe_study(StudyAttrs(settings=None, data_files=None), rows).set_index("item")["value"].to_dict()
    assert described["tasks"] == "vqa, gqa"
    assert described["data"] == f"generated benchmark mini-vl-v3-seed0, manifest sha256 {'4f' * 8}"
    assert described["backbone"] == "tiny-clip+tiny-t5-vlp"


def test_description_of_a_bare_study_is_its_configs() -> None:
    rows = pd.DataFrame({"environment": [None], "config": [{"tasks": ["vqa"], "backbone": "tiny-bart"}]})
    described = describe_study(None, rows)
    assert described.values.tolist() == [["tasks", "vqa"], ["backbone", "tiny-bart"]]


def test_paths_shown_without_this_machines_folders(tmp_path: Path) -> None:
    assert shown_path(str(tmp_path / "data" / "x.yaml"), cwd=tmp_path) == "data/x.yaml"
    assert shown_path(str(Path.home() / "d" / "x.yaml"), cwd=tmp_path) == "~/d/x.yaml"
    assert shown_path("relative/x.yaml", cwd=tmp_path) == "relative/x.yaml"
    assert shown_path("/elsewhere/x.yaml", cwd=tmp_path) == "/elsewhere/x.yaml"
    inside = default_storage_url(tmp_path / "data")
    assert shown_storage(inside, cwd=tmp_path) == "sqlite:///data/studies.db"
    assert shown_storage(default_storage_url(Path("/elsewhere")), cwd=tmp_path) == "sqlite:////elsewhere/studies.db"
    assert shown_storage("postgresql+psycopg://u:hunter2@db/x", cwd=tmp_path) == "postgresql+psycopg://u:***@db/x"


def test_overview_describes_the_study(launched: str, dash: Any) -> None:
    app = dash.open(launched, study=LAUNCHED)
    described = _description(app)
    assert described["tasks"] == "shapes, vqa"
    assert described["data: shapes"].startswith("jsonl · train: shapes/train.jsonl")
    assert described["data files"].endswith(summary(DATA_FILES)["sha256"][:16])
    assert described["backbone"] == "tiny-clip+tiny-t5-vlp"
    assert WEIGHTS["vl_projection_sha256"][:16] in described["backbone weights (sha256)"]
    assert described["budget"] == "5% (as launched)"
    assert "No launch settings" not in dash.texts(app.caption)


def test_budget_box_starts_from_the_studys_budget(launched: str, dash: Any) -> None:
    app = dash.open(launched, study=LAUNCHED)
    assert app.text_input(key="budget_text").value == "5%"
    assert "Best within 5%: trial #2 (adapter), score 68.8 at 4.00% trainable (4,000 parameters)." in dash.texts(app.success)
    assert [s["x0"] for s in dash.figure(app, "pareto")["layout"]["shapes"]] == [5.0]
    front = dash.report(app, "trial")
    assert front["budget 5%"].to_dict() == {"1": "within", "2": "within", "3": "over (reference)", "0": "over (reference)"}
    assert "launched with `--budget 5%`." in dash.texts(app.sidebar.caption)


def test_budget_follows_the_study_until_the_user_types_one(launched: str, dash: Any) -> None:
    app = dash.open(launched)  # the study written last: its budget is 150k
    assert app.selectbox(key="study").value == OTHER
    assert app.text_input(key="budget_text").value == "150k"

    app.selectbox(key="study").set_value(LAUNCHED).run()
    assert app.text_input(key="budget_text").value == "5%"
    assert "Best within 5%" in dash.texts(app.success)
    app.selectbox(key="study").set_value(BARE).run()
    assert app.text_input(key="budget_text").value == ""  # no budget stored: none assumed
    assert not app.success
    app.selectbox(key="study").set_value(LAUNCHED).run()

    app.text_input(key="budget_text").set_value("2%").run()
    assert "trying another" in dash.texts(app.sidebar.caption)
    app.selectbox(key="study").set_value(OTHER).run()
    assert app.text_input(key="budget_text").value == "2%"  # what the user typed stays
    assert "Best within 2%: trial #1 (lora)" in dash.texts(app.success)


def test_budget_in_the_address_wins(launched: str, dash: Any) -> None:
    app = dash.open(launched, study=LAUNCHED, budget="1%")
    assert app.text_input(key="budget_text").value == "1%"
    assert "No complete trial within the budget 1%." in dash.texts(app.warning)


def test_a_study_without_settings_keeps_an_empty_box(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url)
    assert app.text_input(key="budget_text").value == ""
    assert not app.success
    assert "No launch settings are stored with this study" in dash.texts(app.caption)
    assert _description(app)["tasks"] == "vqa, gqa"
