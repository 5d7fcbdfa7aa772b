"""Bad command-line input: one clear line, a non-zero exit, nothing created."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("budget", ["7", "0%", "150%", "lots", "-1k"])
def test_bad_budget_exits_with_one_line_and_creates_nothing(tmp_path, budget):
    data_dir = tmp_path / "data"
    result = run("search.launch", f"--budget={budget}", "--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert repr(budget) in lines[0] and "5%" in lines[0] and "150k" in lines[0]
    assert not data_dir.exists() and list(tmp_path.iterdir()) == [], "nothing may be written on bad input"


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--tasks", "vqa,klingon", "klingon"),
        ("--backbone", "gpt-9", "known backbones"),
        ("--backbone", "clip-rn101+bart-base", "facebook/bart-base"),
        ("--storage", "mysql://x/y", "mysql"),
        ("--sampler", "grid", "tpe"),
        ("--trials", "0", "--trials"),
        ("--study", "bad name!", "--study"),
    ],
)
def test_other_bad_flags_are_rejected_before_anything_is_written(tmp_path, flag, value, needle):
    result = run("search.launch", "--budget", "5%", "--data-dir", str(tmp_path / "data"), flag, value, cwd=tmp_path)
    assert result.returncode != 0
    assert needle in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_without_a_matching_study_fails_clearly(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    result = run("search.export", "--study", "s", "--storage", url, "--budget", "5%", "--out", str(tmp_path / "r.yaml"))
    assert result.returncode != 0 and "missing.db" in result.stderr
    assert not (tmp_path / "r.yaml").exists()


def test_train_rejects_a_broken_recipe(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("config:\n  backbone: tiny-clip+tiny-t5\n  tasks: [vqa]\n  method: adapter\n  method_params: {reduction_factor: 0}\n")
    result = run("search.train", "--recipe", str(recipe), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "reduction_factor" in result.stderr and ">= 1" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("module", "options", "required"),
    [("search.launch", "LaunchOptions", ["--budget", "5%"]), ("search.worker", "WorkerOptions", ["--study", "s"])],
)
def test_the_typed_options_are_the_parser_flags_with_the_same_defaults(module, options, required):
    """`main(argv)` only parses; the logic takes the options object, which must not drift from the flags."""
    import dataclasses
    import importlib

    cli = importlib.import_module(module)
    parsed = vars(cli.build_parser().parse_args(required))
    fields = getattr(cli, options)
    assert list(parsed) == [field.name for field in dataclasses.fields(fields)]
    assert fields(**parsed) == fields(**{required[0].lstrip("-"): required[1]})


@pytest.mark.parametrize(
    "argv",
    [
        ["search.launch", "--budget", "lots"],
        ["search.launch", "--budget", "5%", "--sampler", "grid"],
        ["search.launch", "--budget", "5%", "--tasks", "vqa,klingon"],
        ["search.launch", "--budget", "5%", "--backbone", "gpt-9"],
        ["search.launch", "--budget", "5%", "--storage", "mysql://x/y"],
        ["search.confirm", "--help"],
        ["search.train", "--recipe", "best.yaml", "--checkpoint-every", "0"],
        ["search.train", "--recipe", "best.yaml", "--lr-schedule", "step"],
    ],
)
def test_a_mistyped_flag_fails_before_the_heavy_libraries_load(tmp_path, argv):
    """A user who mistypes a flag hears of it at once: torch, open_clip and transformers take
    seconds to import (a bad flag took 15 s before its check came first), and no check of a
    flag's text needs them."""
    program = (
        "import runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        f"    runpy.run_module({argv[0]!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'transformers', 'optuna') if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    expected_code = 0 if "--help" in argv else 2
    assert result.stdout.strip().splitlines()[-1] == f"{expected_code} []", result.stdout + result.stderr
