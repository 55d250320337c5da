"""The demo's runs trained in worker processes (``--jobs 2``), and its memory figure counting them."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainstats.demo.memory import TreeMemory, process_peak_rss_mb, tree_rss_mb

needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


@needs_proc
def test_tree_memory_counts_a_child_process():
    """A child holding 300 MB raises the sampled tree total by about that much; this process's own
    peak does not see it."""
    before = tree_rss_mb()
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(300 * 2**20); "
                              "b[::4096] = b'x' * len(b[::4096]); print('ok', flush=True); time.sleep(3)"],
                             stdout=subprocess.PIPE, text=True)
    with TreeMemory(interval_s=0.1) as mem:
        assert child.stdout.readline().strip() == "ok"
        time.sleep(0.5)
        child.wait(timeout=30)
    assert mem.peak_mb >= before + 250, (before, mem.peak_mb)
    assert process_peak_rss_mb() < before + 250


@pytest.mark.tf
@pytest.mark.slow
@needs_proc
def test_demo_trains_runs_in_two_worker_processes(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("matplotlib")
    from trainstats.cli import main
    from trainstats.store import Run

    out = tmp_path / "out"
    assert main(["demo", "--quick", "--quiet", "--kind", "label", "--jobs", "2", "--out", str(out)]) == 0
    state = json.loads((out / "demo_state.json").read_text())
    assert sorted(state["runs"]) == ["clean-seed0", "label-noise050-seed0"]
    demo = json.loads((out / "demo.json").read_text())
    for name, rec in state["runs"].items():
        assert rec["done"], name
        rows = Run(out / "runs" / name).scan("train", columns=["sample_id", "epoch"]).to_pandas()
        # every training sample once per epoch, written by the worker process
        assert len(rows) == rec["n_train"] * demo["settings"]["epochs"]
        assert rows.groupby("epoch")["sample_id"].nunique().eq(rec["n_train"]).all()
    # the study's memory counts the two workers, which this process's own peak cannot see
    assert demo["peak_rss_mb"] > demo["peak_rss_mb_this_process"]
