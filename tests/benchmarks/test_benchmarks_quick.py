"""The benchmark runner's quick mode writes a complete document with sane figures.

Throughput is left out: it launches two `search.launch` processes that each load torch and
score the whole VQA validation split, a minute of the 2-core machine for no extra coverage of
the runner.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a minute of real measurements on 2 cores

RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"
SECTIONS = {
    "step_time": "## Training step: each PETL method against full fine-tuning",
    "lora_vs_peft": "## Our LoRA against peft's LoRA",
    "overhead": "## Framework overhead: a trial against a plain PyTorch loop",
    "feature_cache": "## Visual-feature cache against the frozen encoder at every step",
    "search_efficiency": "## Search efficiency: samplers against random search, and multi-fidelity",
    "gpu": "## GPU: samples/s and achieved TFLOP/s on base-size backbones",
}


def test_quick_run_writes_every_section(tmp_path, data_dir, env):
    out = tmp_path / "BENCHMARKS.md"
    command = [sys.executable, str(RUNNER), "--quick", "--out", str(out), "--data-dir", str(data_dir), "--only", ",".join(SECTIONS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    document = out.read_text()
    for heading in ["# Benchmarks", "## Targets of issue #9", *SECTIONS.values(), "# Appendix"]:
        assert heading in document, f"missing {heading!r}"
    # What the command printed is what the document holds.
    assert "Our LoRA against peft's LoRA" in result.stdout
    ratio = float(re.search(r"our LoRA step / peft's \(tiny\) \| ([0-9.]+)", document).group(1))
    assert 0.3 < ratio < 3, ratio  # same work in both arms; only noise can move it
    assert re.search(r"max abs logit gap ours vs peft \(tiny\) \| 0 \|", document), "our LoRA must compute what peft's does"
    speedups = re.findall(r"\| ([0-9.]+)x \|\n", document.split(SECTIONS["feature_cache"])[1])
    assert speedups and all(float(s) > 0 for s in speedups)
    if "none" in document.split("| GPU |")[1].split("\n")[0]:
        assert "Skipped: no CUDA device" in document


def test_every_benchmark_script_imports() -> None:
    # Scripts run by hand (replication, pretraining, multitask...) are outside the quick run;
    # a name they import that the code no longer has should fail here, not on the day they are run.
    folder = RUNNER.parent
    names = sorted(path.stem for path in folder.glob("*.py"))
    code = f"import sys; sys.path.insert(0, {str(folder)!r}); import importlib; [importlib.import_module(n) for n in {names!r}]"
    result = subprocess.run([sys.executable, "-c", code], cwd=folder.parent, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
