"""pandas, pyarrow, Polars and DuckDB read a run directory directly and see exactly ``trainstats.read``:
after a clean run, after a SIGKILL mid-write and a resume, after a re-run that supersedes epochs."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

from store_views import assert_every_reader_sees_the_run, plain_views, trainstats_view
from trainstats.store import RunWriter, ValueColumn, read

pytest.importorskip("duckdb", reason="the test extra installs duckdb")
pytest.importorskip("polars", reason="the test extra installs polars")

COLS = [ValueColumn("loss", "float32", head="output", stat="loss"),
        ValueColumn("correct", "bool", head="output", stat="correct"),
        ValueColumn("pred", "int64", head="output", stat="pred")]
IDS = [f"train.txt-00001-of-00010:{i + 1}" for i in range(12)]


def _epoch(w, keys, epoch, step, value, *, dev=True, noise=False):
    for b in range(3):
        k = keys[b * 4:(b + 1) * 4]
        w.write(split="train", epoch=epoch, step=step + b, batch=b, sample_key=k,
                values={"loss": np.full(4, value, np.float32), "correct": np.arange(4) % 2 == 0,
                        "pred": np.ma.masked_array(np.arange(4), mask=[0, 1, 0, 0])},
                noise=np.arange(4) == 1 if noise else None, noise_kind=["", "label", "", ""] if noise else None)
    if dev:
        w.write(split="dev", epoch=epoch, step=step + 3, batch=0, sample_key=keys[:5],
                values={"loss": np.full(5, -value, np.float32)})
    w.flush()


def test_clean_run_every_reader_sees_it(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS, noise_manifest={IDS[3]: "label"}) as w:
        keys = w.register_samples(IDS)
        for e in range(3):
            _epoch(w, keys, e, 3 * e, float(e), noise=(e == 2))
    seen = assert_every_reader_sees_the_run(run)
    assert len(seen) == 3 * (12 + 5) and seen.sample_id.notna().all()
    assert seen[seen.split == "train"].noise.sum() == 2 + 3  # the manifest flags sample 3 in epochs 0-1; epoch 2 passes its own flags


def test_rerun_that_supersedes_epochs_leaves_no_old_rows_in_any_reader(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        keys = w.register_samples(IDS)
        for e in range(4):
            _epoch(w, keys, e, 3 * e, float(e))
    # restored from a checkpoint in the middle of epoch 1 (after its first batch, step 4)
    with RunWriter(run, COLS, resume=True) as w:
        keys = w.register_samples(IDS)
        w.write(split="train", epoch=1, step=4, batch=1, sample_key=keys[4:8], values={"loss": np.full(4, 10.0)})
        w.write(split="train", epoch=1, step=5, batch=2, sample_key=keys[8:], values={"loss": np.full(4, 10.0)})
        w.write(split="dev", epoch=1, step=6, batch=0, sample_key=keys[:5], values={"loss": np.full(5, -10.0)})
        w.flush()
        _epoch(w, keys, 2, 6, 20.0, dev=False)
    seen = assert_every_reader_sees_the_run(run)
    assert not seen.duplicated(["split", "epoch", "step", "sample_id"]).any()
    train = seen[seen.split == "train"]
    assert train.groupby("epoch").size().to_dict() == {0: 12, 1: 12, 2: 12}  # epoch 3 of attempt 1 is gone
    assert train[train.epoch == 1].attempt.tolist() == [1] * 4 + [2] * 8  # batch 0 kept, batches 1-2 redone
    assert set(seen[seen.split == "dev"].attempt) == {1, 2}
    archived = sorted(p.relative_to(run).as_posix() for p in (run / "_superseded").rglob("*.superseded"))
    assert [a.split("/")[1:3] for a in archived] == [["split=dev", f"epoch={e}"] for e in (1, 2, 3)] + \
        [["split=train", f"epoch={e}"] for e in (1, 2, 3)]


CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np
    from trainstats.store import RunWriter, ValueColumn
    cols = [ValueColumn("loss", "float32", head="output", stat="loss")]
    w = RunWriter(sys.argv[1], cols, row_group_rows=8)
    keys = w.register_samples([f"s:{i}" for i in range(20)])
    for epoch in range(2):
        for b in range(4):
            w.write(split="train", epoch=epoch, step=4 * epoch + b, batch=b, sample_key=keys[5 * b:5 * b + 5],
                    values={"loss": np.full(5, float(epoch))})
        w.flush()
    for b in range(3):  # epoch 2 half written: row groups in an open temp part
        w.write(split="train", epoch=2, step=8 + b, batch=b, sample_key=keys[5 * b:5 * b + 5], values={"loss": np.ones(5)})
    time.sleep(0.5)
    print("written", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_after_sigkill_mid_write_and_resume_every_reader_sees_the_run(tmp_path):
    run = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    killed = assert_every_reader_sees_the_run(run)  # the flushed epochs, nothing of the open part
    assert killed.groupby("epoch").size().to_dict() == {0: 20, 1: 20}
    with RunWriter(run, [ValueColumn("loss", "float32", head="output", stat="loss")], resume=True) as w:
        keys = w.register_samples([f"s:{i}" for i in range(20)])  # resumed from the end of epoch 1
        for b in range(4):
            w.write(split="train", epoch=2, step=8 + b, batch=b, sample_key=keys[5 * b:5 * b + 5],
                    values={"loss": np.full(5, 2.0)})
    seen = assert_every_reader_sees_the_run(run)
    assert seen.groupby("epoch").size().to_dict() == {0: 20, 1: 20, 2: 20}
    assert set(seen[seen.epoch == 2].attempt) == {2} and set(seen[seen.epoch < 2].attempt) == {1}


def test_reader_views_differ_when_a_superseded_part_is_left_in_place(tmp_path):
    """The comparison has teeth: a superseded part put back into the dataset shows in plain readers
    (which have no rule to apply), while trainstats.read still hides it."""
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        keys = w.register_samples(IDS)
        _epoch(w, keys, 0, 0, 0.0)
    with RunWriter(run, COLS, resume=True) as w:
        _epoch(w, w.register_samples(IDS), 0, 0, 5.0)
    archived = next((run / "_superseded").rglob("*.superseded"))
    restored = run / archived.relative_to(run / "_superseded").with_suffix("")
    archived.rename(restored)
    extra = pq.ParquetFile(restored).metadata.num_rows
    assert len(read(run)) == 17 and len(trainstats_view(run)) == 17
    assert {name: len(v) for name, v in plain_views(run).items()} == dict.fromkeys(
        ["pandas", "pyarrow", "polars", "duckdb"], 17 + extra)
