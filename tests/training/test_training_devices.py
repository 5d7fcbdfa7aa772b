"""Which device each process trains on, and in which precision: the rules, on any machine.

The CUDA device count and bf16 support are parameters of the rules, so a CPU-only machine
checks what a 4-GPU one would do; the fp16 loss-scaling path runs for real on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from models.config import TrialConfig, TrainingConfig
from models.features import encoder_identity
from training.devices import (
    CUDA_VISIBLE,
    DeviceError,
    WorkerDevice,
    choose_precision,
    local_worker_devices,
    parse_device,
    parse_gpus,
    worker_environment,
)
from training.trial import run_trial

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_means_the_first_gpu_when_there_is_one_and_the_cpu_otherwise() -> None:
    assert parse_device("auto", cuda_devices=0) == CPU
    assert parse_device(None, cuda_devices=2) == CUDA  # the current device: cuda:0 unless the process set another
    assert parse_device("cuda:1", cuda_devices=2) == torch.device("cuda", 1)
    assert parse_device("cpu", cuda_devices=2) == CPU


@pytest.mark.parametrize(
    ("text", "count", "words"),
    [
        ("cuda", 0, "has no CUDA device"),
        ("cuda:2", 2, "has 2 CUDA devices; use cuda:0 to cuda:1"),
        ("gpu", 1, "is not a device; use auto, cpu, cuda or cuda:N"),
        ("cpu:0", 1, "is not a device"),
        ("cuda:-1", 1, "is not a device"),
    ],
)
def test_a_device_this_machine_lacks_is_named_with_what_it_has(text: str, count: int, words: str) -> None:
    with pytest.raises(DeviceError, match=words):
        parse_device(text, cuda_devices=count)


def test_gpus_are_distinct_existing_indices_in_the_order_given() -> None:
    assert parse_gpus(" 2, 0 ", cuda_devices=4) == (2, 0)
    with pytest.raises(DeviceError, match="names GPU 1 twice"):
        parse_gpus("1,1", cuda_devices=4)
    with pytest.raises(DeviceError, match="GPU 4 does not exist; this machine has 4 CUDA devices"):
        parse_gpus("0,4", cuda_devices=4)
    with pytest.raises(DeviceError, match="separated by commas"):
        parse_gpus("0;1", cuda_devices=4)


def test_workers_take_one_gpu_each_in_turn_and_only_see_their_own() -> None:
    # The launcher keeps the machine's view (cuda:N); every worker it starts sees one GPU as cuda.
    plan = local_worker_devices("auto", None, workers=3, cuda_devices=2)
    assert plan == [WorkerDevice(torch.device("cuda", 0)), WorkerDevice(CUDA, 1), WorkerDevice(CUDA, 0)]
    assert [w.flag() for w in plan] == ["cuda:0", "cuda", "cuda"]
    assert local_worker_devices("cuda", "3,1", workers=2, cuda_devices=4) == [
        WorkerDevice(torch.device("cuda", 3)),
        WorkerDevice(CUDA, 1),
    ]
    assert local_worker_devices("cuda:1", None, workers=2, cuda_devices=2) == [WorkerDevice(torch.device("cuda", 1)), WorkerDevice(CUDA, 1)]


def test_on_a_cpu_machine_every_worker_trains_on_the_cpu() -> None:
    assert local_worker_devices("auto", None, workers=3, cuda_devices=0) == [WorkerDevice(CPU)] * 3
    assert local_worker_devices("cpu", None, workers=2, cuda_devices=2) == [WorkerDevice(CPU)] * 2


@pytest.mark.parametrize(
    ("device", "gpus", "count", "words"),
    [
        ("cpu", "0", 2, "names GPUs, but --device 'cpu' trains on the CPU"),
        ("cuda:1", "0", 2, "both say which GPU to use; give --gpus alone"),
        ("auto", "0", 0, "GPU 0 does not exist; this machine has 0 CUDA devices"),
    ],
)
def test_conflicting_device_flags_are_refused(device: str, gpus: str, count: int, words: str) -> None:
    with pytest.raises(DeviceError, match=words):
        local_worker_devices(device, gpus, workers=2, cuda_devices=count)


def test_a_worker_sees_its_gpu_through_the_launchers_own_visible_devices() -> None:
    assert worker_environment(1, {"PATH": "/bin"})[CUDA_VISIBLE] == "1"
    assert worker_environment(1, {CUDA_VISIBLE: "4,6"})[CUDA_VISIBLE] == "6", "index 1 of what the launcher sees"
    assert worker_environment(None, {CUDA_VISIBLE: "4,6"}) == {CUDA_VISIBLE: "4,6"}


@pytest.mark.parametrize(
    ("asked", "device", "bf16", "chosen"),
    [
        ("auto", "cuda", True, "bf16"),  # Ampere and later
        ("auto", "cuda", False, "fp16"),  # V100, T4: fp16 with a gradient scaler
        ("auto", "cpu", False, "fp32"),
        ("fp32", "cuda", True, "fp32"),
        ("bf16", "cpu", False, "bf16"),
    ],
)
def test_precision_follows_what_the_device_supports(asked: str, device: str, bf16: bool, chosen: str) -> None:
    assert choose_precision(asked, device, bf16) == chosen


def test_an_fp16_trial_trains_with_loss_scaling_and_finite_losses(env) -> None:
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("vqa",),
        method="lora",
        training=TrainingConfig(steps=3, batch_size=4, precision="fp16"),
    )
    outcome = run_trial(config, env, show_progress=False)
    assert outcome.losses and all(torch.isfinite(torch.tensor(outcome.losses)))
    assert 0 <= outcome.score <= 100


def test_features_encoded_on_a_gpu_are_kept_apart_from_the_cpus(env) -> None:
    # Other kernels give other last bits: a study must never mix the two in one store.
    cpu = encoder_identity(env.location, CPU)
    assert cpu == encoder_identity(env.location), "stores written before devices were keyed stay valid"
    assert encoder_identity(env.location, CUDA) == {**cpu, "device": "cuda"}
