"""Security: no code runs from a weights file, SQL values are bound, the dashboard stays local.

The weights are real pickle payloads that would create a marker file if unpickled; the loaders
are the ones the backbone presets use. The injection strings go through the real CLIs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability_helpers import REPO

from models.backbones.clip_encoder import build_grid_encoder, register_local_config
from models.backbones.language_model import load_language_model
from search import export, worker
from storage import TrialRecord, default_storage_url, init_schema, list_studies, make_engine, record_trial


class _Payload:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"weight": torch.zeros(1)}, "extra": _Payload(marker)}, path)
    return path


def test_a_malicious_clip_checkpoint_is_refused_without_running_its_code(env, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = _malicious_checkpoint(tmp_path / "clip.pt", marker)
    # The embedded CLIP's architecture; a real preset reads VLPETL_CLIP_CHECKPOINT the same way.
    name = register_local_config(Path(env.location.clip_checkpoint).with_name(f"{env.location.clip_model}.json"))
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported global"):
        build_grid_encoder(name, str(checkpoint), grid=2)
    assert not marker.exists(), "the checkpoint's code ran"


def test_a_malicious_language_model_file_is_refused_without_running_its_code(env, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    model_dir = tmp_path / "language_model"
    model_dir.mkdir()
    source = Path(env.location.language_model)
    for item in source.iterdir():  # its config and tokenizer; the weights as a pickle, no safetensors
        if item.suffix == ".json":
            shutil.copy(item, model_dir / item.name)
    _malicious_checkpoint(model_dir / "pytorch_model.bin", marker)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported global"):
        load_language_model(model_dir)
    assert not marker.exists(), "the weights file's code ran"


INJECTION = "s'; DROP TABLE trial_results; --"


def test_study_names_reach_the_database_only_as_bound_values(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = default_storage_url(tmp_path)
    engine = make_engine(url)
    init_schema(engine)
    record_trial(engine, TrialRecord(
        study_name="s", trial_number=0, status="complete", method="lora", config={"method": "lora"},
        trainable_params=10, total_params=1000, score=50.0,
    ))  # fmt: skip
    import optuna

    optuna.create_study(study_name="s", storage=url)
    for program, argv, needle in (
        (worker, ["--study", INJECTION, "--storage", url], "does not exist"),
        (export, ["--study", INJECTION, "--storage", url, "--budget", "5%", "--out", "r.yaml"], "is not in"),
        (export, ["--study", "s' OR '1'='1", "--storage", url, "--budget", "5%", "--out", "r.yaml"], "is not in"),
    ):
        with pytest.raises(SystemExit) as exited:
            program.main(argv)
        assert exited.value.code == 2
        assert needle in capsys.readouterr().err
    assert list_studies(engine) == ["s"], "the table is intact and no name matched a crafted one"
    assert not (tmp_path / "r.yaml").exists()
    engine.dispose()


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_dashboard_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = default_storage_url(tmp_path)
    init_schema(make_engine(url))
    log = open(tmp_path / "dashboard.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--storage", url, "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not _listening(port):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "dashboard.log").read_text()
            time.sleep(0.5)
        # 0100007F is 127.0.0.1 in /proc's byte order; 00000000 would be every interface.
        assert _listening(port) == {"0100007F"}, _listening(port)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        log.close()
