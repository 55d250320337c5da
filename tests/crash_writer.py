"""A writing process to kill, for the crash-safety tests (``test_store_crash.py``, ``test_store_migrate.py``).

``python crash_writer.py serve`` imports the store once and then, for each JSON request on stdin,
forks a child that runs one scenario and answers with one JSON line: ``{"status": <wait status>}``.
A request names the run directory, the scenario, a ``pause`` after each training batch, and how the
child dies: ``kill_at`` (SIGKILL right
after the store's N-th publication point, see ``trainstats.store.durable``), ``kill_after_s`` (SIGKILL
from outside after that many seconds) or neither; ``log`` lists the publication points.
Forking from a warm process keeps a kill-and-check round to a few tens of milliseconds.

Scenarios (each row's ``loss`` says who wrote it: ``epoch`` for ``first``, ``100 + epoch`` for ``resume``):

- ``first``: a new run, epochs 0-2, each 3 train batches of 8 samples and a dev pass, flushed per epoch;
- ``resume``: resumes from a checkpoint in the middle of epoch 1 (step 4) and trains on to epoch 3;
- ``migrate``: ``trainstats.store.migrate`` on the directory.

After every flush the child appends ``flushed <scenario> <epoch>`` to ``marks`` (a row flushed before the
kill must survive it).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np

from trainstats.store import RunWriter, ValueColumn, durable, migrate

COLUMNS = [ValueColumn("loss", "float32", head="output", stat="loss")]
IDS = [f"train.txt-00001-of-00004:{i + 1}" for i in range(24)]
BATCH = 8
RESUME_AT = {"split": "train", "epoch": 1, "step": 4}


def _mark(marks: str, text: str) -> None:
    fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def _epoch(w, keys, epoch: int, first_batch: int, value: float, pause: float) -> None:
    for b in range(first_batch, 3):
        w.write(split="train", epoch=epoch, step=3 * epoch + b, batch=b, sample_key=keys[b * BATCH:(b + 1) * BATCH],
                values={"loss": np.full(BATCH, value, np.float32)})
        time.sleep(pause)  # a training step: parts stay open (row groups written, no footer) meanwhile
    w.write(split="dev", epoch=epoch, step=3 * epoch + 3, batch=0, sample_key=keys[:6],
            values={"loss": np.full(6, -value, np.float32)})


def run_scenario(run: str, scenario: str, marks: str, pause: float = 0.0) -> None:
    if scenario == "migrate":
        migrate(run)
        return
    resume = scenario == "resume"
    w = RunWriter(run, COLUMNS, resume=resume, row_group_rows=16)
    keys = w.register_samples(IDS)
    for epoch in (range(1, 4) if resume else range(3)):
        first_batch = 1 if resume and epoch == 1 else 0
        _epoch(w, keys, epoch, first_batch, (100.0 if resume else 0.0) + epoch, pause)
        w.flush()
        _mark(marks, f"flushed {scenario} {epoch}")
    w.close()


def expected_rows(scenario: str, epochs) -> set[tuple]:
    """``(split, epoch, step, sample_id, loss)`` of the rows a scenario writes in these epochs."""
    out = set()
    base = 100.0 if scenario == "resume" else 0.0
    for epoch in epochs:
        first_batch = 1 if scenario == "resume" and epoch == 1 else 0
        for b in range(first_batch, 3):
            out |= {("train", epoch, 3 * epoch + b, IDS[b * BATCH + i], base + epoch) for i in range(BATCH)}
        out |= {("dev", epoch, 3 * epoch + 3, IDS[i], -(base + epoch)) for i in range(6)}
    return out


def before_resume(rows: set[tuple]) -> set[tuple]:
    """The rows of ``first`` that a ``resume`` keeps (positions before its start)."""
    e0, s0 = RESUME_AT["epoch"], RESUME_AT["step"]
    return {r for r in rows if r[1] < e0 or (r[1] == e0 and r[0] == "train" and r[2] < s0)}


def serve() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: dies by the hook, by the parent's signal, or exits
            try:
                durable._kill_at = int(req.get("kill_at") or 0)
                durable._log = req.get("log")
                run_scenario(req["run"], req["scenario"], req["marks"], float(req.get("pause") or 0.0))
                code = 0
            except BaseException as e:  # noqa: BLE001 - report, never return into the server loop
                sys.stderr.write(f"crash_writer child: {type(e).__name__}: {e}\n")
                code = 3
            os._exit(code)
        if req.get("kill_after_s") is not None:
            time.sleep(float(req["kill_after_s"]))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"status": status}) + "\n")
        sys.stdout.flush()


class Killer:
    """Client of ``crash_writer.py serve`` (for the tests): runs scenarios in forked children."""

    def __init__(self) -> None:
        import subprocess
        from pathlib import Path

        here = Path(__file__).resolve().parent
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join([str(here.parent), str(here), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen([sys.executable, str(here / "crash_writer.py"), "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def run(self, run, scenario: str, *, kill_at: int = 0, kill_after_s: float | None = None, log=None,
            pause: float = 0.0) -> str:
        """``"killed"`` or ``"exited"``; any other end raises ``AssertionError``."""
        req = {"run": str(run), "scenario": scenario, "marks": str(run.parent / "marks"), "kill_at": kill_at,
               "kill_after_s": kill_after_s, "log": None if log is None else str(log), "pause": pause}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        status = json.loads(self.proc.stdout.readline())["status"]
        if status & 0x7F == signal.SIGKILL:
            return "killed"
        if status != 0:
            raise AssertionError(f"{scenario} in {run} ended with wait status {status} (see stderr)")
        return "exited"

    def points(self, run, scenario: str) -> list[str]:
        """The publication points of a scenario run to its end (one ``n\twhat\tpath`` line each)."""
        log = run.parent / f"points-{scenario}"
        if self.run(run, scenario, log=log) != "exited":
            raise AssertionError(f"{scenario} was killed while counting its publication points")
        return log.read_text().splitlines()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("usage: crash_writer.py serve")
    serve()
