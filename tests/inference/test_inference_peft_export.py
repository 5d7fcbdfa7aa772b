"""A trained LoRA run exported for peft, and merged for transformers alone, computes what the
project's model computes (max abs difference of the logits <= 1e-5)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from run_commands import cli, in_process

import search.export

from inference import load_run
from models.config import TrialConfig
from models.petl import get_method

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")
TEXT = ["vqa: what color is the circle?", "vqa: how many squares are there?"]


@pytest.fixture(scope="module")
def lora_run(run_dir, data_dir, tmp_path_factory) -> Path:
    """The e2e run's recipe with LoRA as its method, trained for a few steps."""
    work = tmp_path_factory.mktemp("lora-run")
    recipe = json.loads((run_dir / "recipe.json").read_text())
    lora = get_method("lora")
    config = dataclasses.replace(
        TrialConfig.from_dict(recipe["config"]), method="lora", method_params={"rank": 4, "alpha": 8.0}, freeze=lora.freeze
    )
    (work / "lora.json").write_text(json.dumps({**recipe, "config": config.to_dict()}))
    cli("search.train", "--recipe", str(work / "lora.json"), "--steps", "20", "--out", str(work / "run"), "--data-dir", str(data_dir))
    return work / "run"


def logits(lm, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    labels = tokenizer(["purple", "three"], return_tensors="pt", padding=True).input_ids
    with torch.no_grad():
        return lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).logits


def project_logits(run) -> torch.Tensor:
    run.model.task_context.active = run.tasks[0]
    return logits(run.model.lm, run.tokenizer)


def test_the_peft_export_loads_in_peft_with_the_projects_logits(lora_run, data_dir, tmp_path):
    out = tmp_path / "peft"
    printed = cli("search.export", "--run", str(lora_run), "--format", "peft", "--out", str(out), "--data-dir", str(data_dir)).stdout
    assert "PeftModel.from_pretrained" in printed
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in out.iterdir()}
    run = load_run(lora_run, data_dir, device="cpu")
    base = transformers.AutoModelForSeq2SeqLM.from_pretrained(run.location.language_model)
    loaded = peft.PeftModel.from_pretrained(base, str(out)).eval()
    expected = project_logits(run)
    assert (logits(loaded, run.tokenizer) - expected).abs().max() <= 1e-5
    plain = transformers.AutoModelForSeq2SeqLM.from_pretrained(run.location.language_model).eval()
    assert (logits(plain, run.tokenizer) - expected).abs().max() > 1e-4, "the trained LoRA changes the outputs"


def test_the_merged_export_loads_with_transformers_alone(lora_run, data_dir, tmp_path):
    out = tmp_path / "merged"
    cli("search.export", "--run", str(lora_run), "--format", "peft", "--merge", "--out", str(out), "--data-dir", str(data_dir))
    assert not (out / "adapter_config.json").exists()
    merged = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(out)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    run = load_run(lora_run, data_dir, device="cpu")
    assert (logits(merged, tokenizer) - project_logits(run)).abs().max() <= 1e-5


def test_a_run_of_another_method_names_it_and_writes_nothing(run_dir, data_dir, tmp_path):
    method = json.loads((run_dir / "recipe.json").read_text())["config"]["method"]
    assert method != "lora"
    out = tmp_path / "peft"
    result = in_process(search.export.main, "--run", str(run_dir), "--format", "peft", "--out", str(out), "--data-dir", str(data_dir))
    assert result.returncode == 2 and f"trained method {method!r}, which peft's LoRA format cannot express" in result.stderr
    assert not out.exists()
    result = in_process(search.export.main, "--run", str(run_dir), "--out", str(out))
    assert result.returncode == 2 and "add --format peft" in result.stderr
