"""search.export --trial N and --format peft on a study seeded row by row (no training: seconds, not minutes).

The rows are what search workers write (`storage.record_trial`) with real trial configurations
on base-size backbones, which build on the meta device from their preset's config: the peft
export needs no weights and no data directory for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from models.config import SharingMode, TrialConfig
from models.petl import get_method
from search import export
from storage import TrialRecord, init_schema, make_engine, record_trial

peft = pytest.importorskip("peft")

STUDY = "seeded"
TOTAL = 1_000_000


def config(method: str, backbone: str = "clip-rn101+t5-base", tasks=("vqa",), sharing=SharingMode.SINGLE, **params) -> dict:
    spec = get_method(method)
    return TrialConfig(backbone=backbone, tasks=tasks, method=method, method_params=params, sharing=sharing, freeze=spec.freeze).to_dict()


# number: (status, config, trainable %, score)
TRIALS = {
    0: ("complete", config("lora", rank=4, alpha=16.0, dropout=0.05, targets=("q", "v")), 1.0, 60.0),
    1: ("complete", config("adapter", reduction_factor=8), 3.0, 62.0),
    2: ("failed", config("lora", rank=8), 2.0, None),
    3: ("complete", config("lora", tasks=("vqa", "gqa"), sharing=SharingMode.MULTIPLE, rank=2), 2.0, 61.0),
    4: ("complete", config("lora", backbone="clip-rn101+bart-base", rank=8, targets=("q", "v", "ffn_in")), 4.0, 63.0),
    5: ("complete", config("lora", backbone="tiny-clip+tiny-t5", rank=4), 0.5, 10.0),
    6: ("complete", config("adapter", reduction_factor=2), 20.0, 70.0),
}


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'studies.db'}"
    engine = make_engine(url)
    init_schema(engine)
    for number, (status, trial, pct, score) in TRIALS.items():
        record = TrialRecord(
            study_name=STUDY,
            trial_number=number,
            status=status,
            method=trial["method"],
            config=trial,
            trainable_params=round(pct / 100 * TOTAL),
            total_params=TOTAL,
            score=score,
            error="boom" if status == "failed" else None,
            finished_at=datetime(2024, 5, 6, tzinfo=UTC),
        )
        record_trial(engine, record)
    engine.dispose()
    return url


def run(storage: str, tmp_path: Path, capsys, *argv: str) -> tuple[int, str, str]:
    args = ["--study", STUDY, "--storage", storage, "--data-dir", str(tmp_path / "data"), *argv]
    try:
        code = export.main(args)
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_trial_exports_that_trials_recipe(storage, tmp_path, capsys):
    code, out, err = run(storage, tmp_path, capsys, "--trial", "1", "--out", str(tmp_path / "t1.yaml"))
    assert code == 0, err
    recipe = yaml.safe_load((tmp_path / "t1.yaml").read_text())
    assert recipe["source"]["trial_number"] == 1 and recipe["source"]["budget"] is None
    assert recipe["config"] == TRIALS[1][1] and recipe["expected"]["score"] == 62.0
    assert "trial 1 (adapter" in out and "search.train --recipe" in out


@pytest.mark.parametrize(
    ("trial", "needles"),
    [("9", ["--trial 9 is not a trial of study 'seeded'"]), ("2", ["--trial 2", "did not complete", "'failed'"])],
)
def test_an_unknown_or_unfinished_trial_exits_2_listing_the_completed_ones(storage, tmp_path, capsys, trial, needles):
    code, _, err = run(storage, tmp_path, capsys, "--trial", trial, "--out", str(tmp_path / "r.yaml"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for needle in [*needles, "completed trials: 0, 1, 3, 4, 5, 6"]:
        assert needle in err, (needle, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["--trial", "1", "--budget", "5%"], "not allowed with argument"), ([], "--budget or --trial required")],
)
def test_exactly_one_of_trial_and_budget(storage, tmp_path, capsys, argv, needle):
    code, _, err = run(storage, tmp_path, capsys, *argv, "--out", str(tmp_path / "r.yaml"))
    assert code == 2 and needle in err
    assert list(tmp_path.iterdir()) == []


def test_peft_format_writes_the_lora_trials_adapter_config(storage, tmp_path, capsys):
    code, out, err = run(storage, tmp_path, capsys, "--trial", "0", "--format", "peft", "--out", str(tmp_path / "peft"))
    assert code == 0, err
    assert [p.name for p in (tmp_path / "peft").iterdir()] == ["adapter_config.json"]
    loaded = peft.PeftConfig.from_pretrained(str(tmp_path / "peft"))
    assert isinstance(loaded, peft.LoraConfig) and loaded.task_type == "SEQ_2_SEQ_LM"
    assert (loaded.r, loaded.lora_alpha, loaded.lora_dropout, loaded.bias) == (4, 16.0, 0.05, "none")  # T5 has no biases
    assert loaded.base_model_name_or_path == "t5-base"
    # Every attention module's q and v: 12 encoder self + 12 decoder self + 12 cross, by their names in t5-base.
    assert len(loaded.target_modules) == 72 and "decoder.block.11.layer.1.EncDecAttention.v" in loaded.target_modules
    assert "trial 0 (lora" in out and "get_peft_model" in out and "'t5-base'" in out


def test_peft_format_with_a_budget_exports_the_best_lora_within_it(storage, tmp_path, capsys):
    code, out, err = run(storage, tmp_path, capsys, "--budget", "5%", "--format", "peft", "--out", str(tmp_path / "peft"))
    assert code == 0, err
    loaded = peft.LoraConfig.from_pretrained(str(tmp_path / "peft"))  # trial 4: the best score within 5%
    assert (loaded.r, loaded.bias, loaded.base_model_name_or_path) == (8, "all", "facebook/bart-base")
    assert "model.encoder.layers.0.fc1" in loaded.target_modules and "model.decoder.layers.5.encoder_attn.q_proj" in loaded.target_modules


@pytest.mark.parametrize(
    ("trial", "needles"),
    [
        ("1", ["trial 1", "method 'adapter'", "--format recipe", "python -m search.train", "trainable.safetensors"]),
        ("6", ["method 'adapter'", "--format recipe"]),
        ("3", ["trial 3", "sharing 'multiple'", "one LoRA per task", "--format recipe"]),
        ("5", ["'tiny-clip+tiny-t5' is not built under", "--data-dir"]),
    ],
)
def test_peft_format_refuses_what_peft_cannot_express_and_writes_nothing(storage, tmp_path, capsys, trial, needles):
    code, _, err = run(storage, tmp_path, capsys, "--trial", trial, "--format", "peft", "--out", str(tmp_path / "peft"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert list(tmp_path.iterdir()) == []


def test_peft_format_wants_a_folder(storage, tmp_path, capsys):
    code, _, err = run(storage, tmp_path, capsys, "--trial", "0", "--format", "peft", "--out", str(tmp_path / "best.yaml"))
    assert code == 2 and "writes a folder" in err
    assert list(tmp_path.iterdir()) == []
