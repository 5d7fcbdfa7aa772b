"""Feature preparation for a user's folder of images: decoding processes, and memory against dataset size.

    python benchmarks/image_features.py [--quick] [--images 20000] [--subset 2000] [--rounds 5] [--data-dir data]

Writes `--images` images into a temporary folder, generated from `--seed` (the same files on
every run): random sizes of 160-640 px a side, smooth colour fields with photo-like noise, saved
as JPEG (quality 90), every 10th as PNG and every 7th in greyscale. Then, on the embedded
backbone, through the real cache path (`models.features.ensure_store`, as `python -m
models.prepare --images DIR` runs it, batch 64):

- throughput: images per second of preparing `--subset` of the images into a fresh cache folder,
  with decoding in this process (the behaviour before worker processes) and in 1 and in 2
  decoding processes, the arms interleaved round by round (`common.interleaved`); the encoder
  is built once beforehand, so the rounds time decoding, encoding and writing the store;
- memory: a child process prepares the subset, then another all the images, with 2 decoding
  processes; each reports its RSS before, the peaks of its RSS and of its private (anonymous)
  memory while preparing (sampled from /proc every 10 ms), its lifetime peak RSS (getrusage,
  which includes building the encoder) and the largest worker's (getrusage of its children).
  The store is memory-mapped and the shards are written as they finish, so the peaks should
  not grow with the number of images.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from common import Section, benchmark_arguments, interleaved, load_average, median, print_section, table, timed

BACKBONE = "tiny-clip+tiny-t5"
BATCH_SIZE = 64
ARMS = {"in this process (0 workers)": 0, "1 decoding process": 1, "2 decoding processes": 2}
MEMORY_WORKERS = 2


def write_image(job: tuple[Path, int, int]) -> int:
    """Write image `n` of the seeded set; returns its size in bytes. Runs in a pool worker."""
    folder, seed, n = job
    rng = np.random.default_rng([seed, n])
    width, height = (int(side) for side in rng.integers(160, 641, size=2))
    # A coarse random colour field, upsampled smoothly, plus noise: JPEG sizes and decoding
    # times of photographs (about 0.3 bytes per pixel here), unlike pure noise or flat colour.
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if n % 7 == 0:
        image = image.convert("L")
    path = folder / (f"img_{n:06d}.png" if n % 10 == 0 else f"img_{n:06d}.jpg")
    if path.suffix == ".png":
        image.save(path, compress_level=1)  # the fastest level: generation time, not decoding, changes
    else:
        image.save(path, quality=90)
    return path.stat().st_size


def generate(folder: Path, count: int, seed: int) -> dict[str, Path]:
    """img_id -> file for `count` seeded images written into `folder`, on every core."""
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(write_image, [(folder, seed, n) for n in range(count)], chunksize=64)
    return {path.stem: path for path in sorted(folder.iterdir())}


# The memory measurement's child: prepares a folder's images through the real cache path and
# prints what it measured as JSON. Run as `python -c CHILD ARGS_JSON`.
CHILD = """
import json, resource, sys, threading, time
from pathlib import Path
import torch
from models.features import encoder_identity, ensure_store
from models.location import BackboneLocation
from models.visual_encoder import build_visual_encoder

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
location = BackboneLocation.resolve(args["backbone"], Path(args["data_dir"]))
built = build_visual_encoder(location)
images = {path.stem: path for path in sorted(Path(args["images"]).iterdir())[: args["count"]]}

def status_kib():
    found = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "RssAnon:")):
            found[line.split(":")[0]] = int(line.split()[1])
    return found

before = status_kib()
peak = dict(before)
done = threading.Event()

def sample():
    while not done.wait(0.01):
        for name, kib in status_kib().items():
            peak[name] = max(peak[name], kib)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
store = ensure_store(Path(args["cache"]), images, encoder_identity(location), lambda: built, args["batch_size"], decode_workers=args["workers"])
seconds = time.perf_counter() - start
done.set()
sampler.join()
print(json.dumps({
    "images": len(images),
    "seconds": seconds,
    "rss_before_kib": before["VmRSS"],
    "peak_rss_kib": peak["VmRSS"],
    "peak_anon_kib": peak["RssAnon"],
    "lifetime_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "worker_peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "store_bytes": store.stat().st_size,
}))
"""


def prepare_in_child(data_dir: Path, images: Path, cache: Path, count: int, threads: int) -> dict[str, float]:
    """Prepare the first `count` images of `images` in a fresh process; what it measured."""
    args = {
        "backbone": BACKBONE, "data_dir": str(data_dir), "images": str(images), "cache": str(cache), "count": count,
        "threads": threads, "batch_size": BATCH_SIZE, "workers": MEMORY_WORKERS,
    }  # fmt: skip
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the memory measurement's child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def mib(kib: float) -> str:
    return f"{kib / 2**10:.0f}"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the decoding workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(
    data_dir: Path, quick: bool = False, n_images: int | None = None, subset: int | None = None, rounds: int | None = None, seed: int = 0
) -> Section:
    os.environ.setdefault("TQDM_DISABLE", "1")  # for the memory measurement's children
    import torch

    from models.features import encoder_identity, ensure_store
    from models.visual_encoder import build_visual_encoder
    from training.environment import prepare_environment

    n_images = n_images or (600 if quick else 20_000)
    subset = min(subset or (200 if quick else 2_000), n_images)
    rounds = rounds or (2 if quick else 5)
    env = prepare_environment(data_dir, BACKBONE, ("vqa",))
    built = build_visual_encoder(env.location)
    identity = encoder_identity(env.location)
    root = Path(tempfile.mkdtemp(prefix="vlpetl-image-features-"))
    try:
        folder = root / "images"
        generation = timed(lambda: generate(folder, n_images, seed))
        images = {path.stem: path for path in sorted(folder.iterdir())}
        part = dict(list(images.items())[:subset])
        busy: dict[int, list[float]] = {workers: [] for workers in ARMS.values()}

        def arm(workers: int):
            def one_round() -> float:
                cache = Path(tempfile.mkdtemp(dir=root, prefix="cache-"))
                cpu = cpu_seconds()
                seconds = timed(lambda: ensure_store(cache, part, identity, lambda: built, BATCH_SIZE, decode_workers=workers))
                busy[workers].append((cpu_seconds() - cpu) / seconds)
                shutil.rmtree(cache)
                return len(part) / seconds

            return one_round

        speeds = interleaved({name: arm(workers) for name, workers in ARMS.items()}, rounds)
        memory = [
            prepare_in_child(data_dir, folder, root / f"memory-{count}", count, torch.get_num_threads()) for count in (subset, n_images)
        ]
        figures = {"generation_s": generation, "sizes": [path.stat().st_size for path in images.values()]}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return section(data_dir, quick, seed, rounds, figures, speeds, busy, memory)


def section(data_dir: Path, quick: bool, seed: int, rounds: int, figures: dict, speeds, busy, memory) -> Section:
    import torch

    small, large = memory
    names = list(ARMS)
    rates = {name: median(values) for name, values in speeds.items()}
    rows = [
        [
            name, f"{rates[name]:.0f}", " / ".join(f"{v:.0f}" for v in speeds[name]), f"{rates[name] / rates[names[0]]:.2f}x",
            f"{median(busy[workers]):.2f}",
        ]
        for name, workers in ARMS.items()
    ]  # fmt: skip
    two_over_one = rates[names[2]] / rates[names[1]]
    memory_rows = [
        [
            f"{m['images']:,}", f"{m['seconds']:.0f}", mib(m["rss_before_kib"]), mib(m["peak_rss_kib"]), mib(m["peak_anon_kib"]),
            mib(m["lifetime_maxrss_kib"]), mib(m["worker_peak_rss_kib"]), f"{m['store_bytes'] / 2**20:.1f}",
        ]
        for m in memory
    ]  # fmt: skip
    growth = (large["peak_rss_kib"] - small["peak_rss_kib"]) / 2**10
    store_growth = (large["store_bytes"] - small["store_bytes"]) / 2**20
    n_images, subset, sizes = large["images"], small["images"], figures["sizes"]
    pngs, greys = len(range(0, n_images, 10)), len(range(0, n_images, 7))
    body = (
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores visible, load average at the end "
        f"{load_average()}; {torch.get_num_threads()} torch thread in the main process, 1 in each decoding worker.\n\n"
        f"**Images**: {n_images:,} written in {figures['generation_s']:.0f} s from seed {seed} (sides 160-640 px; "
        f"{pngs:,} PNG, the rest JPEG quality 90; {greys:,} greyscale), median file {np.median(sizes) / 1024:.0f} KiB, "
        f"{sum(sizes) / 2**20:.0f} MiB in all.\n\n"
        f"**Throughput**: `ensure_store` on the first {subset:,} images into a fresh cache folder, batch {BATCH_SIZE}, "
        f"{rounds} interleaved rounds per arm: content hashing, decoding, the embedded CLIP at 64 px, the shards and "
        f"the store (the encoder is built once beforehand). Cores busy: CPU seconds of the process and its workers "
        f"per second of the round.\n\n"
        + table(["decoding", "images/s (median)", "each round", "vs in this process", "cores busy (median)"], rows)
        + f"\n\n2 decoding processes / 1: **{two_over_one:.2f}x**.\n\n"
        f"**Memory**: a fresh process prepares the first {subset:,} images, another all {n_images:,}, with "
        f"{MEMORY_WORKERS} decoding processes. MiB; RSS before and the peaks while preparing are the main process's, "
        f"sampled from /proc every 10 ms; its lifetime peak (getrusage) includes loading torch and building the "
        f"encoder; the workers are measured apart (getrusage of its children).\n\n"
        + table(
            [
                "images",
                "seconds",
                "RSS before",
                "peak RSS preparing",
                "peak private (anon) preparing",
                "lifetime peak RSS",
                "largest worker peak RSS",
                "store on disk (MiB)",
            ],
            memory_rows,
        )  # fmt: skip
        + f"\n\nFrom {subset:,} to {n_images:,} images the store grows by {store_growth:.0f} MiB and the peak RSS "
        f"while preparing by {growth:+.0f} MiB."
    )
    command = "python benchmarks/image_features.py" + (" --quick" if quick else "") + f" --data-dir {data_dir}"
    return Section(
        title="Feature preparation for user images",
        command=command,
        body=body,
        figures={
            **{f"images_per_s[{workers}]": rates[name] for name, workers in ARMS.items()},
            "two_over_one": two_over_one,
            "rss_growth_mib": growth,
            "store_mib": large["store_bytes"] / 2**20,
        },
    )


def main() -> None:
    # Read when tqdm is first imported (torch imports it): every round's bar would bury the results.
    os.environ.setdefault("TQDM_DISABLE", "1")
    args = benchmark_arguments(
        __doc__,
        ("--images", {"type": int, "default": None, "help": "images to generate (default 20000, quick 600)"}),
        ("--subset", {"type": int, "default": None, "help": "images per throughput round (default 2000, quick 200)"}),
        ("--rounds", {"type": int, "default": None, "help": "interleaved rounds per arm (default 5, quick 2)"}),
        ("--seed", {"type": int, "default": 0, "help": "seed of the generated images (default 0)"}),
    )
    print_section(run(args.data_dir, args.quick, args.images, args.subset, args.rounds, args.seed))


if __name__ == "__main__":
    main()
