"""Which device a process trains on, which GPU each local worker gets, and the CUDA settings.

Kept free of argparse so that every command (`search.launch`, `search.worker`, `search.train`,
`search.predict`) checks `--device` and `--gpus` by the same rules and words. The CUDA device
count is a parameter, so the rules are tested on machines without a GPU.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceError(ValueError):
    """A `--device` or `--gpus` value this machine cannot honour; the message says what it accepts."""


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_device(text: str | None, cuda_devices: int | None = None) -> torch.device:
    """`--device`: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N.

    Raises:
        DeviceError: an unknown name, CUDA asked for on a machine without it, or an index past
            the last GPU.
    """
    count = cuda_count() if cuda_devices is None else cuda_devices
    match = _DEVICE.match((text or "auto").strip())
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise DeviceError(f"--device {text!r} is not a device; use auto, cpu, cuda or cuda:N")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if count else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if count == 0:
        raise DeviceError(f"--device {text!r}: this machine has no CUDA device (torch sees none); use --device cpu")
    if index is not None and int(index) >= count:
        raise DeviceError(f"--device {text!r}: this machine has {_gpus(count)}; use cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", int(index) if index is not None else 0)


def parse_gpus(text: str, cuda_devices: int | None = None) -> tuple[int, ...]:
    """`--gpus 0,1,...`: distinct GPU indices that exist on this machine, in the order given.

    Raises:
        DeviceError: not a comma-separated list of whole numbers, a repeat, or an index that
            does not exist (the message names it and the machine's count).
    """
    count = cuda_count() if cuda_devices is None else cuda_devices
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise DeviceError(f"--gpus {text!r} must list GPU indices separated by commas, e.g. --gpus 0,1")
    ids = tuple(int(p) for p in parts)
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise DeviceError(f"--gpus {text!r} names GPU {repeated[0]} twice; list each GPU once (workers share them in turn)")
    missing = [i for i in ids if i >= count]
    if missing:
        accepted = f"indices 0 to {count - 1}" if count else "none: use --device cpu"
        raise DeviceError(f"--gpus {text!r}: GPU {missing[0]} does not exist; this machine has {_gpus(count)} ({accepted})")
    return ids


def _gpus(count: int) -> str:
    return f"{count} CUDA device{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class WorkerDevice:
    """Where one local worker trains: `device` as the process names it, and `gpu`, the index
    (in the launcher's view) that its `CUDA_VISIBLE_DEVICES` is narrowed to (None: unchanged)."""

    device: torch.device
    gpu: int | None = None

    def flag(self) -> str:
        """The worker's `--device` value."""
        return str(self.device)

    def where(self) -> str:
        """For log lines: the GPU in the launcher's numbering, or the device."""
        return f"GPU {self.gpu}" if self.gpu is not None else str(self.device)


def local_worker_devices(
    device_text: str | None, gpus_text: str | None, workers: int, cuda_devices: int | None = None
) -> list[WorkerDevice]:
    """Where `search.launch --workers N` puts each process, the launcher first.

    On a CUDA machine every GPU is used, one worker per GPU in turn (`--gpus` picks which);
    each worker started by the launcher sees only its own GPU, as `cuda:0`, so that a library
    that allocates on the default device never lands on another worker's. The launcher keeps
    the machine's view and trains on `cuda:<its GPU>`.

    Raises:
        DeviceError: as `gpus_in_use`.
    """
    device, gpus = _device_and_gpus(device_text, gpus_text, cuda_devices)
    plan = []
    for index, gpu in enumerate(worker_gpus(workers, gpus)):
        if gpu is None:
            plan.append(WorkerDevice(device))
        elif index == 0:
            plan.append(WorkerDevice(torch.device("cuda", gpu)))
        else:
            plan.append(WorkerDevice(torch.device("cuda"), gpu))
    return plan


def gpus_in_use(device_text: str | None, gpus_text: str | None, cuda_devices: int | None = None) -> tuple[int, ...]:
    """The GPUs (the machine's indices) the local workers train on; empty on the CPU.

    Raises:
        DeviceError: a bad `--device` or `--gpus` (parse_device, parse_gpus), `--gpus` with
            `--device cpu`, or `--gpus` with a `--device cuda:N` that says otherwise.
    """
    return _device_and_gpus(device_text, gpus_text, cuda_devices)[1]


def _device_and_gpus(device_text: str | None, gpus_text: str | None, cuda_devices: int | None) -> tuple[torch.device, tuple[int, ...]]:
    count = cuda_count() if cuda_devices is None else cuda_devices
    text = (device_text or "auto").strip()
    if gpus_text is not None and text == "auto":
        parse_gpus(gpus_text, count)  # on a machine without GPUs, say so rather than blame --device
    device = parse_device(text, count)
    named_one = text.startswith("cuda:")  # --device cuda:N
    if gpus_text is not None:
        if device.type != "cuda":
            raise DeviceError(f"--gpus {gpus_text!r} names GPUs, but --device {text!r} trains on the CPU; drop one of them")
        if named_one:
            raise DeviceError(
                f"--device {text!r} and --gpus {gpus_text!r} both say which GPU to use; "
                "give --gpus alone (each worker takes the next GPU in the list)"
            )
        return device, parse_gpus(gpus_text, count)
    if device.type != "cuda":
        return device, ()
    if named_one:
        return device, (device.index,)
    return device, tuple(range(count))


def worker_gpus(workers: int, gpus: tuple[int, ...]) -> list[int | None]:
    """The GPU of each of `workers` local processes (the launcher is the first): in turn over
    `gpus`, so that N workers on N GPUs get one each; None for all when there are no GPUs."""
    if not gpus:
        return [None] * workers
    return [gpus[index % len(gpus)] for index in range(workers)]


def worker_environment(gpu: int | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """A worker process's environment: it sees only its own GPU, as `cuda:0`.

    Physical indices: `CUDA_VISIBLE_DEVICES` of the launcher, if set, is mapped through, so
    `--gpus 0` under `CUDA_VISIBLE_DEVICES=2,3` gives the worker GPU 2.
    """
    env = dict(os.environ if base is None else base)
    if gpu is None:
        return env
    visible = env.get(CUDA_VISIBLE)
    listed = [v.strip() for v in visible.split(",")] if visible else []
    env[CUDA_VISIBLE] = listed[gpu] if gpu < len(listed) else str(gpu)
    return env


def choose_precision(precision: str, device_type: str, bf16_supported: bool) -> str:
    """`auto`: bf16 on a CUDA device that has it (compute capability 8.0 and later), fp16 with a
    gradient scaler on older CUDA cards, fp32 on a CPU (bf16 there is slower without AMX)."""
    if precision != "auto":
        return precision
    if device_type != "cuda":
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def configure_device(device: torch.device) -> None:
    """Process-wide CUDA settings for training: TF32 matmuls and convolutions on.

    TF32 keeps fp32's range with a 10-bit mantissa, as bf16 autocast already accepts; on
    Ampere and later it runs fp32 matmuls (the fp32 parts under autocast) several times faster.
    """
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
