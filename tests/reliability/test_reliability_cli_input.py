"""Bad command-line input and recipe files: the value, the rule and the fix; exit 2; nothing written.

Flags checked elsewhere are not repeated here: tests/search/test_search_cli.py (launch --budget,
--tasks, --backbone, --storage, --sampler, --trials, --study), test_search_space_file.py
(--space contents), test_search_distributed.py (worker --time-limit, --threads, --wait) and
tests/dashboard/test_dashboard_launch.py (dashboard --storage, --port). The CLIs run in-process
through their ``main``: validation happens before any import that would be slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dashboard.__main__ as dashboard_cli
from search import export, launch, train, worker

SQLITE = "sqlite:///studies.db"


def _fails(program, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        program.main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("program", "argv", "needles"),
    [
        (launch, ["--budget", "5%", "--time-limit", "0"], ["--time-limit", "> 0 seconds", "got 0"]),
        (launch, ["--budget", "5%", "--steps", "0"], ["--steps", ">= 1", "got 0"]),
        (launch, ["--budget", "5%", "--rungs", "10"], ["--rungs", "0 (no multi-fidelity) to 4", "got 10"]),
        (launch, ["--budget", "5%", "--rung-measure", "bleu"], ["--rung-measure", "'bleu'", "choose from 'loss', 'score'"]),
        (launch, ["--budget", "5%", "--rung-peers", "family"], ["--rung-peers", "'family'", "choose from 'method', 'all'"]),
        (launch, ["--budget", "5%", "--step-budget", "0"], ["--step-budget", ">= 1 training steps", "got 0"]),
        (launch, ["--budget", "5%", "--workers", "0"], ["--workers", ">= 1", "got 0"]),
        (launch, ["--budget", "5%", "--workers", "two"], ["--workers", ">= 1 or auto", "got two", "--workers 1"]),
        (launch, ["--budget", "5%", "--seed", "x"], ["--seed", "invalid int value: 'x'"]),
        (launch, ["--budget", "5%", "--objectives", "trainable_pct,score"], ["'trainable_pct,score'", "give score,trainable_pct"]),
        (launch, ["--budget", "5%", "--objectives", "score,trainable_pct,speed"], ["speed", "known: score, trainable_pct, train_time"]),
        (launch, ["--budget", "5%", "--space", "nowhere.yaml"], ["nowhere.yaml", "file not found", "omit --space"]),
        (worker, ["--study", "s", "--storage", "mysql://u@h/db"], ["'mysql'", "only sqlite and postgresql", "accepted forms"]),
        (worker, ["--study", "s", "--storage", SQLITE, "--data-dir", "a-file"], ["--data-dir", "a-file", "is a file", "pass a folder"]),
        (export, ["--study", "s", "--storage", SQLITE, "--budget", "lots", "--out", "r.yaml"], ["'lots'", "such as 5%"]),
        (export, ["--study", "s", "--storage", SQLITE, "--budget", "5%", "--out", "r.txt"], ["r.txt", ".yaml, .yml, .json"]),
        (export, ["--study", "s", "--storage", "oracle://h/db", "--budget", "5%", "--out", "r.yaml"], ["'oracle'", "accepted forms"]),
        (train, ["--recipe", "missing.yaml"], ["missing.yaml", "does not exist", "python -m search.export"]),
        (train, ["--recipe", "missing.yaml", "--steps", "0"], ["--steps", ">= 1", "got 0"]),
        (dashboard_cli, ["--storage", SQLITE, "--address", "everywhere"], ["--address", "'everywhere'", "IP address", "127.0.0.1"]),
    ],
)
def test_a_bad_flag_exits_2_naming_value_rule_and_fix(program, argv, needles, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    if program is launch:
        argv = [*argv, "--data-dir", str(tmp_path / "data")]
    message = _fails(program, argv, capsys)
    for needle in needles:
        assert needle in message, (needle, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "nothing may be written on bad input"


def _train(recipe_text: str, tmp_path: Path, capsys, *extra: str) -> str:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text)
    message = _fails(train, ["--recipe", str(recipe), "--data-dir", str(tmp_path / "data"), *extra], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"], "nothing may be written on a bad recipe"
    return message


def test_every_problem_of_a_recipe_is_listed_at_once(tmp_path: Path, capsys) -> None:
    message = _train(
        "config:\n  backbone: gpt-9\n  tasks: [vqa, klingon]\n  method: lora\n  method_params: {rank: 0}\n"
        "  training: {steps: 0}\n  colour: blue\n",
        tmp_path, capsys,
    )  # fmt: skip
    for needle in (
        "backbone 'gpt-9' is unknown; known backbones: clip-rn101+bart-base", "tiny-clip+tiny-t5",
        "tasks ['klingon'] are unknown; supported: vqa", "training.steps must be >= 1, got 0",
        "lora.rank must be >= 1, got 0", "unknown keys ['colour']",
    ):  # fmt: skip
        assert needle in message, (needle, message)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("config: [1", "is not valid YAML at line 1, column 11"),
        ("name: best\n", "has no 'config' mapping; export it with python -m search.export"),
        ("config:\n  backbone: tiny-clip+tiny-t5\n  tasks: [vqa]\n  method: adapterz\n", "unknown PETL method 'adapterz'; known methods"),
        (
            "config:\n  backbone: tiny-clip+tiny-t5\n  tasks: [vqa]\n  method: lora\n  method_params: [rank, 4]\n",
            "method_params must be a mapping of name: value (such as {rank: 8}), got a list ['rank', 4]",
        ),
    ],
)
def test_a_broken_recipe_file_is_refused(text: str, needle: str, tmp_path: Path, capsys) -> None:
    assert needle in _train(text, tmp_path, capsys)


def test_a_recipe_whose_backbone_weights_are_missing_names_each_and_how_to_provide_it(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))  # nothing downloaded, nothing cached
    monkeypatch.setenv("VLPETL_LANGUAGE_MODEL", str(tmp_path / "no-such-model"))
    message = _train("config:\n  backbone: clip-rn101+bart-base\n  tasks: [vqa]\n  method: lora\n", tmp_path, capsys)
    assert "backbone 'clip-rn101+bart-base'" in message and "not on this machine" in message
    assert "no-such-model" in message and "VLPETL_LANGUAGE_MODEL=DIR" in message
    assert "VLPETL_CLIP_CHECKPOINT=FILE" in message
    assert "--random-init" not in message, "search.train has no such flag"


def test_train_refuses_a_data_dir_or_out_that_is_a_file(env, tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"config:\n  backbone: {env.location.preset.name}\n  tasks: [vqa]\n  method: vl_only\n")
    (tmp_path / "a-file").write_text("")
    message = _fails(train, ["--recipe", str(recipe), "--data-dir", str(tmp_path / "a-file")], capsys)
    assert "--data-dir" in message and "is a file; pass a folder" in message
    message = _fails(train, ["--recipe", str(recipe), "--data-dir", str(env.data_dir), "--out", str(tmp_path / "a-file")], capsys)
    assert "--out" in message and "is a file; pass a folder" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "recipe.yaml"]


def test_train_refuses_an_out_it_cannot_write_before_training(env, tmp_path: Path, capsys) -> None:
    """A read-only file system (here /proc, which refuses new files even to root) is found by a
    probe file before the data is read or anything trains; no probe file stays behind."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"config:\n  backbone: {env.location.preset.name}\n  tasks: [vqa]\n  method: vl_only\n")
    message = _fails(train, ["--recipe", str(recipe), "--data-dir", str(env.data_dir), "--out", "/proc/vlpetl-run/out"], capsys)
    assert "--out '/proc/vlpetl-run/out' cannot be written" in message and "creating a file in '/proc' failed" in message
    assert "writable file system" in message and "nothing was trained" in message
    out = tmp_path / "run"
    assert train.main(["--recipe", str(recipe), "--data-dir", str(env.data_dir), "--out", str(out), "--steps", "1"]) == 0
    assert not list(tmp_path.glob(".vlpetl-write-check-*")) and not list(out.glob(".vlpetl-write-check-*"))
