"""The demo's pipeline: data -> noise per kind and level -> one captured training run each -> analysis -> report."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .plan import DemoState, PlannedRun, fingerprint, plan_runs, run_name
from .runner import TrainJob, run_jobs
from .settings import DEFAULT, DEFAULT_LEVELS, STUDY_KINDS, DemoSettings, defaults_fingerprint
from .summary import format_summary, summarize

__all__ = ["DemoResult", "run_demo", "run_name"]

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: paths, the summary table and stage timings (seconds)."""

    out_dir: Path
    report: Path
    run_dirs: list[Path]
    summary: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def _check(levels: Sequence[float], seeds: Sequence[int], kinds: Sequence[str], data: Path | None,
           sources: list[Path] | None) -> None:
    if not levels:
        raise ValueError("levels is empty; expected at least one noise level, e.g. [0.0, 0.5]")
    bad = [lv for lv in levels if not isinstance(lv, (int, float)) or not 0.0 <= lv <= 1.0]
    if bad:
        raise ValueError(f"noise levels must be fractions in [0, 1]; received {bad}")
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints; received {list(seeds)}")
    from trainstats.noise import available_kinds

    if not kinds:
        raise ValueError(f"kinds is empty; expected some of {sorted(available_kinds())}")
    unknown = [k for k in kinds if k not in available_kinds()]
    if unknown:
        raise ValueError(f"unknown noise kind(s) {unknown}; expected some of {sorted(available_kinds())}")
    if data is not None and sources is not None:
        raise ValueError("give data (existing shards) or source (a tree to build from), not both")
    if data is not None:
        from trainstats.varmisuse import list_shards

        if not data.is_dir():
            raise ValueError(f"--data {data}: not a directory (expected a folder with train/ and dev/ GREAT shards)")
        for split in ("train", "dev"):
            if not list_shards(data, split=split):
                raise ValueError(f"--data {data}: no {split!r} shards found (expected "
                                 f"{split}__VARIABLE_MISUSE__SStuB.txt-NNNNN-of-NNNNN files, e.g. in {data / split})")
    for source in sources or []:
        if not source.exists():
            raise ValueError(f"--source {source}: no such file or directory")


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def _build(out: Path, sources: list[Path] | None, settings: DemoSettings, state: DemoState, say,
           progress: bool) -> Path:
    """The clean data under ``out/data/clean``, built once per build fingerprint."""
    from trainstats.varmisuse.builder import build_varmisuse

    data_path = out / "data" / "clean"
    key = fingerprint("build", None if sources is None else [str(s.resolve()) for s in sources],
                      settings.max_functions,
                      list(settings.split_fractions), settings.max_tokens, 0)
    if state.get("data") == key and (data_path / "build_summary.json").is_file():
        say(f"data: reusing {data_path}")
        return data_path
    state.set("data", None)
    where = "the standard library" if sources is None else ", ".join(map(str, sources))
    say(f"building VarMisuse data from {where} -> {data_path}")
    summary = build_varmisuse(sources, data_path, seed=0, max_functions=settings.max_functions,
                              split_fractions=settings.split_fractions, max_tokens=settings.max_tokens,
                              overwrite=True, progress=progress)
    if summary.examples.get("train", 0) == 0 or summary.examples.get("dev", 0) == 0:
        raise ValueError(f"{where}: no usable function of at most {settings.max_tokens} tokens in the "
                         f"{'train' if summary.examples.get('train', 0) == 0 else 'dev'} split "
                         f"({summary.n_files} .py files, {summary.n_functions} functions, "
                         f"{summary.n_functions_used} usable; skipped: {summary.skipped_functions or 'none'}); "
                         f"expected a tree of Python files with functions that use at least two variables")
    state.set("data", key)
    return data_path


def run_demo(
    out_dir: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    kinds: Sequence[str] | str = STUDY_KINDS,
    seeds: Sequence[int] = (0,),
    settings: DemoSettings = DEFAULT,
    progress: bool = True,
    paper: str | os.PathLike | None = None,
    callbacks: Callable[[PlannedRun, Path], list] | None = None,
    monitor: dict[str, Any] | None = None,
    jobs: int = 1,
) -> DemoResult:
    """Run the memorization study in miniature and write everything under ``out_dir``.

    Runs: per seed one clean run (level 0, shared by all kinds) and one run per kind and non-zero
    level (:func:`trainstats.demo.plan.plan_runs`). Layout: ``data/clean`` (built from ``source``, one
    tree or a list of trees,
    the running Python's standard library by default, unless ``data`` names existing GREAT shards with
    ``train`` and ``dev`` splits), ``data/<run name>`` (the noised training split and its
    ``noise_manifest.parquet``), ``runs/<run name>`` (run directories), ``checkpoints/<run name>``
    (while a run trains), ``report/index.html`` (``trainstats analyze``'s report), ``summary.json`` /
    ``summary.txt``, ``demo.json`` (settings and timings) and ``demo_state.json``.

    Re-running into the same folder skips the runs that finished with the same settings and data,
    resumes a killed run from its last finished epoch, and redoes the analysis. The noise inducer
    noises only the ``train`` split, with the run's seed. Each run's ``run.json`` config holds
    ``noise_level`` (fraction), ``noise_kind`` (None for the clean run) and ``seed``. ``paper``: the
    study's per-epoch CSV, drawn in the report beside the demo's curves (checked before any
    training). ``callbacks(run, run_dir)``: extra Keras callbacks for a run's ``fit``.
    ``jobs``: runs trained at once, each in its own worker process with ``cores // jobs`` threads
    (the CLI's default is :func:`trainstats.demo.runner.default_jobs`; a script calling with
    ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard of multiprocessing; ``callbacks``
    force one run at a time in this process). ``monitor``: :class:`trainstats.keras.MemorizationMonitor` options for every run (TensorBoard and
    onset files in ``runs/<run name>/_trainstats/monitor``); None: no monitor.
    """
    import shutil

    out = Path(out_dir)
    data_path = Path(data) if data is not None else None
    sources = (None if source is None else
               [Path(source)] if isinstance(source, (str, os.PathLike)) else [Path(s) for s in source])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    levels = sorted({float(lv) for lv in levels})
    seeds = [int(s) for s in seeds]
    _check(levels, seeds, kinds, data_path, sources)
    published = None
    if paper is not None:
        from trainstats.analysis.paper import load_published

        published = load_published(paper)  # ValueError naming the file and line, before hours of training
    out.mkdir(parents=True, exist_ok=True)
    state = DemoState(out)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if progress:
            print(f"[demo] {msg}", file=sys.stderr, flush=True)

    if data_path is None:
        data_path = _build(out, sources, settings, state, say, progress)
        timings["build"] = time.perf_counter() - t0

    from trainstats.noise import MANIFEST_NAME, induce_noise

    planned = plan_runs(kinds, levels, seeds)
    data_key = state.get("data") if data is None else fingerprint("data", str(data_path.resolve()))
    run_dirs = [out / "runs" / run.name for run in planned]
    todo: list[TrainJob] = []
    keys: dict[str, str] = {}
    for i, run in enumerate(planned, start=1):
        run_dir = out / "runs" / run.name
        backup = out / "checkpoints" / run.name
        key = keys[run.name] = fingerprint(settings.to_dict(), data_key, run.kind, run.level, run.seed)
        record = state.run(run.name)
        if record.get("fingerprint") == key and record.get("done") and run_dir.is_dir():
            say(f"[{i}/{len(planned)}] {run.name}: finished earlier, skipped")
            continue
        resuming = record.get("fingerprint") == key and run_dir.is_dir()
        if not resuming:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(backup, ignore_errors=True)
        state.set_run(run.name, fingerprint=key, done=False)
        train_dir, manifest = data_path, None
        if run.kind is not None:
            t = time.perf_counter()
            train_dir = out / "data" / run.name
            say(f"[{i}/{len(planned)}] noise: {run.kind} at {run.level:.0%} of the training split (seed {run.seed}) "
                f"-> {train_dir}")
            induce_noise(data_path, train_dir, kind=run.kind, level=run.level, seed=run.seed, split="train",
                         force=True, workers=1, progress=progress)
            manifest = train_dir / MANIFEST_NAME
            timings[f"noise:{run.name}"] = time.perf_counter() - t
        todo.append(TrainJob(
            name=run.name, train_dir=str(train_dir), dev_dir=str(data_path), run_dir=str(run_dir),
            backup_dir=str(backup), noise_manifest=None if manifest is None else str(manifest),
            settings=settings.to_dict(), seed=run.seed, monitor=monitor, progress=progress,
            config={"noise_level": run.level, "noise_kind": run.kind, "data": str(data_path),
                    "train_data": str(train_dir)}))
        if resuming:
            say(f"[{i}/{len(planned)}] {run.name}: resuming from its last finished epoch")

    started: dict[str, float] = {}

    def on_start(job: TrainJob) -> None:
        started[job.name] = time.perf_counter()
        say(f"training {settings.model} ({settings.epochs} epochs) -> {job.run_dir}")

    def on_done(job: TrainJob, result: dict) -> None:
        timings[f"train:{job.name}"] = time.perf_counter() - started[job.name]
        state.set_run(job.name, fingerprint=keys[job.name], done=True, seconds=round(result["seconds"], 1),
                      samples_per_s=result["samples_per_s"], n_train=result["n_train"], n_dev=result["n_dev"])
        shutil.rmtree(job.backup_dir, ignore_errors=True)

    by_name = {run.name: run for run in planned}
    t = time.perf_counter()
    run_jobs(todo, parallel=jobs, on_start=on_start, on_done=on_done,
             callbacks=(lambda job: callbacks(by_name[job.name], Path(job.run_dir))) if callbacks else None)
    timings["training"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"analysing {len(run_dirs)} run(s) -> {out / 'report'}")
    from trainstats.analysis import analyze_runs
    from trainstats.report import write_report

    analysis = analyze_runs(run_dirs, progress=progress)
    title = f"trainstats demo: memorization under {' and '.join(kinds)} noise"
    report = write_report(analysis, out / "report", title=title, paper=published)
    timings["analyze"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    table = summarize(analysis)
    result = DemoResult(out_dir=out, report=report, run_dirs=run_dirs, summary=table, timings=timings,
                        messages=list(analysis.messages))
    (out / "summary.json").write_text(json.dumps(table, indent=2))
    (out / "summary.txt").write_text(format_summary(table) + "\n")
    (out / "demo.json").write_text(json.dumps({
        "settings": settings.to_dict(), "levels": levels, "kinds": kinds, "seeds": seeds,
        "data": str(data_path), "report": str(report), "runs": [str(d) for d in run_dirs],
        "train_samples_per_s": {name: rec.get("samples_per_s") for name, rec in state.data["runs"].items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()}, "peak_rss_mb": _peak_rss_mb(),
        "defaults_fingerprint": defaults_fingerprint(settings, levels, kinds)}, indent=2))
    return result
