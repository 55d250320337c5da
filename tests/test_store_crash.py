"""Crash safety as a property: a writing process is SIGKILLed at every publication point of the store
(each rename, link, unlink and metadata write) and at random moments; after each kill the directory
is checked, the run resumed, and checked again.

After a kill: every final-named file opens, every visible row has its ``sample_id``, no row appears
twice (in any reader), and every row flushed before the kill is there. After the resume: the run
holds exactly the rows the newest-attempt rule keeps, and every reader sees exactly those.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import trainstats
from crash_writer import Killer, before_resume, expected_rows
from store_views import assert_every_reader_sees_the_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def killer():
    k = Killer()
    yield k
    k.close()


def _flushed(run: Path) -> dict[str, list[int]]:
    marks = run.parent / "marks"
    out: dict[str, list[int]] = {"first": [], "resume": []}
    for line in marks.read_text().splitlines() if marks.exists() else []:
        _, scenario, epoch = line.split()
        out[scenario].append(int(epoch))
    return out


def _rows(frame) -> set[tuple]:
    return set(zip(frame["split"].astype(str), frame["epoch"].astype(int), frame["step"].astype(int),
                   frame["sample_id"].astype(str), frame["loss"].astype(float)))


def check_after_kill(run: Path, phase: str) -> set[tuple]:
    """The invariants that hold whatever the moment of the kill; returns the rows trainstats reads."""
    if not trainstats.store.Run.exists(run) or not list(run.glob("split=*/epoch=*/*.parquet")):
        assert not list(run.glob("split=*/epoch=*/*.parquet")), "row parts without run metadata"
        assert not _flushed(run)["first"], "a row flushed before the kill is lost"
        return set()
    for f in run.glob("split=*/epoch=*/*.parquet"):
        pq.read_table(f)  # every final-named part opens
    for f in (run / "_superseded").rglob("*.superseded"):
        pq.read_table(f)
    for f in (run / "_trainstats").rglob("*.json"):
        if not f.name.startswith(".tmp-"):
            json.loads(f.read_text())  # metadata always parses
    plain = ds.dataset(run, partitioning="hive").to_table().to_pandas()
    assert plain["sample_id"].notna().all(), "a visible row lacks its sample_id"
    key = ["split", "epoch", "step", "sample_id"]
    assert not plain.duplicated(key).any(), "a plain reader sees a row twice"
    df = trainstats.read(run)
    assert not df.duplicated(key).any()
    got = _rows(df)
    assert got <= _rows(plain), "trainstats reads a row that is not in the dataset"
    flushed = _flushed(run)
    if phase == "first":
        assert expected_rows("first", flushed["first"]) <= got, "a row flushed before the kill is lost"
        assert got <= expected_rows("first", range(3))
    else:
        assert before_resume(expected_rows("first", range(3))) <= got, "a row of the earlier attempt is lost"
        assert expected_rows("resume", flushed["resume"]) <= got, "a row flushed before the kill is lost"
        assert got <= expected_rows("first", range(3)) | expected_rows("resume", range(1, 4))
    return got


def recover_and_check(killer: Killer, run: Path, phase: str) -> None:
    """Resume (again) from the checkpoint: the run then holds exactly what the rule keeps."""
    first_before = before_resume(expected_rows("first", range(3)))
    if phase == "first":  # rows of the first attempt that made it to disk before the kill
        first_before = before_resume(check_after_kill(run, "first"))
    assert killer.run(run, "resume") == "exited"
    seen = assert_every_reader_sees_the_run(run)
    assert _rows(seen) == first_before | expected_rows("resume", range(1, 4))


def _fresh(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    return d / "run"


def test_kill_at_every_publication_point_then_resume(tmp_path, killer):
    points = {"first": killer.points(_fresh(tmp_path, "count"), "first")}
    points["resume"] = killer.points(tmp_path / "count" / "run", "resume")
    kinds = {line.split("\t")[1] for p in points.values() for line in p}
    assert {"run.json", "attempt", "writer status", "publish part", "supersede part", "supersede original",
            "supersede trimmed part"} <= kinds
    for phase in ("first", "resume"):
        for n, point in enumerate(points[phase], start=1):
            run = _fresh(tmp_path, f"{phase}-{n}")
            if phase == "resume":
                assert killer.run(run, "first") == "exited"
            assert killer.run(run, phase, kill_at=n) == "killed", f"no kill at {phase} point {n}: {point}"
            try:
                check_after_kill(run, phase)
                recover_and_check(killer, run, phase)
            except AssertionError as e:
                raise AssertionError(f"after a kill at {phase} publication point {n} ({point}): {e}") from e


def test_kill_at_random_moments_then_resume(tmp_path, killer):
    rng = random.Random(14)
    for i in range(16):  # a training step takes 10 ms: most moments fall while parts are open
        phase = rng.choice(["first", "resume"])
        run = _fresh(tmp_path, f"random-{i}")
        if phase == "resume":
            assert killer.run(run, "first") == "exited"
        outcome = killer.run(run, phase, kill_after_s=rng.uniform(0.0, 0.3), pause=0.01)
        try:
            if outcome == "killed":
                check_after_kill(run, phase)
            recover_and_check(killer, run, phase)
        except AssertionError as e:
            raise AssertionError(f"after a random kill ({phase}, round {i}): {e}") from e
