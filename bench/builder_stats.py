"""Statistics of built VarMisuse data side by side with the real GREAT shards, and the stdlib build time.

Usage::

    .venv/bin/python bench/builder_stats.py                       # build the stdlib into a temp dir, time it
    .venv/bin/python bench/builder_stats.py --built data/stdlib   # only compare an existing build
    .venv/bin/python bench/builder_stats.py --workers 2 --seed 0 --sample 5000

Prints: the build's wall time and CPU seconds (this process + worker processes), its summary, then a
table (real | built) of token lengths, repair candidates, repair targets, buggy fraction and edges per
token by type. ``--sample`` examples are read from each side (the built side: its dev split first).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainstats.varmisuse import list_shards  # noqa: E402
from trainstats.varmisuse.builder import EDGE_TYPES, build_varmisuse  # noqa: E402


def _read(path: Path, limit: int, prefer_split: str | None = None) -> list[dict]:
    shards = list_shards(path)
    if prefer_split:
        shards.sort(key=lambda p: (p.parent.name != prefer_split, str(p)))
    out: list[dict] = []
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for line in fh:
                out.append(json.loads(line))
                if len(out) >= limit:
                    return out
    return out


def _quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
    return f"p10 {q(.1):g} / med {q(.5):g} / p90 {q(.9):g} / max {v[-1]:g} (mean {statistics.fmean(v):.1f})"


def stats(examples: list[dict]) -> dict[str, str]:
    n = len(examples)
    lengths = [len(e["source_tokens"]) for e in examples]
    cands = [sum(isinstance(c, int) for c in e["repair_candidates"]) for e in examples]
    names = [sum(isinstance(c, str) for c in e["repair_candidates"]) for e in examples if not e["has_bug"]]
    buggy = [e for e in examples if e["has_bug"]]
    targets = [len(e["repair_targets"]) for e in buggy]
    total_tokens = sum(lengths)
    per_type: Counter = Counter()
    for e in examples:
        for edge in e["edges"]:
            per_type[edge[3].removeprefix("enum_")] += 1
    row = {
        "examples": str(n),
        "buggy fraction": f"{len(buggy) / max(n, 1):.3f}",
        "tokens": _quantiles(lengths),
        "candidates (ints)": _quantiles(cands),
        "variables (bug-free)": _quantiles(names),
        "repair targets (buggy)": _quantiles(targets),
        "buggy w/o targets": f"{sum(t == 0 for t in targets) / max(len(buggy), 1):.3f}",
        "edges / token (all)": f"{sum(per_type.values()) / max(total_tokens, 1):.3f}",
    }
    for name in sorted(EDGE_TYPES, key=EDGE_TYPES.get):
        row[f"  {name} / token"] = f"{per_type.get(name, 0) / max(total_tokens, 1):.4f}"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "great" / "dev")
    parser.add_argument("--built", type=Path, default=None, help="existing build (skips building)")
    parser.add_argument("--src", type=Path, default=None, help="source tree to build (default: the stdlib)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--sample", type=int, default=5000, help="examples read per side")
    args = parser.parse_args()

    tmp = None
    built = args.built
    if built is None:
        tmp = tempfile.TemporaryDirectory(prefix="builder_stats_")
        built = Path(tmp.name) / "vm"
        cpu0 = time.process_time()
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        summary = build_varmisuse(args.src, built, seed=args.seed, workers=args.workers, progress=True)
        wall = time.perf_counter() - t0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (time.process_time() - cpu0) + (child1.ru_utime - child0.ru_utime) \
            + (child1.ru_stime - child0.ru_stime)
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
        print(f"build of {summary.src_dir}: wall {wall:.1f} s, CPU {cpu:.1f} s (all processes), "
              f"workers {args.workers or 'cpu_count'}, load average after {' '.join(load)}")
        d = summary.to_dict()
        d["skipped_files"] = [f"{x['reason']}" for x in d["skipped_files"]]
        print(json.dumps(d, indent=1))
    real = _read(args.real, args.sample)
    mine = _read(built, args.sample, prefer_split="dev")
    a, b = stats(real), stats(mine)
    width = max(len(k) for k in a)
    print(f"\n{'statistic':<{width}} | real GREAT ({args.real.name}) | built")
    for key in a:
        print(f"{key:<{width}} | {a[key]} | {b[key]}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
