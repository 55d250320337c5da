"""Faults: bad arrays, write errors, SIGKILL mid-write, resume without duplicates, concurrent writers."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import trainstats.store.parts as parts
from trainstats.store import RunWriter, StoreWriteError, ValueColumn, read, read_metadata

COLS = [ValueColumn("loss", "float32", head="output", stat="loss"), ValueColumn("correct", "bool", head="output", stat="correct")]


def _keys(n, offset=0):
    return np.arange(offset, offset + n, dtype=np.int64)


def test_wrong_lengths_and_dtypes_raise_in_the_callers_thread(tmp_path):
    with RunWriter(tmp_path / "run", COLS) as w:
        with pytest.raises(ValueError, match=r"column 'loss' has shape \(3,\) but sample_key has 4 entries"):
            w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(4), values={"loss": [1.0, 2.0, 3.0]})
        with pytest.raises(ValueError, match=r"column 'correct' is declared bool; received an array of dtype float"):
            w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(2), values={"correct": [0.5, 1.0]})
        with pytest.raises(ValueError, match=r"Unknown value column\(s\) \['acc'\]"):
            w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(2), values={"acc": [1, 1]})
        with pytest.raises(ValueError, match="sample_key must be a 1-D integer array"):
            w.write(split="train", epoch=0, step=0, batch=0, sample_key=["a", "b"], values={})
        with pytest.raises(ValueError, match="Invalid split 'test'"):
            w.write(split="test", epoch=0, step=0, batch=0, sample_key=_keys(2), values={})
        with pytest.raises(ValueError, match="step must be a non-negative int or an integer array with one entry per sample"):
            w.write(split="train", epoch=0, step=[1, 2, 3], batch=0, sample_key=_keys(2), values={})
        with pytest.raises(ValueError, match="batch must be a non-negative int"):
            w.write(split="train", epoch=0, step=0, batch=-1, sample_key=_keys(2), values={})
        with pytest.raises(ValueError, match="keys must be an integer array with one entry per id"):
            w.register_samples(["a", "b"], keys=[1])
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(2), values={"loss": [1.0, 2.0]})
        # several batches in one call: per-row step and batch
        w.write(split="train", epoch=0, step=np.array([1, 1, 2]), batch=np.array([1, 1, 2]),
                sample_key=_keys(3), values={"loss": [3.0, 4.0, 5.0]})
    df = read(tmp_path / "run")  # the good calls survived the bad ones
    assert df.loss.tolist() == [1, 2, 3, 4, 5] and df.batch.tolist() == [0, 0, 1, 1, 2] and df.step.tolist() == [0, 0, 1, 1, 2]


def _fail_on_open(monkeypatch, after: int = 0):
    """Opening a part fails (disk full) once ``after`` parts have been opened."""
    real = parts.pq.ParquetWriter
    opened = []

    def failing(path, *a, **k):
        if len(opened) >= after:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        opened.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(parts.pq, "ParquetWriter", failing)


def test_disk_full_is_recorded_warned_once_and_training_goes_on(tmp_path, monkeypatch):
    _fail_on_open(monkeypatch, after=1)
    run = tmp_path / "run"
    w = RunWriter(run, COLS)
    w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(3), values={"loss": [1, 2, 3]})
    w.flush()
    w.write(split="train", epoch=1, step=1, batch=0, sample_key=_keys(3), values={"loss": [4, 5, 6]})
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        w.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loud once, then quiet: the training loop keeps going
        for step in range(2, 5):
            w.write(split="train", epoch=1, step=step, batch=0, sample_key=_keys(3), values={"loss": [1, 1, 1]})
        w.close()
    meta = read_metadata(run)
    assert meta["errors"][0]["type"] == "OSError" and "No space left" in meta["errors"][0]["message"]
    assert meta["rows_dropped"] == 12 and meta["rows_written"] == 3
    df = read(run)
    assert df.loss.tolist() == [1, 2, 3]  # what was complete before the failure is intact
    assert not list((run / "_trainstats" / "tmp").iterdir())


def test_on_error_raise_raises_at_next_call(tmp_path, monkeypatch):
    _fail_on_open(monkeypatch)
    w = RunWriter(tmp_path / "run", COLS, on_error="raise")
    w.write(split="train", epoch=1, step=0, batch=0, sample_key=_keys(2), values={"loss": [1, 2]})
    with pytest.raises(StoreWriteError, match="No space left on device"):
        w.flush()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    w = RunWriter(tmp_path / "run", COLS, max_queue_rows=5)
    gate = threading.Event()
    w._queue.put(("samples", (np.zeros(0, np.int64), [])))
    real_add = w._parts.add
    w._parts.add = lambda *a: (gate.wait(5), real_add(*a))  # a stuck disk
    w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(4), values={})
    with pytest.warns(RuntimeWarning, match="queue .* is full"):
        w.write(split="train", epoch=0, step=1, batch=1, sample_key=_keys(4), values={})
    gate.set()
    w.close()
    assert w.rows_dropped == 4 and w.rows_written == 4
    assert read_metadata(tmp_path / "run")["rows_dropped"] == 4


CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np
    from trainstats.store import RunWriter, ValueColumn
    cols = [ValueColumn("loss", "float32", head="output", stat="loss")]
    run, resume, start_epoch = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    w = RunWriter(run, cols, resume=resume, row_group_rows=20)
    keys = w.register_samples([f"s:{i}" for i in range(50)])
    step = start_epoch * 10
    for epoch in range(start_epoch, 4):
        for b in range(10):
            w.write(split="train", epoch=epoch, step=step, batch=b, sample_key=keys[b*5:(b+1)*5],
                    values={"loss": np.full(5, float(epoch))})
            step += 1
        w.write(split="dev", epoch=epoch, step=step, batch=0, sample_key=keys, values={"loss": np.full(50, -epoch)})
        w.flush()
        print(f"flushed {epoch}", flush=True)
        if resume:
            continue
        if epoch == 1:
            # half of epoch 2 goes into an open (temporary) part, then we are killed
            for b in range(5):
                w.write(split="train", epoch=2, step=step + b, batch=b, sample_key=keys[b*5:(b+1)*5],
                        values={"loss": np.full(5, 2.0)})
            time.sleep(1.0)
            print("waiting", flush=True)
            time.sleep(60)
    w.close()
    """
)


@pytest.mark.slow
def test_sigkill_mid_write_then_resume_gives_no_duplicates(tmp_path):
    run = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(run), "0", "0"], stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("waiting"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    assert lines == ["flushed 0", "flushed 1", "waiting"]
    assert list((run / "_trainstats" / "tmp").glob("part-a0001-*.tmp")), "the killed writer should have left an open temp part"
    meta = read_metadata(run)  # still parses
    assert meta["attempt"] == 1
    df = read(run)
    assert sorted(df.epoch.unique().tolist()) == [0, 1]  # every completed part, no temp data
    assert len(df) == 2 * (50 + 50)
    # resume from the checkpoint at the end of epoch 0: epochs 1..3 are written again
    out = subprocess.run([sys.executable, str(script), str(run), "1", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    df = read(run)
    key = ["split", "epoch", "step", "sample_key"]
    assert not df.duplicated(key).any()
    assert len(df) == 4 * (50 + 50)
    assert set(df[df.epoch >= 1].attempt) == {2} and set(df[df.epoch == 0].attempt) == {1}
    assert not list((run / "_trainstats" / "tmp").glob("part-a0001-*")), "stale temp parts of dead attempts are removed"
    meta = read_metadata(run)
    assert [a["attempt"] for a in meta["attempts"]] == [1, 2]
    assert meta["attempts"][1]["start"] == {"split": "train", "epoch": 1, "step": 10}


def test_resume_mid_epoch_keeps_older_rows_before_the_restart_point(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        for step in range(6):  # epoch 0: steps 0-2, dev; epoch 1: steps 3-5, dev
            w.write(split="train", epoch=step // 3, step=step, batch=step % 3, sample_key=_keys(2), values={"loss": [step, step]})
            if step % 3 == 2:
                w.write(split="dev", epoch=step // 3, step=step + 1, batch=0, sample_key=_keys(2), values={"loss": [-1, -1]})
    with RunWriter(run, COLS, resume=True) as w:  # restored from a mid-epoch-1 checkpoint at step 4
        for step in (4, 5):
            w.write(split="train", epoch=1, step=step, batch=step % 3, sample_key=_keys(2), values={"loss": [10 + step] * 2})
        w.write(split="dev", epoch=1, step=6, batch=0, sample_key=_keys(2), values={"loss": [-2, -2]})
    df = read(run)
    train = df[df.split == "train"]
    assert train.step.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert train.loss.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 14, 14, 15, 15]
    dev = df[df.split == "dev"]
    assert dev.loss.tolist() == [-1, -1, -2, -2] and dev.attempt.tolist() == [1, 1, 2, 2]


def test_concurrent_writers_share_one_attempt_without_clobbering(tmp_path):
    run = tmp_path / "run"
    RunWriter(run, COLS, attempt=1, writer_id="chief").close()
    writers = [RunWriter(run, COLS, attempt=1, writer_id=f"worker-{i}") for i in range(3)]

    def work(i, w):
        for step in range(20):
            w.write(split="train", epoch=step // 10, step=step, batch=step % 10, sample_key=_keys(4, offset=100 * i),
                    values={"loss": np.full(4, i, np.float32)})
        w.close()

    threads = [threading.Thread(target=work, args=(i, w)) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    df = read(run)
    assert len(df) == 3 * 20 * 4
    assert not df.duplicated(["split", "epoch", "step", "sample_key"]).any()
    assert df.groupby("loss").size().tolist() == [80, 80, 80]
    assert len(read_metadata(run)["writers"]) == 4


def test_long_open_part_is_completed_without_a_flush(tmp_path):
    w = RunWriter(tmp_path / "run", COLS, max_part_seconds=0.0)
    w.write(split="train", epoch=0, step=0, batch=0, sample_key=_keys(2), values={"loss": [1, 2]})
    import time

    deadline = time.time() + 10
    while time.time() < deadline and not list((tmp_path / "run").glob("split=*/epoch=*/part-*.parquet")):
        time.sleep(0.2)
    assert len(read(tmp_path / "run")) == 2
    w.close()


def test_failure_inside_a_row_group_write_counts_each_row_once(tmp_path, monkeypatch):
    real = parts.pq.ParquetWriter
    monkeypatch.setattr(parts.pq, "ParquetWriter",
                        lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")))
    w = RunWriter(tmp_path / "run", COLS, row_group_rows=4)
    with pytest.warns(RuntimeWarning, match="Permission denied"):
        for step in range(5):
            w.write(split="train", epoch=0, step=step, batch=step, sample_key=_keys(2), values={"loss": [1, 2]})
            w.flush() if step == 2 else None
        w.close()
    assert w.rows_dropped == 10 and w.rows_written == 0
    monkeypatch.setattr(parts.pq, "ParquetWriter", real)
    assert read_metadata(tmp_path / "run")["rows_dropped"] == 10
