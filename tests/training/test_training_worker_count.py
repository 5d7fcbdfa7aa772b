"""The default number of local workers: one per GPU, else one per core as far as memory holds."""

from __future__ import annotations

from training.worker_count import TRAINING_COPIES, WORKER_BASE_BYTES, MachineResources, default_workers, weight_bytes

GIB = 2**30


def test_one_worker_per_gpu_in_use_whatever_the_cores():
    count = default_workers((0, 2), MachineResources(cores=64, available_bytes=GIB), weight_bytes=10 * GIB)
    assert (count.count, count.reason) == (2, "one per GPU (2 in use)")


def test_on_a_cpu_one_worker_per_core_when_memory_holds_them():
    count = default_workers((), MachineResources(cores=2, available_bytes=24 * GIB), weight_bytes=30_000_000)
    assert count.count == 2 and count.reason == "one per CPU core (2), 1 torch thread each"


def test_memory_limits_the_workers_on_a_machine_with_many_cores():
    # a base-size backbone (about 1 GB of weights): each worker holds the process and 4 copies of it
    per_worker = WORKER_BASE_BYTES + TRAINING_COPIES * GIB
    count = default_workers((), MachineResources(cores=32, available_bytes=30 * GIB), weight_bytes=GIB)
    assert count.count == int(30 * GIB * 0.8) // per_worker == 4
    assert "as many as memory holds: 30.0 GiB available" in count.reason and "32 CPU cores" in count.reason


def test_at_least_one_worker_however_little_memory_is_left():
    assert default_workers((), MachineResources(cores=8, available_bytes=GIB // 2), weight_bytes=GIB).count == 1
    assert default_workers((), MachineResources(cores=1, available_bytes=None), weight_bytes=0).count == 1


def test_weight_bytes_adds_weight_files_and_skips_the_rest(tmp_path):
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "lm" / "tokenizer.json").write_bytes(b"x" * 500)
    (tmp_path / "clip.safetensors").write_bytes(b"x" * 300)
    assert weight_bytes([str(tmp_path / "clip.safetensors"), str(tmp_path / "lm"), None, str(tmp_path / "absent")]) == 1300


def test_this_machine_reports_its_cores_and_memory():
    here = MachineResources.here()
    assert here.cores >= 1 and here.available_bytes is not None and here.available_bytes > 0
