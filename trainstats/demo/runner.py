"""Train the demo's runs: in this process, or several at once in worker processes (one per core group).

On a 2-core CPU one run keeps about 1.3 cores busy; two runs side by side in worker processes, each
with ``cores // jobs`` TensorFlow threads, raised the study's training rate only about 1.1x (measured
on the default demo, docs/demo.md) for twice the memory (each worker holds its own TensorFlow and
data, ~1.6 GB), so the CLI's default is one run at a time in one worker process (``jobs=1``); ``--jobs 2`` pays off
on machines with more cores and memory. Each worker trains one run and exits, so its memory goes back
before the next run starts (in one process, three runs in a row grew to 2.1 GB and the later ones
trained slower); ``jobs=0`` trains in this process (``--quick``, and ``callbacks`` that cannot be
pickled). Runs are independent (the clean run is one of them), and each
resumes from its own checkpoint folder after a kill.
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
    """Runs trained at once by default: one per 4 cores (at least 1): on 2 cores one run at a time."""
    return max(1, (os.cpu_count() or 1) // 4)


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
    """Train ``jobs``: one after another in this process when ``parallel == 0`` (or ``callbacks`` are
    given, which need not be picklable), else ``parallel`` at a time in worker processes (one fresh
    process per run, so that each run's memory goes back when it ends), each with
    ``cores // parallel`` TensorFlow threads (the runs of a last, partial wave: ``cores // its size``,
    e.g. the third of three runs on two cores gets both). ``on_done(job, result)`` runs in this process as each
    finishes; the first failure cancels the runs not yet started and is raised."""
    if parallel <= 0 or callbacks is not None or not jobs:
        for job in jobs:
            on_start(job)
            on_done(job, _train(job, callbacks=callbacks(job) if callbacks else None))
        return
    import multiprocessing

    cores = os.cpu_count() or 1
    # the runs of the last, partial wave (3 runs on 2 workers: the third) run with fewer beside them
    last_wave = len(jobs) % parallel or parallel
    threads_of = lambda i: max(1, cores // (last_wave if i >= len(jobs) - last_wave else parallel))  # noqa: E731
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold TensorFlow threads
    with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx, max_tasks_per_child=1) as pool:
        queue = list(jobs)
        pending: dict = {}  # future -> (job, progress-bar slot)
        while queue or pending:
            while queue and len(pending) < parallel:
                index, job = len(jobs) - len(queue), queue.pop(0)
                slot = min(set(range(parallel)) - {s for _, s in pending.values()})
                on_start(job)
                pending[pool.submit(_train_in_worker, job, threads_of(index), slot)] = (job, slot)
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
