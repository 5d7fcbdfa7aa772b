"""What every benchmark shares: the `Section` it returns, side-by-side timing, the machine.

A benchmark module exposes `run(data_dir, quick) -> Section`; `benchmarks/run_all.py` renders
the sections into BENCHMARKS.md, and each module's `main()` prints its own section alone. The
scripts run as `python benchmarks/NAME.py`, so they import each other by plain module name
(benchmarks/ is then the first entry of sys.path).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence


@dataclass(frozen=True)
class Target:
    """One of the issue's acceptance targets and whether this run met it.

    Attributes:
        name: what is measured, e.g. "our LoRA step / peft's".
        value: the measured figure.
        rule: the target as text, e.g. "<= 1.05".
        met: whether `value` satisfies `rule`.
    """

    name: str
    value: float
    rule: str
    met: bool


@dataclass
class Section:
    """One benchmark's part of BENCHMARKS.md.

    Attributes:
        title: the section heading.
        command: the exact command that measures this section alone.
        body: markdown (tables and text), every number computed by the run.
        figures: the headline numbers by name, for the summary and the tests.
        targets: the acceptance targets this section checks.
        skipped: why the section did not run here (e.g. no CUDA); `body` then explains.
    """

    title: str
    command: str
    body: str
    figures: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    skipped: str | None = None

    def markdown(self) -> str:
        return f"## {self.title}\n\nCommand: `{self.command}`\n\n{self.body.strip()}\n"


def target(name: str, value: float, at_most: float | None = None, at_least: float | None = None, above: float | None = None) -> Target:
    if at_most is not None:
        return Target(name, value, f"<= {at_most:g}", value <= at_most)
    if above is not None:
        return Target(name, value, f"> {above:g}", value > above)
    return Target(name, value, f">= {at_least:g}", value >= at_least)


DEFAULT_THREADS = 1


def set_threads(count: int) -> None:
    """Pin torch's intra-op threads for the measurements.

    On the shared 2-core reference machine, two threads per process stall at every OpenMP
    barrier whenever another job holds a core: the same overhead benchmark took 29 s per trial
    with 2 threads and 1.9 s with 1 while another job ran. One thread keeps the ratios stable.
    """
    import torch

    torch.set_num_threads(count)


def interleaved(arms: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every arm once per round, in an order rotated each round; return each arm's results.

    Interleaving puts background load on every arm alike (the reference machine's cores are
    shared), and rotating the order removes any first-or-last advantage within a round.
    """
    names = list(arms)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(arms[name]())
    return results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; `align` is one character per column, "l" or "r" (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(map(str, header)) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """The facts of this machine a reader needs to judge the absolute numbers."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores visible",
        "memory": memory,
        "gpu": gpu,
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}",
    }


def load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def print_section(section: Section) -> None:
    print(section.markdown())
    for t in section.targets:
        print(f"target: {t.name} = {t.value:.3g} ({t.rule}): {'met' if t.met else 'NOT met'}")


# argparse types: a bad value ends the script before any work, in argparse's one line
# ("argument --steps: must be a whole number >= 1, got '0'"), exit 2.


def run_preset_names(text: str) -> tuple[str, ...]:
    """`--presets`: run presets of models.petl.presets, comma-separated, each known."""
    import argparse

    from models.petl.presets import RUN_PRESETS

    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in RUN_PRESETS]
    if unknown or "" in names:
        raise argparse.ArgumentTypeError(f"unknown run presets {unknown or ['']}; known: {', '.join(sorted(RUN_PRESETS))}")
    return names


def positive_int(text: str) -> int:
    """A count (steps, seeds, trials, rounds, threads): a whole number >= 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def data_folder(text: str) -> Path:
    """A data directory that is, or can become, a folder (core.data_dir.data_dir_problem)."""
    import argparse

    from core.data_dir import data_dir_problem

    path = Path(text)
    if problem := data_dir_problem(path, flag="folder"):
        raise argparse.ArgumentTypeError(problem)
    return path


def out_file(text: str) -> Path:
    """A file to write: not a folder, and not under a file."""
    import argparse

    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; name the file to write")
    from core.data_dir import nearest_existing

    ancestor = nearest_existing(path.absolute().parent)
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} cannot be written: {str(ancestor)!r} is a file; name a file in a folder")
    return path


def generated_tasks(text: str) -> tuple[str, ...]:
    """Comma-separated tasks of the generated benchmark, each once."""
    import argparse

    from tasks.data_spec import GENERATED_TASKS

    if not text.strip():
        return ()  # none (e.g. --video-tasks "")
    names = tuple(t.strip() for t in text.split(","))
    unknown = [n for n in names if n not in GENERATED_TASKS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: give tasks of the generated benchmark ({', '.join(GENERATED_TASKS)}), each once")
    return names


def add_common_arguments(parser) -> None:
    """--quick, --data-dir and --threads, the same for every benchmark script."""
    parser.add_argument("--quick", action="store_true", help="a short smoke run of the same measurement")
    parser.add_argument("--data-dir", type=data_folder, default=Path(os.environ.get("VLPETL_DATA_DIR", "data")))
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS, help=f"torch threads (default {DEFAULT_THREADS})")


def parse(parser):
    """Parse, pin the threads, resolve the data directory."""
    args = parser.parse_args()
    set_threads(args.threads)
    args.data_dir = args.data_dir.resolve()
    return args


def benchmark_arguments(doc: str, *options: tuple[str, dict], prepare: str | None = None):
    """A benchmark script's arguments: the common ones plus ``options`` (flag, add_argument keywords).

    Args:
        doc: The script's docstring; its first paragraph is the description.
        prepare: A backbone whose benchmark, weights and features to build first (on first use).
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], allow_abbrev=False)
    add_common_arguments(parser)
    for flag, keywords in options:
        parser.add_argument(flag, **keywords)
    args = parse(parser)
    if prepare is not None:
        from training.environment import prepare_environment

        prepare_environment(args.data_dir, prepare, ("vqa",))
    return args
