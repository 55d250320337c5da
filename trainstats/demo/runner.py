"""Train the demo's runs: in this process, or several at once in worker processes (one per core group).

On a CPU the small model's step keeps one to one and a half cores busy; two runs trained side by side,
each with its own TensorFlow thread pools of ``cores // jobs`` threads, keep every core busy and cut
the study's wall time nearly in half (docs/demo.md). Each worker process trains one run and exits, so
its memory goes back before the next run starts. Runs are independent (the clean run is one of them),
and each resumes from its own checkpoint folder after a kill.
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

from .settings import DemoSettings

__all__ = ["TrainJob", "default_jobs", "run_jobs"]


@dataclass(frozen=True)
class TrainJob:
    """Everything one run's training needs (picklable: it crosses into a worker process)."""

    name: str
    train_dir: str
    dev_dir: str
    run_dir: str
    backup_dir: str
    noise_manifest: str | None
    settings: dict
    seed: int
    config: dict
    monitor: dict | None
    progress: bool


def default_jobs() -> int:
    """Runs trained at once by default: 2 where there are at least 2 cores, else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _train(job: TrainJob, *, position: int = 0, callbacks: list | None = None) -> dict[str, Any]:
    from .train import train_run

    return train_run(job.train_dir, job.dev_dir, job.run_dir, settings=DemoSettings(**job.settings), seed=job.seed,
                     config=job.config, noise_manifest=job.noise_manifest, backup_dir=job.backup_dir,
                     callbacks=callbacks, progress=job.progress, desc=job.name, monitor=job.monitor,
                     position=position)


def _train_in_worker(job: TrainJob, threads: int, position: int) -> dict[str, Any]:
    # before TensorFlow is imported in this fresh process: its thread pools take these sizes
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    return _train(job, position=position)


def run_jobs(jobs: list[TrainJob], *, parallel: int, on_start: Callable[[TrainJob], None],
             on_done: Callable[[TrainJob, dict], None],
             callbacks: Callable[[TrainJob], list] | None = None) -> None:
    """Train ``jobs``: one after another in this process when ``parallel <= 1`` (or ``callbacks`` are
    given, which need not be picklable), else ``parallel`` at a time in worker processes, each with
    ``cores // parallel`` TensorFlow threads. ``on_done(job, result)`` runs in this process as each
    finishes; the first failure cancels the runs not yet started and is raised."""
    if parallel <= 1 or callbacks is not None or len(jobs) <= 1:
        for job in jobs:
            on_start(job)
            on_done(job, _train(job, callbacks=callbacks(job) if callbacks else None))
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // parallel)
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold TensorFlow threads
    with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx, max_tasks_per_child=1) as pool:
        queue = list(jobs)
        pending: dict = {}  # future -> (job, progress-bar slot)
        while queue or pending:
            while queue and len(pending) < parallel:
                job = queue.pop(0)
                slot = min(set(range(parallel)) - {s for _, s in pending.values()})
                on_start(job)
                pending[pool.submit(_train_in_worker, job, threads, slot)] = (job, slot)
            done, _ = wait(list(pending), return_when=FIRST_EXCEPTION)
            for future in done:
                job, _ = pending.pop(future)
                try:
                    result = future.result()
                except BaseException:
                    for other in pending:
                        other.cancel()
                    raise
                on_done(job, result)
