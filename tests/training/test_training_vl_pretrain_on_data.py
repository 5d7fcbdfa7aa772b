"""VL pretraining of a user's backbone on a user's captions, and a search that starts from it.

The backbone is what a user has on disk (an open_clip RN50 checkpoint, a T5 v1.1 directory
with its tokenizer); the captions are COCO's layout as the authors ship it, written by the
test from a small generated benchmark.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_commands import in_process
from safetensors.torch import load_file
from user_backbones import save_clip, save_t5_v1_1
from user_data_layouts import small_benchmark, write_caption

import training.vl_pretrain as vl_pretrain
from models.backbone_pin import backbone_digests
from models.backbones.backbone_spec import canonical_backbone
from models.build import build_vl_model
from models.config import TrialConfig
from models.location import BackboneLocation

pytestmark = pytest.mark.slow  # a real RN50 encodes every image on the CPU


def _command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=1200, cwd=cwd)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, str, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("vlp-on-data")
    weights = root / "weights"
    save_clip("RN50", weights / "rn50.safetensors")
    save_t5_v1_1(weights / "t5", d_model=64, layers=2)
    bench = small_benchmark(root / "bench", train=24)
    write_caption(bench, root / "coco" / "karpathy", root / "coco" / "images")  # COCO's Karpathy-split layout
    (root / "data.yaml").write_text("tasks:\n  caption:\n    format: caption\n    root: coco/karpathy\n    images: coco/images\n")
    result = _command(
        "training.vl_pretrain", "--backbone", "clip=RN50:weights/rn50.safetensors,lm=weights/t5", "--data", "data.yaml",
        "--out", "vlp", "--steps", "30", "--batch-size", "8", "--learning-rate", "1e-3", "--device", "cpu",
        "--data-dir", str(root / "cache"), cwd=root,
    )  # fmt: skip
    return root, result.stdout, result


def test_it_writes_a_backbone_folder_and_the_spec_that_names_it(pretrained) -> None:
    root, stdout, result = pretrained
    assert result.returncode == 0, result.stderr[-3000:]
    out = root / "vlp"
    spec = re.search(r"search from it with: --backbone '([^']+)'", stdout).group(1)
    assert spec == f"clip=RN50:{root / 'weights' / 'rn50.safetensors'},lm={out / 'language_model'},proj={out / 'vl_projection.safetensors'}"
    assert {p.name for p in out.iterdir()} == {"language_model", "vl_projection.safetensors", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"] == ["caption"] and manifest["settings"]["steps"] == 30
    assert manifest["data_files"]["files"] > 0, "the data it learned from is recorded by digest"
    assert "lm/model.safetensors" in manifest["started_from"]["files"]
    losses = manifest["held_out_loss"]
    assert losses["after"] < losses["before"], losses
    assert not list(root.glob(".vlp.partial-*")), "no staging folder is left behind"


def test_a_trial_on_that_spec_starts_from_the_trained_projection_and_language_model(pretrained) -> None:
    root, stdout, _ = pretrained
    spec = re.search(r"search from it with: --backbone '([^']+)'", stdout).group(1)
    backbone = canonical_backbone(spec)
    location = BackboneLocation.resolve(backbone, root / "cache")
    assert "vl_projection/vl_projection.safetensors" in backbone_digests(location), "a study pins the projection too"
    model, _ = build_vl_model(TrialConfig(backbone=backbone, tasks=("caption",), method="lora"), location)
    saved = load_file(str(root / "vlp" / "vl_projection.safetensors"))
    state = model.visual_embedding.state_dict()
    assert all(torch.equal(state[key], saved[key]) for key in saved)
    trained_lm = load_file(str(root / "vlp" / "language_model" / "model.safetensors"))
    original_lm = load_file(str(root / "weights" / "t5" / "model.safetensors"))
    changed = [k for k in original_lm if not torch.equal(trained_lm[k], original_lm[k])]
    assert changed, "the language model was trained"


def test_a_search_runs_on_the_pretrained_backbone(pretrained) -> None:
    root, stdout, _ = pretrained
    spec = re.search(r"search from it with: --backbone '([^']+)'", stdout).group(1)
    result = _command(
        "search.launch", "--workers", "1", "--budget", "50%", "--backbone", spec, "--data", "data.yaml", "--trials", "1", "--steps", "2",
        "--rungs", "0", "--no-warm-start", "--no-reference", "--confirm-seeds", "1", "--study", "from-vlp",
        "--storage", f"sqlite:///{root / 'studies.db'}", "--data-dir", str(root / "cache"), cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pareto front" in result.stdout


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--data", "data.yaml"], "--data needs --out DIR"),
        (["--out", "x"], "--out applies to VL pretraining on your data; pass --data FILE too"),
        (["--data", "data.yaml", "--out", "vlp"], "--out 'vlp' is not empty"),
        (
            ["--data", "data.yaml", "--out", "new", "--backbone", "tiny-clip+tiny-t5"],
            "is an embedded preset, VL-pretrained on the project's own corpus",
        ),
        (["--data", "data.yaml", "--out", "new", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["--data", "data.yaml", "--out", "new", "--device", "cuda:99"], "--device 'cuda:99'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(pretrained, argv: list[str], words: str, monkeypatch) -> None:
    root, _, _ = pretrained
    before = sorted(p.name for p in root.iterdir())
    monkeypatch.chdir(root)
    result = in_process(vl_pretrain.main, *argv, "--data-dir", str(root / "cache"))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in root.iterdir()) == before
