"""``analyze_runs(jobs=N)`` / ``trainstats analyze --jobs N``: runs analysed in worker processes give the
same tables, byte for byte, as one process."""
from __future__ import annotations

import numpy as np
import pytest

from trainstats.analysis import analyze_runs
from trainstats.analysis import study
from trainstats.cli import main
from trainstats.store import RunWriter, ValueColumn

COLS = [ValueColumn("loss", "float32", head="out", stat="loss"), ValueColumn("p", "float32", head="out", stat="gold_prob"),
        ValueColumn("ok", "bool", head="out", stat="correct"), ValueColumn("m", "float32", head="out", stat="margin")]


def _run(path, seed: int, *, noise_level: float) -> None:
    rng = np.random.default_rng(seed)
    ids = [f"j.txt:{i + 1}" for i in range(400)]
    noisy = rng.random(400) < noise_level
    with RunWriter(path, COLS, config={"noise_level": noise_level, "noise_kind": "label", "seed": seed}) as w:
        keys = w.register_samples(ids)
        for epoch in range(4):
            for split, n in (("train", 400), ("dev", 100)):
                idx = rng.permutation(400)[:n] if split == "train" else np.arange(n)
                p = np.where(noisy[idx], 0.2, 0.8) + rng.normal(0, 0.1, n)
                p = np.clip(p, 0.01, 0.99).astype(np.float32)
                w.write(split=split, epoch=epoch, step=epoch * 4 + np.arange(n) // 100, batch=np.arange(n) // 100,
                        sample_key=keys[idx], values={"loss": -np.log(p), "p": p, "ok": p > 0.5, "m": p - 0.5},
                        noise=noisy[idx], noise_kind=np.where(noisy[idx], "label", None).tolist())
            w.flush()


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    dirs = [root / f"noise{10 * (i + 1)}-seed{i}" for i in range(3)]
    for i, d in enumerate(dirs):
        _run(d, i, noise_level=0.1 * (i + 1))
    return dirs


def test_worker_processes_give_the_same_tables(three_runs, monkeypatch):
    one = analyze_runs(three_runs, jobs=1)
    monkeypatch.setattr(study, "PARALLEL_MIN_BYTES", 0)  # small runs: processes all the same
    calls = []
    real = study.ProcessPoolExecutor
    monkeypatch.setattr(study, "ProcessPoolExecutor", lambda **kw: calls.append(kw) or real(**kw))
    many = analyze_runs(three_runs, jobs=3)
    assert calls and calls[0]["max_workers"] == 3
    for name in ("runs", "scores", "metrics", "detection", "curves", "loss_samples"):
        a, b = getattr(one, name), getattr(many, name)
        assert a.equals(b), name
    assert one.messages == many.messages and one.heads == many.heads
    assert list(one.runs.run) == [d.name for d in three_runs]  # the order given


def test_cli_jobs_writes_identical_files(three_runs, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "PARALLEL_MIN_BYTES", 0)
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main(["analyze", *map(str, three_runs), "--out", str(out), "--jobs", jobs, "--no-plots", "--quiet"]) == 0
        outs.append(out)
    for name in ("scores.parquet", "metrics.csv", "detection.csv", "runs.csv", "messages.txt"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_jobs_must_be_positive(three_runs, tmp_path, capsys):
    with pytest.raises(ValueError, match="jobs must be a positive int; received 0"):
        analyze_runs(three_runs, jobs=0)
    assert main(["analyze", str(three_runs[0]), "--out", str(tmp_path / "o"), "--jobs", "0"]) == 2
    assert "--jobs must be a positive number of processes; received 0" in capsys.readouterr().err
