"""Benchmark: ``trainstats analyze`` on a GREAT-scale run directory (default 25 M training rows).

Generates a realistic run through ``trainstats.store.RunWriter`` in a temp dir outside the repo —
GREAT-style heads ``loc`` and ``rep`` (rep null on bug-free samples), ``joint_correct``, ``has_bug``,
25 % label noise whose loss stays high until the model memorizes it — then times
``trainstats analyze RUN --out OUT`` in a subprocess and reports wall time and peak RSS (the
subprocess's ``ru_maxrss``). Target: <= 60 s and <= 2 GB on a 2-core machine.

    python bench/analysis_scale.py                       # 25 M rows: 100 epochs x 250 k rows, 1.75 M samples
    python bench/analysis_scale.py --epochs 10 --repeat 1   # quick look
    python bench/analysis_scale.py --keep /tmp/bigrun       # keep (or reuse) the generated run
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_run(run_dir: Path, *, n_samples: int, epochs: int, rows_per_epoch: int, noise_level: float = 0.25,
             dev_samples: int = 20_000, batch: int = 50_000, seed: int = 0) -> int:
    """Write a synthetic GREAT-style run; return the number of training rows."""
    from trainstats.store import RunWriter, ValueColumn

    rng = np.random.default_rng(seed)
    cols = [ValueColumn(f"{h}_{s}", d, head=h, stat=s) for h in ("loc", "rep")
            for s, d in (("loss", "float32"), ("gold_prob", "float32"), ("pred", "int64"), ("pred_prob", "float32"),
                         ("correct", "bool"), ("margin", "float32"))]
    cols += [ValueColumn("joint_correct", "bool", head="joint", stat="correct"),
             ValueColumn("has_bug", "bool", head=None, stat="has_bug")]
    n_all = n_samples + dev_samples
    ids = [f"train__VARIABLE_MISUSE__SStuB.txt-{i // 6000:05d}-of-01000:{i % 6000 + 1}" for i in range(n_samples)]
    ids += [f"dev__VARIABLE_MISUSE__SStuB.txt-{i // 6000:05d}-of-00100:{i % 6000 + 1}" for i in range(dev_samples)]
    has_bug = rng.random(n_all) < 0.5
    noisy = rng.random(n_all) < noise_level
    ease = rng.gamma(2.0, 0.5, n_all)             # per-sample learning speed
    memorize_at = rng.uniform(0.3, 1.2, n_all)    # fraction of training when a noisy sample is memorized
    total = epochs * rows_per_epoch
    with RunWriter(run_dir, cols, recorder="custom", config={"noise_level": noise_level, "noise_kind": "label",
                                                             "seed": seed}) as w:
        keys = w.register_samples(ids)
        kinds = np.where(noisy, "label", None)

        def rows(idx, progress, split, epoch, step, b):
            n = len(idx)
            clean_loss = np.exp(-ease[idx] * 6 * progress) * 2.5 + rng.exponential(0.05, n)
            noisy_loss = np.where(progress < memorize_at[idx], 3.0 + rng.normal(0, 0.4, n), 0.3) * (split == "train")
            noisy_loss = np.where(split == "train", noisy_loss, 3.5 + rng.normal(0, 0.4, n))
            vals = {}
            for h, shift in (("loc", 0.0), ("rep", 0.3)):
                loss = np.abs(np.where(noisy[idx], noisy_loss, clean_loss) + shift * rng.random(n)).astype(np.float32)
                gp = np.exp(-loss)
                correct = gp > 0.5
                mask = (~has_bug[idx]) if h == "rep" else np.zeros(n, bool)
                vals.update({f"{h}_loss": np.ma.array(loss, mask=mask), f"{h}_gold_prob": np.ma.array(gp, mask=mask),
                             f"{h}_pred": np.ma.array(rng.integers(0, 512, n), mask=mask),
                             f"{h}_pred_prob": np.ma.array(np.maximum(gp, 1 - gp), mask=mask),
                             f"{h}_correct": np.ma.array(correct, mask=mask),
                             f"{h}_margin": np.ma.array(np.log(gp / (1 - gp + 1e-6)), mask=mask)})
            rep_ok = np.where(has_bug[idx], vals["rep_correct"].filled(False), True)
            vals["joint_correct"] = vals["loc_correct"].data & rep_ok
            vals["has_bug"] = has_bug[idx]
            w.write(split=split, epoch=epoch, step=step, batch=b, sample_key=keys[idx], values=vals,
                    noise=noisy[idx], noise_kind=kinds[idx])

        step = 0
        for epoch in range(epochs):
            start = (epoch * rows_per_epoch) % n_samples
            order = (start + np.arange(rows_per_epoch)) % n_samples
            for b, lo in enumerate(range(0, rows_per_epoch, batch)):
                idx = order[lo:lo + batch]
                rows(idx, (epoch * rows_per_epoch + lo) / total, "train", epoch, step, b)
                step += 1
            dev = n_samples + np.arange(dev_samples)
            rows(dev, (epoch + 1) * rows_per_epoch / total, "dev", epoch, step, 0)
            w.flush()
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_750_000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--rows-per-epoch", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of analyze (median reported)")
    ap.add_argument("--keep", type=Path, default=None, help="generate into (or reuse) this directory")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="trainstats-bench-"))
    run_dir = args.keep or tmp / "run-noise25-seed0"
    try:
        from trainstats.store import Run

        if not Run.exists(run_dir):
            t0 = time.perf_counter()
            n = make_run(run_dir, n_samples=args.samples, epochs=args.epochs, rows_per_epoch=args.rows_per_epoch)
            print(f"generated {n:,} training rows in {time.perf_counter() - t0:.1f} s at {run_dir}", flush=True)
        walls, peaks, cpus = [], [], []
        for r in range(args.repeat):
            out = tmp / f"out{r}"
            cmd = [sys.executable, "-m", "trainstats", "analyze", str(run_dir), "--out", str(out), "--quiet"]
            t0 = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            peak = after.ru_maxrss  # KiB, max over children so far
            before = before.ru_maxrss
            peaks.append(peak / 1024)
            if proc.returncode:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return proc.returncode
            print(f"run {r}: {walls[-1]:.1f} s wall, {cpus[-1]:.1f} s CPU (user+sys), "
                  f"peak RSS so far {peaks[-1]:.0f} MiB"
                  + ("" if before < peak or r == 0 else " (not higher than an earlier run)"), flush=True)
        print(f"analyze median wall {statistics.median(walls):.1f} s (target <= 60 s), median CPU "
              f"{statistics.median(cpus):.1f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
              f"peak RSS {max(peaks):.0f} MiB (target <= 2048 MiB); command: {' '.join(cmd[1:])}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
