"""Throughput of ``trainstats noise`` vs a naive per-line json.loads/json.dumps rewrite.

Repeats the real GREAT shards (``../shared/data/great/dev`` or ``$TRAINSTATS_SHARED/data/great/dev``)
into a temporary folder outside the repository until it holds >= --mb megabytes, then times, in
the same run and on the same files (page cache warm for all):

- naive: one process reading every line, ``json.loads`` + ``json.dumps`` + write (what the study's
  script did, without its noise logic);
- trainstats: ``induce_noise`` with ``validate="selected"`` and ``"all"`` (the default), each with
  all cores (the default) and with one worker; and the ``trainstats noise`` command with its
  defaults in a new process (so interpreter start-up, imports, starting the workers and the
  manifest writer are paid as a user pays them; the naive row pays none of that).

Prints the median of --repeats runs as MB/s (input bytes) and examples/s, and the ratios; and
the CPU seconds used (this process plus its joined workers), a measure of work that other jobs on a
shared machine distort less than wall-clock time.

    .venv/bin/python bench/noise.py                 # 200 MB, label noise at 25 %
    .venv/bin/python bench/noise.py --kind inject-repair --level 50 --mb 300
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainstats.noise import induce_noise
from trainstats.varmisuse import list_shards, shard_name
from trainstats.varmisuse.lines import DECODER

REPO = Path(__file__).resolve().parents[1]


def _default_source() -> Path:
    shared = Path(os.environ.get("TRAINSTATS_SHARED", REPO.parent / "shared"))
    return shared / "data" / "great" / "dev"


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished (joined) child processes."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def make_input(source: Path, folder: Path, target_mb: float) -> tuple[int, int]:
    """Write repeated copies of ``source``'s shards as train shards; return (bytes, lines)."""
    blobs = [p.read_bytes() for p in list_shards(source)]
    per_round = sum(len(b) for b in blobs)
    rounds = max(1, int(-(-target_mb * 1e6 // per_round)))
    total = rounds * len(blobs)
    n_bytes = n_lines = 0
    for i in range(total):
        blob = blobs[i % len(blobs)]
        (folder / shard_name("train", i, total)).write_bytes(blob)
        n_bytes += len(blob)
        n_lines += blob.count(b"\n")
    return n_bytes, n_lines


def naive_rewrite(in_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir()
    for shard in list_shards(in_dir):
        with open(shard, encoding="utf-8") as src, open(out_dir / shard.name, "w", encoding="utf-8") as dst:
            for line in src:
                dst.write(json.dumps(json.loads(line)) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=_default_source())
    ap.add_argument("--mb", type=float, default=200.0, help="input size to build (default 200)")
    ap.add_argument("--kind", default="label")
    ap.add_argument("--level", type=float, default=25.0, help="percent (default 25)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.source.is_dir():
        print(f"GREAT shards not found at {args.source} (set TRAINSTATS_SHARED)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="trainstats-bench-noise-"))
    try:
        in_dir = work / "in"
        in_dir.mkdir()
        n_bytes, n_lines = make_input(args.source, in_dir, args.mb)
        print(f"load average before: {os.getloadavg()[0]:.1f}; JSON decoder of the fast path: {DECODER}")
        print(f"input: {n_bytes / 1e6:.0f} MB, {n_lines} examples, {len(list_shards(in_dir))} shards "
              f"in {in_dir}; kind={args.kind} level={args.level}%; cpus={os.cpu_count()}")
        def ours(validate: str, workers: int | None):
            return lambda out: induce_noise(in_dir, out, kind=args.kind, level=args.level / 100, seed=0,
                                            validate=validate, workers=workers)

        ncpu = os.cpu_count()
        def cli(out):   # a fresh interpreter: imports, pool start-up and the manifest writer included
            subprocess.run([sys.executable, "-m", "trainstats", "noise", str(in_dir), str(out), "--kind", args.kind,
                            "--level", str(args.level), "--seed", "0", "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)

        runs = {
            "naive loads/dumps (1 proc)": lambda out: naive_rewrite(in_dir, out),
            f"trainstats noise CLI, new process ({ncpu} w.)": cli,
            f"noise --validate selected ({ncpu} workers)": ours("selected", None),
            "noise --validate selected (1 worker)": ours("selected", 1),
            f"noise --validate all ({ncpu} workers)": ours("all", None),
            "noise --validate all (1 worker)": ours("all", 1),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for rep in range(args.repeats):
            for i, (name, fn) in enumerate(runs.items()):   # interleaved, so machine noise hits all alike
                out = work / f"out-{rep}-{i}"
                c0 = _cpu_seconds()
                t0 = time.perf_counter()
                fn(out)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(_cpu_seconds() - c0)
                shutil.rmtree(out)
        base = statistics.median(times[next(iter(runs))])
        base_cpu = statistics.median(cpu[next(iter(runs))])
        print("wall clock (median of runs):")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:44s} {med:6.2f} s  {n_bytes / 1e6 / med:7.1f} MB/s  "
                  f"{n_lines / med:8.0f} examples/s  x{base / med:4.2f} vs naive   (runs: "
                  + ", ".join(f"{t:.2f}" for t in ts) + ")")
        print("CPU time, this process + its workers (median; less sensitive to other load on the machine):")
        for name, cs in cpu.items():
            med = statistics.median(cs)
            print(f"  {name:44s} {med:6.2f} CPU-s  {n_bytes / 1e6 / med:7.1f} MB per CPU-s  "
                  f"x{base_cpu / med:4.2f} vs naive")
        print(f"load average after: {os.getloadavg()[0]:.1f} (on a shared machine, compare ratios of one run)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
