"""The parts of the GPU check beyond step times: the card's bf16 peak, real trials, a search with a kill.

Used by gpu.py. Each part takes the device and a backbone, so `python benchmarks/gpu.py
--dry-run-cpu` runs the same code on the CPU with the embedded tiny backbone (a check of the
script itself, minutes on 2 cores); on a CUDA machine the parts run on a random-init
base-size backbone, as issue #22 asks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import table

# One run preset per method family (adapters, hypernetwork, PHM, LoRA, prompts, layer norms, full).
FAMILIES = ("full-ft", "single-adapter", "hyperformer", "single-compacter", "single-lora", "single-prompt", "vl-ln")
REPO = Path(__file__).resolve().parents[1]


def matmul_peak_tflops(device: torch.device, size: int = 8192, repeats: int = 20) -> float:
    """The card's measured bf16 matmul rate: the ceiling achieved TFLOP/s is read against."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def family_trials(data_dir: Path, backbone: str, device: torch.device, steps: int, batch_size: int, random_init: bool) -> str:
    """A `steps`-step trial of each method family, scored: samples/s and peak memory of each."""
    from models.config import TrainingConfig
    from models.petl.presets import RUN_PRESETS
    from training.environment import prepare_environment
    from training.trial import run_trial

    env = prepare_environment(data_dir, backbone, ("vqa",), random_init=random_init, device=device)
    rows = []
    for name in FAMILIES:
        training = TrainingConfig(steps=steps, batch_size=batch_size)
        config = RUN_PRESETS[name].trial_config(backbone, ("vqa",), training)
        outcome = run_trial(config, env, show_progress=False)
        memory = "-" if outcome.peak_memory_mb is None else f"{outcome.peak_memory_mb:.0f}"
        train_seconds = outcome.train_seconds - (outcome.evaluate_seconds or 0.0)
        rows.append([
            name, f"{outcome.params.trainable_pct:.2f}", f"{steps * batch_size / train_seconds:.0f}",
            f"{outcome.train_seconds:.1f}", memory, f"{outcome.score:.1f}",
        ])  # fmt: skip
    header = ["run preset", "trainable %", "training samples / s", "trial s (with scoring)", "peak MiB", "VQA score"]
    return table(header, rows)


def search_with_a_kill(data_dir: Path, backbone: str, device: str, steps: int, random_init: bool) -> str:
    """`search.launch --workers 2 --trials 3`; one local worker is SIGKILLed in its first trial.

    Returns what happened: the trials' outcomes, and whether the killed trial was failed and
    its retry completed (the study's heartbeats notice it within the grace period, 60 s).
    """
    import optuna

    from storage import load_results, make_engine

    with tempfile.TemporaryDirectory(prefix="vlpetl-gpu-check-") as scratch:
        url = f"sqlite:///{scratch}/studies.db"
        command = [
            sys.executable, "-m", "search.launch", "--budget", "100%", "--trials", "3", "--workers", "2", "--steps", str(steps),
            "--rungs", "0", "--no-warm-start", "--confirm-seeds", "1", "--tasks", "vqa", "--backbone", backbone,
            "--device", device, "--study", "gpu-check", "--storage", url, "--data-dir", str(data_dir),
        ]  # fmt: skip
        if random_init:
            command.append("--random-init")
        started = time.perf_counter()
        with open(Path(scratch) / "launch.log", "w") as log:
            launcher = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            killed = _kill_a_worker(url, launcher.pid, deadline=time.monotonic() + 420)
            code = launcher.wait(timeout=600)
        seconds = time.perf_counter() - started
        if code != 0:
            tail = (Path(scratch) / "launch.log").read_text()[-2000:]
            return f"search.launch exited with {code} after {seconds:.0f} s:\n\n```\n{tail}\n```"
        engine = make_engine(url)
        rows = load_results(engine, "gpu-check")
        engine.dispose()
        trials = optuna.load_study(study_name="gpu-check", storage=url).trials
    counts = rows["status"].value_counts().to_dict()
    text = f"3-trial search, 2 workers on `{device}`: {seconds:.0f} s; rows by status: {counts}. "
    if killed is None:
        return text + "No local worker was caught training before the deadline: the kill did not happen."
    retry = next((t for t in trials if t.system_attrs.get("failed_trial") == killed), None)
    status = rows.set_index("trial_number").loc[killed, "status"]
    retried = retry is not None and retry.state.name == "COMPLETE"
    return text + (
        f"Trial {killed}'s worker was SIGKILLed mid-trial: its row is {status!r}; "
        + (f"its retry, trial {retry.number}, completed." if retried else "its retry did NOT complete.")
    )


def _kill_a_worker(url: str, launcher_pid: int, deadline: float) -> int | None:
    """SIGKILL the first local worker (not the launcher) seen training; the trial it ran."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage import load_results, make_engine

    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            engine = make_engine(url)
            rows = load_results(engine, "gpu-check")
            engine.dispose()
        except (SQLAlchemyError, KeyError, ValueError):
            continue  # the study or its tables do not exist yet
        running = rows[(rows["status"] == "running") & rows["worker"].notna()]
        for _, row in running.iterrows():
            pid = int(str(row["worker"]).rsplit(":", 1)[1])
            if pid != launcher_pid:
                os.kill(pid, signal.SIGKILL)
                return int(row["trial_number"])
    return None
