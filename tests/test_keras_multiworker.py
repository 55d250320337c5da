"""PerSampleStats under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 (TF_CONFIG) write
one run directory; one worker is killed in epoch 2, the job is restarted and resumes with
BackupAndRestore. Together the workers leave exactly one row per sample and epoch, with the right ids
(learning rate 0: each row's gold_prob is the initial model's probability for its sample id)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

import trainstats  # noqa: E402
from trainstats.store import Run  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]

WORKER = Path(__file__).with_name("multiworker_fit.py")
N, N_DEV, EPOCHS, STEPS = 48, 12, 4, 6
LAUNCH_TIMEOUT_S = 150


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    except OSError as exc:
        pytest.skip(f"cannot bind TCP ports on 127.0.0.1 for the two workers' gRPC servers: {exc}")
    finally:
        for s in socks:
            s.close()


def _launch(run: Path, backup: Path, *, kill_at: str | None, out: Path) -> list[subprocess.Popen]:
    ports = ",".join(map(str, _free_ports(2)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")]))
    procs = []
    for index in (0, 1):
        cmd = [sys.executable, str(WORKER), str(run), str(backup), str(index), ports]
        if index == 0:
            cmd += ["--out", str(out)]
        if index == 1 and kill_at:
            cmd += ["--kill-at", kill_at]
        log = open(out.with_name(f"worker{index}{'-killed' if kill_at else ''}.log"), "w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait(proc: subprocess.Popen, deadline: float) -> int:
    try:
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -999


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp.glob("worker*.log")))


def test_two_workers_write_one_run_and_a_killed_worker_resumes_without_duplicates(tmp_path):
    run, backup, out = tmp_path / "run", tmp_path / "backup", tmp_path / "gold_prob.json"

    # launch 1: worker 1 kills itself as batch 2 of epoch 2 begins; the cluster manager then restarts the
    # whole job (TensorFlow's fault tolerance): worker 0, stuck in the next collective, is killed too
    w0, w1 = _launch(run, backup, kill_at="2:2", out=out)
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    rc1 = _wait(w1, deadline)
    w0.send_signal(signal.SIGKILL)
    w0.wait()
    assert rc1 == -signal.SIGKILL, f"worker 1 should have killed itself (rc {rc1})\n{_logs(tmp_path)}"
    crashed = trainstats.read(run, split="train")
    # the flushed epochs are complete, one row per sample each; epoch 2's rows were still buffered
    assert crashed.groupby("epoch").sample_id.nunique().to_dict() == {0: N, 1: N}, _logs(tmp_path)
    assert not crashed.duplicated(["epoch", "sample_id"]).any()
    meta = Run(run).metadata
    assert [w["writer"] for w in meta["writers"]] == ["worker0", "worker1"]
    assert {w["attempt"] for w in meta["writers"]} == {1}
    assert not any(w["closed"] for w in meta["writers"])  # both processes died

    # launch 2: the restarted job resumes from the last backup (the end of epoch 1) as attempt 2
    w0, w1 = _launch(run, backup, kill_at=None, out=out)
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    rcs = [_wait(w1, deadline), _wait(w0, deadline)]
    assert rcs == [0, 0], f"resumed workers failed: {rcs}\n{_logs(tmp_path)}"

    df = trainstats.read(run, split="train")
    dev = trainstats.read(run, split="dev")
    ids = {f"mw.txt:{i + 1}" for i in range(N)}
    per_epoch = df.groupby("epoch").sample_id
    assert per_epoch.size().to_dict() == {e: N for e in range(EPOCHS)}  # no duplicate ...
    assert all(set(g) == ids for _, g in per_epoch)                     # ... and no lost row
    assert dev.groupby("epoch").sample_id.nunique().to_dict() == {e: N_DEV for e in range(EPOCHS)}
    assert len(dev) == EPOCHS * N_DEV
    for e, g in df.groupby("epoch"):  # global steps: 8 rows (4 per worker) at each of the epoch's 6 steps
        assert g.groupby("step").size().to_dict() == {s: 8 for s in range(e * STEPS, (e + 1) * STEPS)}
    assert df.groupby("epoch").attempt.unique().map(list).to_dict() == {0: [1], 1: [1], 2: [2], 3: [2]}
    # every epoch has rows from both workers' writers
    writers_per_epoch = {}
    for path in Run(run).files():
        epoch = int(path.parent.name.split("=")[1])
        writers_per_epoch.setdefault((path.parent.parent.name, epoch), set()).add(path.name.split("-w")[1].split("-")[0])
    assert all(w == {"worker0", "worker1"} for w in writers_per_epoch.values()), writers_per_epoch
    meta = Run(run).metadata
    assert sorted((w["attempt"], w["writer"]) for w in meta["writers"]) == [
        (1, "worker0"), (1, "worker1"), (2, "worker0"), (2, "worker1")]
    assert [a["start"]["epoch"] for a in meta["attempts"]] == [0, 2]
    # the right ids: with learning rate 0, gold_prob is the initial model's, looked up by sample id
    gold = json.loads(out.read_text())["gold_prob"]
    for frame in (df, dev):
        expected = np.array([gold[s] for s in frame.sample_id])
        np.testing.assert_allclose(frame.gold_prob.to_numpy(float), expected, atol=1e-6)
