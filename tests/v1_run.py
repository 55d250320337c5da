"""A run directory in the schema-1 layout, byte for byte as trainstats 0.1 (before issue 14) wrote one:
``run.json``, ``attempts/``, ``writers/``, ``samples/`` and ``rows/`` at the top; rows keyed by
``sample_key`` only; superseded rows left in place for the reader to filter.

The run: attempt 1 trains epochs 0-2 (two train batches of 3 samples and a dev pass of 2 each), a
dead writer's unfinished temp part is left in ``rows/``; attempt 2 resumes in the middle of epoch 1
(step 3) and trains epochs 1-2 again (loss ``10 + epoch``). Sample ``s:6`` is written without ever
being registered.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trainstats.store import sample_key

IDS = [f"s:{i}" for i in range(6)]
UNREGISTERED = "s:6"
VALUE_COLUMNS = [
    {"name": "loss", "dtype": "float32", "head": "output", "stat": "loss", "unit": "nats", "description": ""},
    {"name": "correct", "dtype": "bool", "head": "output", "stat": "correct", "unit": "", "description": ""},
]
_SCHEMA = pa.schema([
    pa.field("step", pa.int64(), nullable=False), pa.field("batch", pa.int32(), nullable=False),
    pa.field("sample_key", pa.int64(), nullable=False), pa.field("noise", pa.bool_(), nullable=False),
    pa.field("noise_kind", pa.dictionary(pa.int32(), pa.string())), pa.field("attempt", pa.int32(), nullable=False),
    pa.field("loss", pa.float32()), pa.field("correct", pa.bool_()),
])


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _part(run: Path, split: str, epoch: int, name: str, rows: list[tuple]) -> None:
    """rows: (step, batch, sample_id, loss, attempt)"""
    keys = sample_key([r[2] for r in rows])
    noisy = np.array([r[2] == "s:1" for r in rows])
    table = pa.Table.from_arrays([
        pa.array([r[0] for r in rows], pa.int64()), pa.array([r[1] for r in rows], pa.int32()),
        pa.array(keys, pa.int64()), pa.array(noisy),
        pa.DictionaryArray.from_arrays(pa.array(np.where(noisy, 0, -1), pa.int32(), mask=~noisy), pa.array(["label"])),
        pa.array([r[4] for r in rows], pa.int32()), pa.array([r[3] for r in rows], pa.float32()),
        pa.array([r[3] > 1 for r in rows]),
    ], schema=_SCHEMA)
    folder = run / "rows" / f"split={split}" / f"epoch={epoch}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name, compression="zstd")


def _epoch_rows(epoch: int, attempt: int, first_batch: int = 0) -> dict[str, list[tuple]]:
    value = float(epoch) if attempt == 1 else 10.0 + epoch
    batches = [IDS[:3], [IDS[3], IDS[4], UNREGISTERED]]
    train = [(2 * epoch + b, b, sid, value, attempt) for b in range(first_batch, 2) for sid in batches[b]]
    dev = [(2 * epoch + 2, 0, IDS[i], -value, attempt) for i in range(2)]
    return {"train": train, "dev": dev}


def write_v1_run(run: Path) -> set[tuple]:
    """Write the run; return the rows ``(split, epoch, step, sample_id, loss, attempt)`` a reader keeps."""
    _json(run / "run.json", {
        "format": "trainstats-run", "schema_version": 1, "run_id": "0123456789abcdef",
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "versions": {"trainstats": "0.1.0", "python": "3.11.7", "numpy": "2.4.6", "pyarrow": "26.0.1"},
        "recorder": "custom", "config": {"lr": 0.1, "noise_level": 0.25}, "value_columns": VALUE_COLUMNS,
        "noise_manifest": "<mapping>"})
    seq = 0
    kept: set[tuple] = set()
    for attempt, epochs, start in ((1, range(3), {"split": "train", "epoch": 0, "step": 0}),
                                   (2, range(1, 3), {"split": "train", "epoch": 1, "step": 3})):
        _json(run / "attempts" / f"attempt-{attempt:04d}.json", {
            "attempt": attempt, "started_at": "2026-01-01T00:00:00.000+00:00", "pid": 1, "host": "vm",
            "noise_manifest": "<mapping>"})
        seq += 1
        (run / "samples").mkdir(exist_ok=True)
        pq.write_table(pa.table({"sample_key": pa.array(sample_key(IDS), pa.int64()), "sample_id": IDS}),
                       run / "samples" / f"part-a{attempt:04d}-w0-{seq:06d}.parquet")
        rows = 0
        for epoch in epochs:
            first_batch = 1 if attempt == 2 and epoch == 1 else 0
            for split, part_rows in _epoch_rows(epoch, attempt, first_batch).items():
                seq += 1
                _part(run, split, epoch, f"part-a{attempt:04d}-w0-{seq:06d}.parquet", part_rows)
                rows += len(part_rows)
                for r in part_rows:
                    superseded = attempt == 1 and (epoch > 1 or (epoch == 1 and (split != "train" or r[0] >= 3)))
                    if not superseded:
                        kept.add((split, epoch, r[0], None if r[2] == UNREGISTERED else r[2], r[3], attempt))
        _json(run / "writers" / f"a{attempt:04d}-w0.json", {
            "attempt": attempt, "writer": "0", "pid": 1, "first_position": start, "rows_written": rows,
            "rows_dropped": 0, "errors": [], "closed": True, "updated_at": "2026-01-01T00:00:00.000+00:00"})
    (run / "rows" / "split=train" / "epoch=2" / ".tmp-part-a0001-w0-000099.parquet").write_bytes(b"PAR1 half a file")
    return kept
