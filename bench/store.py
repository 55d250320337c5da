"""Benchmark the store: write >= 10 M realistic rows through RunWriter, next to pyarrow's own bulk
write_table of the same rows (the limit), then read them back and group by sample.

Each round writes the run twice, alternating which goes first: once through ``RunWriter`` (per-batch
``write`` calls of ``--batch`` rows, a flush per epoch, timed until ``close`` returns: the rate the
background thread sustains) and once as one ``pyarrow.parquet.write_table`` per epoch of the very
table the writer builds for that epoch, with the same options. Prints medians over the rounds, the
ratio writer / bulk, and bytes/row of each; then the time and peak memory (RSS, from /proc) to read
the rows and compute a per-sample mean loss with ``trainstats.read`` + pandas and ``open_dataset`` +
pyarrow ``group_by``, on the run and on a schema-1 copy of it (``sample_key`` in every row).

    python bench/store.py [--rows 10000000] [--samples 100000] [--batch 512] [--rounds 3]

Also prints the CPU time of the writer's background thread per row (``pthread_getcpuclockid``), which
the box's other jobs do not inflate, next to that of the bulk write.

Targets (issue 14, 2-core machine): >= 2 M rows/s sustained, <= 20 bytes/row.
"""
from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from trainstats.store import RunWriter, ValueColumn, open_dataset, read, read_metadata, sample_key
from trainstats.store.batch import make_batch
from trainstats.store.layout import Layout
from trainstats.store.parts import PartSet
from trainstats.store.sample_ids import IdTable
from trainstats.store.schema import write_options

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


def write_with_runwriter(run: Path, ids, batches, epochs: int) -> tuple[float, float, float]:
    """``(seconds until close() returned, mean seconds per write() call in the caller's thread, CPU
    seconds of the writer's background thread)``."""
    t0 = time.perf_counter()
    caller = 0.0
    cpu = float("nan")
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
        try:  # CPU time of the background thread: the box's other jobs do not inflate it
            cpu = time.clock_gettime(time.pthread_getcpuclockid(w._thread.ident))
        except (AttributeError, OSError):
            pass
        if w.rows_dropped:
            raise RuntimeError(f"RunWriter dropped {w.rows_dropped} rows; raise max_queue_rows")
    return time.perf_counter() - t0, caller / (epochs * len(batches)), cpu


def epoch_tables(ids, batches, epochs: int):
    """The table RunWriter builds for each epoch (built by its own code, outside the timing)."""
    layout = Layout(Path(tempfile.mkdtemp(prefix="trainstats-bench-tables-")))
    table = IdTable()
    table.add(sample_key(ids), ids)
    parts = PartSet(layout, COLUMNS, attempt=1, writer_id="0", row_group_rows=10**9, max_part_seconds=1e9, ids=table)
    by_name = {c.name: c for c in COLUMNS}
    out, step = [], 0
    for epoch in range(epochs):
        for b, (keys, values) in enumerate(batches):
            parts.add(make_batch(by_name, split="train", epoch=epoch, step=step, batch=b, sample_key=keys,
                                 values=values, noise=None, noise_kind=None), None)
            step += 1
        part = parts._partitions.pop(("train", epoch))
        out.append(parts._table(part))
    shutil.rmtree(layout.root, ignore_errors=True)
    return out


def write_bulk(folder: Path, tables) -> float:
    options = write_options(COLUMNS)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    for epoch, table in enumerate(tables):
        pq.write_table(table, folder / f"epoch-{epoch}.parquet", **options)
    return time.perf_counter() - t0


def schema1_copy(run: Path, out: Path, ids) -> None:
    """The same rows in the schema-1 layout (``sample_key`` per row, ids in ``samples/``), to compare
    reading costs: ``trainstats.read`` reads both layouts."""
    import json

    import pyarrow as pa

    meta = read_metadata(run)
    (out / "rows").mkdir(parents=True)
    for key in ("format", "run_id", "created_at", "versions", "recorder", "config", "value_columns", "noise_manifest"):
        meta.setdefault(key, None)
    legacy = {k: meta[k] for k in ("format", "run_id", "created_at", "versions", "recorder", "config",
                                   "value_columns", "noise_manifest")}
    (out / "run.json").write_text(json.dumps(dict(legacy, schema_version=1)))
    for sub in ("attempts", "writers", "samples"):
        (out / sub).mkdir()
    pq.write_table(pa.table({"sample_key": sample_key(ids), "sample_id": ids}), out / "samples" / "part-a0001-w0-000000.parquet")
    for f in sorted(run.glob("split=*/epoch=*/*.parquet")):
        t = pq.read_table(f)
        keys = pa.array(sample_key(t.column("sample_id").to_pylist()), pa.int64())
        t = t.drop_columns(["sample_id"]).set_column(t.schema.names.index("sample_key") - 1, "sample_key", keys)
        folder = out / "rows" / f.parent.parent.name / f.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, folder / f.name, compression="zstd")


def _size(files) -> int:
    return sum(p.stat().st_size for p in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the last run directory")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ids, batches = make_batches(args.samples, args.batch, 250, rng)
    epochs = max(1, args.rows // args.samples)
    rows = epochs * args.samples
    tables = epoch_tables(ids, batches, epochs)
    tmp = Path(tempfile.mkdtemp(prefix="trainstats-bench-"))
    run = tmp / "run"
    bulk_cpu = []
    try:
        w_rates, b_rates, ratios, callers, cpus = [], [], [], [], []
        for r in range(args.rounds):
            for what in (("writer", "bulk") if r % 2 == 0 else ("bulk", "writer")):
                gc.collect()
                if what == "writer":
                    shutil.rmtree(run, ignore_errors=True)
                    seconds, per_call, cpu = write_with_runwriter(run, ids, batches, epochs)
                    w_rates.append(rows / seconds)
                    callers.append(per_call)
                    cpus.append(cpu)
                else:
                    shutil.rmtree(tmp / "bulk", ignore_errors=True)
                    c0 = time.thread_time()
                    b_rates.append(rows / write_bulk(tmp / "bulk", tables))
                    bulk_cpu.append(time.thread_time() - c0)
            ratios.append(w_rates[-1] / b_rates[-1])
            print(f"round {r + 1}: RunWriter {w_rates[-1] / 1e6:.2f} M rows/s, pyarrow bulk write_table "
                  f"{b_rates[-1] / 1e6:.2f} M rows/s, ratio {ratios[-1]:.2f}", flush=True)
        writer_size = _size(run.glob("split=*/epoch=*/*.parquet"))
        bulk_size = _size((tmp / "bulk").glob("*.parquet"))
        print(f"wrote {rows:,} rows of {len(COLUMNS)} value columns ({args.samples:,} samples per epoch, "
              f"batches of {args.batch}), median of {args.rounds} rounds: RunWriter "
              f"{statistics.median(w_rates) / 1e6:.2f} M rows/s sustained (caller thread "
              f"{statistics.median(callers) * 1e6:.1f} us per write), pyarrow bulk write_table "
              f"{statistics.median(b_rates) / 1e6:.2f} M rows/s; ratio {statistics.median(ratios):.2f}")
        print(f"CPU time (immune to the box's other jobs): RunWriter background thread "
              f"{statistics.median(cpus) / rows * 1e9:.0f} ns/row = {rows / statistics.median(cpus) / 1e6:.2f} M rows "
              f"per CPU-second; bulk write_table {statistics.median(bulk_cpu) / rows * 1e9:.0f} ns/row")
        print(f"on disk: RunWriter {writer_size / rows:.2f} bytes/row ({writer_size / 1e6:.1f} MB), "
              f"bulk write_table {bulk_size / rows:.2f} bytes/row")
        shutil.rmtree(tmp / "bulk", ignore_errors=True)
        del batches, tables
        gc.collect()

        legacy = tmp / "schema1"
        schema1_copy(run, legacy, ids)
        for layout, path in (("schema 2", run), ("schema 1 copy", legacy)):
            for name in ("trainstats.read + pandas", "open_dataset + pyarrow group_by"):
                gc.collect()
                base = _rss_mb()
                t0 = time.perf_counter()
                if name.startswith("trainstats.read"):
                    df = read(path, split="train", columns=["sample_key", "loss"], sort=False)
                    means = df.groupby("sample_key")["loss"].mean()
                    n = len(means)
                    del df, means
                else:
                    key = "sample_id" if layout == "schema 2" else "sample_key"
                    table = open_dataset(path).to_table(columns=[key, "loss"])
                    means = table.group_by(key).aggregate([("loss", "mean")])
                    n = means.num_rows
                    del table, means
                dt = time.perf_counter() - t0
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{layout}: read + per-sample mean loss ({name}): {dt:.2f} s for {rows:,} rows, {n:,} "
                      f"samples; RSS before {base:.0f} MB, process peak so far {peak:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {run}")


if __name__ == "__main__":
    main()
