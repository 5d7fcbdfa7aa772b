"""`python -m search.params`: one JSON object with the counts, a table, clear errors."""

from __future__ import annotations

import json
import subprocess

from run_commands import in_process

import search.params


def run(*args: str) -> subprocess.CompletedProcess:
    return in_process(search.params.main, *args)  # what `python -m search.params` runs


def test_json_output_has_the_counts_and_the_breakdown():
    result = run("--backbone", "clip-rn101+bart-base", "--preset", "single-adapter", "--tasks", "vqa,gqa,nlvr2,caption", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"trainable", "total", "trainable_pct", "trainable_pct_with_clip", "breakdown"} <= set(data)
    assert round(data["trainable_pct"], 2) == 4.18
    assert set(data["breakdown"]) == {"language_model", "visual_order_tokens", "vl_projection", "petl", "clip_visual"}
    assert data["breakdown"]["language_model"]["total"] == 139_420_416
    assert data["trainable_pct_with_clip"] < data["trainable_pct"]


def test_table_output_and_video_default_tasks():
    result = run("--backbone", "video-clip512+bart-base", "--preset", "single-lora")
    assert result.returncode == 0, result.stderr
    assert "tvqa, how2qa, tvc, yc2c" in result.stdout and "5.17%" in result.stdout


def test_unknown_preset_is_one_clear_line():
    result = run("--preset", "tiny-miracle")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "tiny-miracle" in result.stderr and "single-adapter" in result.stderr
