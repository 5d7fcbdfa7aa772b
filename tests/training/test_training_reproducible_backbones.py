"""The embedded backbone family is bit-reproducible: two builds, other thread counts and other
CPU kernels, same bytes (#21).

Two data directories are built in subprocesses, one on 1 thread (OMP, MKL and the tokenizer
trainer's Rayon pool) through `python -m models.pretrain` then `python -m training.vl_pretrain`,
one on 2 threads through the same commands in the other order (so the T5 base is built through
the VL command's explicit benchmark root, and the base/variant order differs). The first also
runs as on a processor without AVX (torch's, MKL's and oneDNN's kernel choice set to their
oldest), the second on this machine's own kernels: a build ran on whatever the processor had
and wrote other weights on each (training.pretrain.pinned). Every file under `backbones/` must
have the same SHA-256: weights, tokenizers, configs, pretraining metrics and manifests alike (no
file holds a time: the VL build logs its duration instead of storing it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.pretrain.command import main as pretrain_main
from training.pretrain.pinned import kernel_identity
from training.pretrain.threads import build_threads

# As small as the recipe allows (the corpus keeps its 800-scene floor); the default backbone's
# VL-pretrained variant is included, with the tiny BART (its BPE tokenizer trainer is multi-threaded).
STEPS = {"VLPETL_PRETRAIN_STEPS": "6", "VLPETL_VLP_STEPS": "6"}
BUILD_ALL = [sys.executable, "-m", "models.pretrain"]
BUILD_VLP = [sys.executable, "-m", "training.vl_pretrain", "--backbone", "tiny-clip+tiny-t5"]


# What a processor without AVX would have torch, MKL and oneDNN use (each library's own switch).
OLDEST_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def build(data_dir: Path, threads: int, commands: list[list[str]], kernels: dict[str, str] | None = None) -> str:
    """Run the commands on `threads` threads (and `kernels`) into `data_dir`; return `--digests`' output."""
    count = str(threads)
    env = {**os.environ, **STEPS, "OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count, "RAYON_NUM_THREADS": count, "TQDM_DISABLE": "1"}
    env.update(kernels or {})
    for command in [*commands, [*BUILD_ALL, "--digests"]]:
        result = subprocess.run([*command, "--data-dir", str(data_dir)], capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not kernel_identity().startswith("x86-64"), reason="the kernels are pinned on x86-64 processors with AVX2 only")
def test_builds_on_one_and_two_threads_and_other_kernels_are_byte_identical(tmp_path):
    one = build(tmp_path / "one-thread", 1, [BUILD_ALL, BUILD_VLP], OLDEST_KERNELS)
    two = build(tmp_path / "two-threads", 2, [BUILD_VLP, BUILD_ALL])
    files = {line.split("  ", 1)[1] for line in one.splitlines()}
    for expected in (
        "components/tiny-clip/open_clip_model.safetensors",
        "components/tiny-t5/model.safetensors",
        "components/tiny-t5/tokenizer.json",
        "components/tiny-bart/model.safetensors",
        "components/tiny-bart/tokenizer.json",
        "tiny-clip+tiny-t5-vlp/vl_projection.safetensors",
        "tiny-clip+tiny-t5-vlp/language_model/model.safetensors",
        "tiny-clip+tiny-t5-vlp/manifest.json",
    ):
        assert expected in files
    assert one.splitlines() == two.splitlines()


def test_digests_of_a_data_dir_without_backbones_is_a_one_line_error(tmp_path, capsys):
    assert pretrain_main(["--digests", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no built backbones" in err


def test_the_build_thread_count_is_restored_after_the_build():
    import torch

    before = torch.get_num_threads()
    with build_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
