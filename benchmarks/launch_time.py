"""`make demo` against an older checkout: wall time of the same search, and whether it found the same trials.

    python benchmarks/launch_time.py --other PATH [--rounds 2] [--data-dir data] [--other-data-dir DIR] [-- LAUNCH ARGS]

PATH is a checkout of the commit to compare with (`git worktree add /tmp/old COMMIT`); both
run with this interpreter, each from its own root, so each imports its own code. Each arm
keeps its own data directory (the caches of two commits need not agree) and gets a fresh
SQLite database every round. A first, untimed launch per arm (`--trials 1 --no-reference
--no-warm-start`) prepares the benchmark, the backbone and the feature caches, so the timed
rounds are what a user waits for on the second `make demo`: the search itself.

The launch arguments default to `make demo`'s (`--budget 5%`). The rounds interleave the arms
(`common.interleaved`). "Same trials" compares every trial of the two studies: state, the
sampled configuration and the scores, to 1e-6; with several local workers (the default since
`--workers auto`) the trials differ from run to run, so each round's hypervolume (searched trials,
Optuna's values) says whether the faster search found as good a front.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Section, data_folder, interleaved, load_average, median, positive_int, print_section, table, timed

REPO = Path(__file__).resolve().parent.parent
DEMO_ARGS = ("--budget", "5%")


def launch(checkout: Path, data_dir: Path, storage: Path, extra: tuple[str, ...], log: Path) -> None:
    """One `python -m search.launch` in `checkout`; its output goes to `log`."""
    argv = [sys.executable, "-m", "search.launch", *extra, "--data-dir", str(data_dir), "--storage", f"sqlite:///{storage}"]
    environment = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": ""}
    with log.open("w") as out:
        result = subprocess.run(argv, cwd=checkout, stdout=out, stderr=subprocess.STDOUT, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {checkout} exited {result.returncode}; its output:\n{log.read_text()[-4000:]}")


def trials_of(storage: Path) -> list[tuple]:
    """Every trial of the one study in `storage`: number, state, configuration, rounded scores."""
    import optuna

    url = f"sqlite:///{storage}"
    (name,) = optuna.get_all_study_names(url)
    study = optuna.load_study(study_name=name, storage=url)
    return [
        (t.number, t.state.name, sorted(t.params.items()), tuple(round(v, 6) for v in t.values or ()))
        for t in study.get_trials(deepcopy=False)
    ]


def hypervolume_of(storage: Path) -> float:
    """The hypervolume (core.pareto.hypervolume_2d) of the study's searched trials, from Optuna's
    values, which every commit stores alike; confirmation seeds (trials repeating another) are left out."""
    import optuna
    import pandas as pd

    from core.pareto import hypervolume_2d

    url = f"sqlite:///{storage}"
    (name,) = optuna.get_all_study_names(url)
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    rows = [
        {"status": "complete", "score": t.values[0], "trainable_pct": t.values[1]}
        for t in trials
        if t.state.name == "COMPLETE" and all(v <= 0 for v in t.constraints.values()) and "replicate_of" not in t.user_attrs
    ]
    return hypervolume_2d(pd.DataFrame(rows, columns=["status", "score", "trainable_pct"]))


def run(other: Path, data_dir: Path, other_data_dir: Path, rounds: int, extra: tuple[str, ...]) -> Section:
    checkouts = {"this checkout": (REPO, data_dir), f"older ({other.name})": (other.resolve(), other_data_dir)}
    root = Path(tempfile.mkdtemp(prefix="vlpetl-launch-time-"))
    found: dict[str, list[list[tuple]]] = {name: [] for name in checkouts}
    volumes: dict[str, list[float]] = {name: [] for name in checkouts}
    try:
        for index, (checkout, data) in enumerate(checkouts.values()):  # untimed: prepare each arm's caches
            warm = ("--budget", "5%", "--trials", "1", "--no-reference", "--no-warm-start", "--rungs", "0")
            launch(checkout, data, root / f"warm-{index}.db", warm, root / "warm.log")

        def arm(name: str):
            checkout, data = checkouts[name]

            def one_round() -> float:
                storage = root / f"{list(checkouts).index(name)}-{len(found[name])}.db"
                seconds = timed(lambda: launch(checkout, data, storage, extra, root / "round.log"))
                found[name].append(trials_of(storage))
                volumes[name].append(hypervolume_of(storage))
                return seconds

            return one_round

        times = interleaved({name: arm(name) for name in checkouts}, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return section(other, data_dir, other_data_dir, rounds, extra, times, found, volumes)


def section(other, data_dir, other_data_dir, rounds, extra, times, found, volumes) -> Section:
    names = list(times)
    mine, older = (median(times[name]) for name in names)
    every = [trials for name in names for trials in found[name]]
    same = all(trials == every[0] for trials in every)
    first = every[0]
    rows = [
        [name, f"{median(times[name]):.0f}", " / ".join(f"{s:.0f}" for s in times[name]), " / ".join(f"{v:.1f}" for v in volumes[name])]
        for name in names
    ]
    states = {state: sum(t[1] == state for t in first) for state in sorted({t[1] for t in first})}
    body = (
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores visible, load average at the end "
        f"{load_average()}. `python -m search.launch {' '.join(extra)}` in each checkout, caches prepared beforehand, "
        f"a fresh database each round, {rounds} interleaved rounds per arm.\n\n"
        + table(["checkout", "seconds (median)", "each round", "hypervolume of each round"], rows)
        + f"\n\nThis checkout / older: **{mine / older:.2f}x**. "
        + (
            f"Same trials in every round of both arms: {len(first)} trials "
            f"({', '.join(f'{n} {s.lower()}' for s, n in states.items())}), identical configurations and scores."
            if same
            else "The arms found **different trials** (configurations or scores differ, as they do when either runs "
            "several workers): compare the hypervolumes of their fronts beside the times."
        )
    )
    command = (
        f"python benchmarks/launch_time.py --other {other} --rounds {rounds} --data-dir {data_dir} "
        f"--other-data-dir {other_data_dir}" + (f" -- {' '.join(extra)}" if extra != DEMO_ARGS else "")
    )
    return Section(
        title="`make demo` against an older commit",
        command=command,
        body=body,
        figures={
            "this_over_older": mine / older,
            "same_trials": float(same),
            "hypervolume_this": median(volumes[names[0]]),
            "hypervolume_older": median(volumes[names[1]]),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--other", type=Path, required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--rounds", type=positive_int, default=2, help="interleaved timed launches per arm (default 2)")
    parser.add_argument("--data-dir", type=data_folder, default=Path(os.environ.get("VLPETL_DATA_DIR", "data")))
    parser.add_argument("--other-data-dir", type=Path, default=None, help="the older checkout's (default its ./data)")
    parser.add_argument("launch_args", nargs="*", help="search.launch's arguments after -- (default: --budget 5%%)")
    args = parser.parse_args()
    if not (args.other / "search" / "launch.py").is_file():
        parser.error(f"--other {args.other}: not a checkout of this project (no search/launch.py); make one with "
                     "`git worktree add /tmp/old COMMIT`")  # fmt: skip
    other_data = (args.other_data_dir or args.other / "data").resolve()
    extra = tuple(args.launch_args) or DEMO_ARGS
    print_section(run(args.other, args.data_dir.resolve(), other_data, args.rounds, extra))


if __name__ == "__main__":
    main()
