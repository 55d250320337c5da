"""Benchmark: ``trainstats analyze`` on a GREAT-scale run directory (default 25 M training rows), today's
engine and the new one side by side, with DuckDB's group-by of the same rows as a reference.

Generates a realistic run through ``trainstats.store.RunWriter`` in a temp dir outside the repo —
GREAT-style heads ``loc`` and ``rep`` (rep null on bug-free samples), ``joint_correct``, ``has_bug``,
25 % label noise whose loss stays high until the model memorizes it — then, in turns (A B C A B C ...),
each in its own subprocess:

* ``baseline``: ``trainstats analyze RUN --out OUT --no-plots --quiet`` of the engine at ``--baseline``
  (a git revision, extracted with ``git archive`` into a temp dir; default: main before issue 17's engine);
* ``new``: the same command with this checkout's trainstats (``--jobs 1``: one run is one process anyway);
* ``duckdb``: ``trainstats.analysis.sql_engines.duckdb_scores(RUN)`` (the plain-aggregate scores as one
  SQL ``GROUP BY``, docs/sql.md) written to Parquet; DuckDB uses every core.

Each process's wall time, CPU time (user+sys) and peak RSS come from ``os.wait4`` (that child only).
It prints the median of ``--repeat`` turns, the ratios, and how far the new engine's ``scores.parquet``
is from the baseline's. Target (issue 17): new engine <= 30 s and <= 1 GB peak RSS on 2 cores.

    python bench/analysis_scale.py                          # 25 M rows: 100 epochs x 250 k rows, 1.75 M samples
    python bench/analysis_scale.py --epochs 10 --repeat 1   # quick look
    python bench/analysis_scale.py --keep /tmp/bigrun       # keep (or reuse) the generated run
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: main's head before issue 17's analysis engine (ad40286 and later): "today's engine"
DEFAULT_BASELINE = "d0ae263"
TARGET_S, TARGET_MIB = 30.0, 1024.0


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


def _extract(revision: str, into: Path) -> Path | None:
    """This repository's tree at ``revision`` under ``into`` (None, with a message, when git cannot)."""
    into.mkdir(parents=True)
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "trainstats"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        print(f"baseline {revision!r} not extracted ({err.decode(errors='replace').strip() or exc}); "
              "comparing the new engine with DuckDB only", flush=True)
        return None
    return into


def _measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user+sys) and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _scores_gap(a: Path, b: Path) -> str:
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return f"columns or rows differ: {x.shape} vs {y.shape}"
    if not (x["sample_key"].to_numpy() == y["sample_key"].to_numpy()).all():
        return "samples in another order"
    worst = 0.0
    for col in x.columns:
        if x[col].dtype.kind != "f":
            if not x[col].equals(y[col]):
                return f"column {col} differs"
            continue
        u, v = x[col].to_numpy(), y[col].to_numpy()
        if not (np.isnan(u) == np.isnan(v)).all() or not (np.isinf(u) == np.isinf(v)).all():
            return f"column {col}: NaN/inf at other samples"
        ok = np.isfinite(u)
        if ok.any():
            worst = max(worst, float(np.max(np.abs(u[ok] - v[ok]) / np.maximum(np.abs(u[ok]), 1e-12))))
    return f"same samples and columns, largest relative difference {worst:.1e}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_750_000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--rows-per-epoch", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3, help="turns of each engine (median reported)")
    ap.add_argument("--keep", type=Path, default=None, help="generate into (or reuse) this directory")
    ap.add_argument("--baseline", default=DEFAULT_BASELINE,
                    help=f"git revision of today's engine (default {DEFAULT_BASELINE}); 'none' to skip it")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="trainstats-bench-"))
    run_dir = args.keep or tmp / "run-noise25-seed0"
    try:
        sys.path.insert(0, str(REPO))
        from trainstats.store import Run

        if not Run.exists(run_dir):
            t0 = time.perf_counter()
            n = make_run(run_dir, n_samples=args.samples, epochs=args.epochs, rows_per_epoch=args.rows_per_epoch)
            print(f"generated {n:,} training rows in {time.perf_counter() - t0:.1f} s at {run_dir}", flush=True)
        rows = Run(run_dir).dataset().count_rows()
        print(f"run: {rows:,} rows (train + dev), {len(Run(run_dir).epochs('train'))} training epochs", flush=True)
        base = None if args.baseline == "none" else _extract(args.baseline, tmp / "baseline")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        engines: dict[str, tuple[list[str], dict[str, str]]] = {}
        if base is not None:
            engines[f"baseline ({args.baseline})"] = (
                [sys.executable, "-m", "trainstats", "analyze", str(run_dir), "--out", "{out}", "--no-plots", "--quiet"],
                dict(env, PYTHONPATH=str(base)))
        engines["new"] = ([sys.executable, "-m", "trainstats", "analyze", str(run_dir), "--out", "{out}", "--no-plots",
                           "--quiet", "--jobs", "1"], dict(env, PYTHONPATH=str(REPO)))
        engines["duckdb"] = ([sys.executable, "-c", "import sys; from trainstats.analysis.sql_engines import "
                              "duckdb_scores; duckdb_scores(sys.argv[1]).to_parquet(sys.argv[2])", str(run_dir),
                              "{out}/sql_scores.parquet"], dict(env, PYTHONPATH=str(REPO)))
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in engines}
        for r in range(args.repeat):
            for name, (cmd, cenv) in engines.items():
                out = tmp / f"{name.split()[0]}-{r}"
                out.mkdir()
                results[name].append(_measure([c.replace("{out}", str(out)) for c in cmd], cenv))
                wall, cpu, peak = results[name][-1]
                print(f"turn {r} {name:>22}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, peak RSS {peak:6.0f} MiB",
                      flush=True)
        print(f"\nmedian of {args.repeat} turn(s), {rows:,} rows, load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores:")
        med = {name: tuple(statistics.median(m[i] for m in ms) for i in range(3)) for name, ms in results.items()}
        for name, (wall, cpu, peak) in med.items():
            print(f"  {name:>22}: {wall:6.1f} s wall  {cpu:6.1f} s CPU  {peak:6.0f} MiB peak RSS")
        new = med["new"]
        for name, (wall, _, peak) in med.items():
            if name != "new":
                print(f"  {name} / new: {wall / new[0]:.2f}x time, {peak / new[2]:.2f}x peak RSS")
        print(f"  new engine target <= {TARGET_S:.0f} s and <= {TARGET_MIB:.0f} MiB: "
              f"{'met' if new[0] <= TARGET_S and new[2] <= TARGET_MIB else 'NOT met'}")
        if base is not None:
            gap = _scores_gap(tmp / "baseline-0" / "scores.parquet", tmp / "new-0" / "scores.parquet")
            print(f"  new scores.parquet vs baseline: {gap}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
