"""Several runs side by side (noise levels, seeds): the tables ``trainstats analyze`` writes."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from trainstats.analysis.detection import DIRECTIONS, evaluate_detectors
from trainstats.analysis.metrics import always_no_bug, generalization_gap
from trainstats.analysis.runs import RunAnalysis, analyze_run
from trainstats.store import Run

__all__ = ["Analysis", "analyze_runs", "default_jobs", "head_scores", "margin_unit_warnings", "runs_by_kind"]

log = logging.getLogger(__name__)

_RUN_COLS = ["run", "noise_level", "noise_kind", "seed"]


@dataclass
class Analysis:
    """The tables of a study (every frame has a ``run`` column; see docs/analysis.md)."""

    runs: pd.DataFrame
    scores: pd.DataFrame
    metrics: pd.DataFrame
    detection: pd.DataFrame
    loss_samples: pd.DataFrame
    curves: pd.DataFrame
    messages: list[str] = field(default_factory=list)
    heads: dict[str, list[str]] = field(default_factory=dict)
    #: problems with comparing the runs (e.g. margins in different units); also logged as warnings
    warnings: list[str] = field(default_factory=list)


def head_scores(scores: pd.DataFrame, head: str) -> pd.DataFrame:
    """One head's scores from the wide per-sample table, with plain score names (``csl``, ``aum`` …)."""
    prefix = f"{head}_"
    cols = {c: c[len(prefix):] for c in scores.columns
            if c.startswith(prefix) and c[len(prefix):] in DIRECTIONS}
    keep = [c for c in ("noise", "noise_kind") if c in scores.columns]
    return scores[keep + list(cols)].rename(columns=cols)


def _format_units(units: dict[str, str | None]) -> str:
    return ", ".join(f"{head}={unit or 'unknown'}" for head, unit in units.items())


def margin_unit_warnings(margin_units: dict[str, dict[str, str | None]]) -> list[str]:
    """A warning when the compared runs' margins (hence AUM) come in different units.

    Args:
        margin_units: run name -> head -> unit (``RunAnalysis.margin_units``).
    """
    by_unit: dict[str, list[str]] = {}
    for run, units in margin_units.items():
        for head, unit in units.items():
            by_unit.setdefault(unit or "unknown", []).append(f"{run} head {head}")
    if len(by_unit) < 2:
        return []
    listing = "; ".join(f"{unit}: {', '.join(where)}" for unit, where in by_unit.items())
    return [f"margins (and so AUM) are in different units across the compared runs and not comparable: {listing}"]


def runs_by_kind(runs: pd.DataFrame) -> dict[str | None, list[str]]:
    """The runs of each noise kind, for figures that put a study's noise levels side by side.

    A run with ``noise_level`` 0 trained on clean data, so it belongs to **every** kind's group (a
    study usually shares one clean run between its kinds). The other runs go to their
    ``noise_kind`` (None when unknown). Without any noised run, one group holds every run under the
    runs' own kind (the first one given). Runs keep their order; kinds follow first appearance.

    >>> runs = pd.DataFrame({"run": ["clean", "lab50", "ir50"], "noise_level": [0.0, 0.5, 0.5],
    ...                      "noise_kind": [None, "label", "inject-repair"]})
    >>> runs_by_kind(runs)
    {'label': ['clean', 'lab50'], 'inject-repair': ['clean', 'ir50']}
    """
    level = pd.to_numeric(runs["noise_level"], errors="coerce")
    kinds = [None if pd.isna(k) else str(k) for k in runs["noise_kind"]]
    clean = (level == 0).to_numpy()
    noised = [k for k, c in zip(kinds, clean) if not c]
    if not noised:
        first = next((k for k in kinds if k is not None), None)
        return {first: list(runs["run"])}
    return {kind: [r for r, k, c in zip(runs["run"], kinds, clean) if c or k == kind]
            for kind in dict.fromkeys(noised)}


def _unique_names(dirs: Sequence[Path]) -> list[str]:
    names = [d.name for d in dirs]
    out = []
    for d, name in zip(dirs, names):
        out.append(f"{d.parent.name}/{name}" if names.count(name) > 1 else name)
    if len(set(out)) < len(out):
        out = [f"{i}:{n}" for i, n in enumerate(out)]
    return out


#: below this many bytes of row parts in all, runs are analysed in this process whatever ``jobs`` says:
#: starting a worker (a fresh interpreter importing pandas and pyarrow) costs more than they take
PARALLEL_MIN_BYTES = 64 * 2**20


def default_jobs() -> int:
    """The cores this process may run on (``trainstats analyze --jobs`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _RunResult:
    """One run analysed and its detectors evaluated (what a worker process sends back)."""

    analysis: RunAnalysis
    detection: list[tuple[str, pd.DataFrame]]
    messages: list[str]


def _analyze_one(run_dir: Path, name: str, split: str, recall_target: float, seed: int, max_loss_samples: int,
                 progress: bool) -> _RunResult:
    r = analyze_run(run_dir, split=split, max_loss_samples=max_loss_samples, progress=progress)
    detection, messages = [], []
    for head in r.heads:
        if not len(r.scores):
            continue
        det, msgs = evaluate_detectors(head_scores(r.scores, head), recall_target=recall_target, seed=seed,
                                       group_by=())
        messages += [f"{name}: head {head}: {m}" for m in msgs]
        if len(det):
            detection.append((head, det))
    return _RunResult(r, detection, messages)


def _results(dirs: list[Path], names: list[str], jobs: int, progress: bool, **options) -> list[_RunResult]:
    """Each run's result, in the order given; runs in ``jobs`` worker processes when there are several."""
    jobs = min(int(jobs), len(dirs))
    if jobs > 1 and sum(p.stat().st_size for d in dirs for p in Run(d).files()) < PARALLEL_MIN_BYTES:
        jobs = 1
    if jobs <= 1:
        return [_analyze_one(d, n, progress=progress, **options) for d, n in zip(dirs, names)]
    import multiprocessing

    # spawn: a fresh interpreter per worker (forking a process with Arrow's threads running is unsafe)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_analyze_one, d, n, progress=False, **options) for d, n in zip(dirs, names)]
        if progress:
            from concurrent.futures import as_completed

            from tqdm import tqdm

            for _ in tqdm(as_completed(futures), total=len(futures), desc="runs", unit="run"):
                pass
        return [f.result() for f in futures]


def analyze_runs(run_dirs: Sequence[str | Path], *, split: str = "train", recall_target: float = 0.99,
                 seed: int = 0, max_loss_samples: int = 5000, progress: bool = False, jobs: int = 1) -> Analysis:
    """Analyse runs and evaluate every score against the noise flags, runs side by side.

    Args:
        run_dirs: run directories (``trainstats.store`` format).
        split: the split per-sample scores are computed on (``"train"`` by default, ``"dev"`` on request).
        recall_target, seed: the calibrated cut-off (:func:`~trainstats.analysis.calibrated_cutoff`).
        max_loss_samples, progress: see :func:`~trainstats.analysis.analyze_run`.
        jobs: runs analysed at once, each in its own process (:func:`default_jobs`: the cores). The
            result does not depend on it: each run is analysed by the same code whatever the process,
            and the tables list the runs in the order given. Memory: each job holds one run's
            per-sample state (about 180 bytes a sample and head at most), the parent every run's tables.
            Runs with fewer than :data:`PARALLEL_MIN_BYTES` of rows in all are analysed in this process.

    Returns:
        :class:`Analysis`. ``runs`` has one row per run with ``noise_level`` (fraction), ``noise_kind``
        and ``seed`` read from ``run.json`` ``config`` (keys ``noise_level``, ``noise_kind``, ``seed``),
        else parsed from the directory name (``noise50``, ``seed3``), else null.
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise ValueError("run_dirs is empty; expected at least one run directory")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int; received {jobs!r}")
    names = _unique_names(dirs)
    done = _results(dirs, names, jobs, progress, split=split, recall_target=recall_target, seed=seed,
                    max_loss_samples=max_loss_samples)
    results = [d.analysis for d in done]
    runs = pd.DataFrame([dict(run=n, noise_level=r.info.noise_level, noise_kind=r.info.noise_kind,
                              seed=r.info.seed, run_dir=str(d), heads=",".join(r.heads),
                              margin_units=_format_units(r.margin_units))
                         for n, r, d in zip(names, results, dirs)])
    warnings = margin_unit_warnings({n: r.margin_units for n, r in zip(names, results)})
    for w in warnings:
        log.warning(w)
    messages, frames = [], {k: [] for k in ("scores", "metrics", "loss_samples", "curves", "detection")}
    for name, r, result in zip(names, results, done):
        messages += [m if m.startswith(name) else f"{name}: {m.split(': ', 1)[-1]}" for m in r.messages]
        for key in ("scores", "metrics", "loss_samples", "curves"):
            df = getattr(r, key)
            if len(df):
                df = df.copy() if key != "scores" else df
                df.insert(0, "run", pd.Categorical.from_codes(np.zeros(len(df), np.int8), [name]))
                frames[key].append(df)
        messages += result.messages
        for head, det in result.detection:
            det.insert(0, "head", head)
            det.insert(0, "run", name)
            frames["detection"].append(det)
    out = {k: (v[0] if len(v) == 1 and k == "scores" else pd.concat(v, ignore_index=True)) if v else pd.DataFrame()
           for k, v in frames.items()}
    if len(out["metrics"]):
        gap = generalization_gap(out["metrics"])
        baseline = always_no_bug(out["metrics"])
        out["metrics"] = pd.concat([out["metrics"]] + [t for t in (gap, baseline) if len(t)], ignore_index=True)
        out["metrics"] = out["metrics"].merge(runs[_RUN_COLS], on="run", how="left")
    if len(out["detection"]):
        out["detection"] = out["detection"].merge(runs[_RUN_COLS].rename(columns={"noise_kind": "run_noise_kind"}),
                                                  on="run", how="left")
    return Analysis(runs=runs, messages=messages, heads={n: r.heads for n, r in zip(names, results)},
                    warnings=warnings, **out)
