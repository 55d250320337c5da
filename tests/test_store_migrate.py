"""Schema-1 run directories stay readable, and ``trainstats migrate`` upgrades them in place — also
when it is killed at any of its publication points and run again."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import trainstats
from crash_writer import Killer
from store_views import assert_every_reader_sees_the_run
from trainstats.analysis import analyze_run
from trainstats.cli import main
from trainstats.store import Run, RunWriter, UnsupportedSchemaVersion, ValueColumn, migrate, sample_key
from v1_run import IDS, UNREGISTERED, write_v1_run

COLS = [ValueColumn("loss", "float32", head="output", stat="loss", unit="nats"),
        ValueColumn("correct", "bool", head="output", stat="correct")]


def _rows(df: pd.DataFrame) -> set[tuple]:
    ids = [None if pd.isna(v) else str(v) for v in df["sample_id"]]
    return set(zip(df["split"].astype(str), df["epoch"].astype(int), df["step"].astype(int), ids,
                   df["loss"].astype(float), df["attempt"].astype(int)))


def test_a_schema_1_run_reads_analyses_and_inspects_as_before(tmp_path, capsys):
    run = tmp_path / "old"
    kept = write_v1_run(run)
    df = trainstats.read(run)
    assert _rows(df) == kept and not df.duplicated(["split", "epoch", "step", "sample_key"]).any()
    assert df.loc[df.sample_id.isna(), "sample_key"].unique().tolist() == [sample_key(UNREGISTERED)]
    assert Run(run).schema_version == 1 and trainstats.read_metadata(run)["attempts"][1]["start"]["step"] == 3
    res = analyze_run(run)
    assert len(res.scores) == 6 and (res.scores["output_n"] == 3).all()  # 3 train epochs, one row each
    assert main(["inspect", str(run)]) == 0
    assert f"trainstats migrate {run}" in capsys.readouterr().out
    with pytest.raises(UnsupportedSchemaVersion, match="trainstats migrate"):
        RunWriter(run, COLS, resume=True)


def test_migrate_upgrades_in_place_and_every_reader_then_sees_the_run(tmp_path, capsys):
    run = tmp_path / "old"
    kept = write_v1_run(run)
    before = analyze_run(run).scores.sort_values("sample_key").reset_index(drop=True)
    assert main(["migrate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "schema_version 1 -> 2: 10 part(s) rewritten with sample_id, 4 held superseded rows" in out
    assert sorted(p.name for p in run.iterdir()) == ["_superseded", "_trainstats", "split=dev", "split=train"]
    meta = json.loads((run / "_trainstats" / "run.json").read_text())
    assert meta["schema_version"] == 2 and meta["migrated_from"]["schema_version"] == 1
    assert meta["config"] == {"lr": 0.1, "noise_level": 0.25}  # every key of run.json carried over
    seen = assert_every_reader_sees_the_run(run)
    assert len(seen) == len(kept) and _rows(trainstats.read(run)) == kept
    after = analyze_run(run).scores.sort_values("sample_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert len(list((run / "_superseded").rglob("*.superseded"))) == 4
    assert len(list((run / "_trainstats" / "v1-samples").glob("*.parquet.v1"))) == 2
    assert main(["migrate", str(run)]) == 0 and "already schema_version 2" in capsys.readouterr().out
    with RunWriter(run, COLS, resume=True) as w:  # the upgraded run is resumed like any other
        keys = w.register_samples(IDS)
        w.write(split="train", epoch=2, step=5, batch=1, sample_key=keys[:3], values={"loss": np.full(3, 99.0)})
    seen = assert_every_reader_sees_the_run(run)
    assert set(seen[(seen.epoch == 2) & (seen.split == "train")].attempt) == {2, 3}


@pytest.mark.slow
def test_migrate_killed_at_every_publication_point_is_finished_by_running_it_again(tmp_path):
    counted = tmp_path / "count" / "old"
    kept = write_v1_run(counted)
    killer = Killer()
    try:
        points = killer.points(counted, "migrate")
        assert len(points) > 10 and points[-1].split("\t")[1] == "migrate switch"
        reference = trainstats.read(counted)
        for n, point in enumerate(points, start=1):  # after the last, only emptied folders are left to remove
            run = tmp_path / f"kill-{n}" / "old"
            write_v1_run(run)
            assert killer.run(run, "migrate", kill_at=n) == "killed"
            try:
                assert _rows(trainstats.read(run)) == kept  # readable, and the same rows, at every point
                migrate(run)
                assert sorted(p.name for p in run.iterdir()) == ["_superseded", "_trainstats", "split=dev", "split=train"]
                assert_every_reader_sees_the_run(run)
                pd.testing.assert_frame_equal(trainstats.read(run), reference)
            except (AssertionError, ValueError) as e:
                raise AssertionError(f"after a kill at migration point {n} ({point}): {e}") from e
    finally:
        killer.close()


def test_migrate_finishes_a_supersession_a_killed_writer_left_halfway(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        keys = w.register_samples(IDS)
        for e in range(3):
            w.write(split="train", epoch=e, step=e, batch=0, sample_key=keys, values={"loss": np.full(6, e)})
            w.flush()
    with RunWriter(run, COLS, resume=True) as w:
        w.write(split="train", epoch=1, step=1, batch=0, sample_key=w.register_samples(IDS),
                values={"loss": np.full(6, 7.0)})
    # put the superseded epoch-2 part back, as if the resumed writer died before moving it
    archived = next((run / "_superseded" / "split=train" / "epoch=2").glob("*.superseded"))
    restored = run / archived.relative_to(run / "_superseded").with_suffix("")
    restored.parent.mkdir()
    archived.rename(restored)
    assert Run(run).pending and len(pd.read_parquet(run)) == len(trainstats.read(run)) + 6
    assert migrate(run)["superseded_parts"] == 1
    assert not Run(run).pending
    assert_every_reader_sees_the_run(run)
