"""Benchmark the store: write >= 10 M realistic rows through RunWriter, read them back, group by sample.

Prints rows/s (sustained, including the final flush), bytes/row on disk, and the time and peak memory
(RSS growth, from /proc) to read the rows and compute a per-sample mean loss with three readers.

    python bench/store.py [--rows 10000000] [--samples 100000] [--batch 512]

Targets (2-core machine): >= 1 M rows/s, <= 22 bytes/row, read + group-by of 10 M rows <= 5 s.
"""
from __future__ import annotations

import argparse
import gc
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from trainstats.store import RunWriter, ValueColumn, open_dataset, read, sample_key

COLUMNS = [
    ValueColumn("loss", "float32", head="output", stat="loss", unit="nats"),
    ValueColumn("gold_prob", "float32", head="output", stat="gold_prob"),
    ValueColumn("pred", "int64", head="output", stat="pred"),
    ValueColumn("pred_prob", "float32", head="output", stat="pred_prob"),
    ValueColumn("correct", "bool", head="output", stat="correct"),
    ValueColumn("margin", "float32", head="output", stat="margin"),
]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_batches(n_samples: int, batch: int, n_classes: int, rng: np.random.Generator):
    """Pre-generate one epoch of realistic batches (probabilities near 0/1) to reuse every epoch."""
    ids = [f"train__VARIABLE_MISUSE__SStuB.txt-{i // 1000:05d}-of-00300:{i % 1000 + 1}" for i in range(n_samples)]
    keys = sample_key(ids)
    order = rng.permutation(n_samples)
    batches = []
    for start in range(0, n_samples, batch):
        idx = order[start:start + batch]
        m = len(idx)
        logit = rng.normal(3.0, 2.5, m)
        gold = (1 / (1 + np.exp(-logit))).astype(np.float32)
        correct = gold > 0.5
        pred = np.where(correct, 1, rng.integers(0, n_classes, m))
        batches.append((keys[idx], {
            "loss": (-np.log(gold)).astype(np.float32),
            "gold_prob": gold,
            "pred": pred.astype(np.int64),
            "pred_prob": np.maximum(gold, 1 - gold).astype(np.float32),
            "correct": correct,
            "margin": logit.astype(np.float32),
        }))
    return ids, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ids, batches = make_batches(args.samples, args.batch, 250, rng)
    epochs = max(1, args.rows // args.samples)
    tmp = Path(tempfile.mkdtemp(prefix="trainstats-bench-"))
    run = tmp / "run"
    try:
        t0 = time.perf_counter()
        caller = 0.0
        with RunWriter(run, COLUMNS, recorder="bench", max_queue_rows=50_000_000) as w:
            w.register_samples(ids)
            step = 0
            for epoch in range(epochs):
                for b, (keys, values) in enumerate(batches):
                    c0 = time.perf_counter()
                    w.write(split="train", epoch=epoch, step=step, batch=b, sample_key=keys, values=values)
                    caller += time.perf_counter() - c0
                    step += 1
                w.flush()
            dropped = w.rows_dropped
        elapsed = time.perf_counter() - t0
        rows = epochs * args.samples
        size = sum(p.stat().st_size for p in (run / "rows").rglob("*.parquet"))
        print(f"wrote {rows:,} rows in {elapsed:.2f} s: {rows / elapsed / 1e6:.2f} M rows/s sustained "
              f"(caller thread {caller / (epochs * len(batches)) * 1e6:.1f} us per write of {args.batch} rows); "
              f"dropped {dropped}")
        print(f"on disk: {size / 1e6:.1f} MB = {size / rows:.2f} bytes/row")
        del batches
        gc.collect()

        for name in ("trainstats.read + pandas", "open_dataset + pyarrow group_by"):
            gc.collect()
            base = _rss_mb()
            t0 = time.perf_counter()
            if name.startswith("trainstats.read"):
                df = read(run, split="train", columns=["sample_key", "loss"], with_ids=False, sort=False)
                means = df.groupby("sample_key")["loss"].mean()
                n = len(means)
                del df, means
            else:
                table = open_dataset(run).to_table(columns=["sample_key", "loss"])
                means = table.group_by("sample_key").aggregate([("loss", "mean")])
                n = means.num_rows
                del table, means
            dt = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"read + per-sample mean loss ({name}): {dt:.2f} s for {rows:,} rows, {n:,} samples; "
                  f"RSS before {base:.0f} MB, process peak so far {peak:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {run}")


if __name__ == "__main__":
    main()
