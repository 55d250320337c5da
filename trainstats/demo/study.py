"""The demo's pipeline: data -> noise per level -> one captured training run per level -> analysis -> report."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .settings import DEFAULT, DemoSettings
from .summary import summarize

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


def run_name(kind: str, level: float, seed: int) -> str:
    """``label-noise025-seed0``: the run directory name for one (kind, level, seed)."""
    return f"{kind}-noise{round(level * 100):03d}-seed{seed}"


def _check(levels: Sequence[float], seeds: Sequence[int], kind: str, data: Path | None) -> None:
    if not levels:
        raise ValueError("levels is empty; expected at least one noise level, e.g. [0.0, 0.25, 0.5]")
    bad = [lv for lv in levels if not isinstance(lv, (int, float)) or not 0.0 <= lv <= 1.0]
    if bad:
        raise ValueError(f"noise levels must be fractions in [0, 1]; received {bad}")
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints; received {list(seeds)}")
    from trainstats.noise import available_kinds

    if kind not in available_kinds():
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {sorted(available_kinds())}")
    if data is not None:
        from trainstats.varmisuse import list_shards

        for split in ("train", "dev"):
            if not list_shards(data, split=split):
                raise ValueError(f"--data {data}: no {split!r} shards found (expected "
                                 f"{split}__VARIABLE_MISUSE__SStuB.txt-NNNNN-of-NNNNN files, e.g. in {data / split})")


def run_demo(
    out_dir: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    levels: Sequence[float] = (0.0, 0.25, 0.5),
    kind: str = "label",
    seeds: Sequence[int] = (0,),
    settings: DemoSettings = DEFAULT,
    progress: bool = True,
    paper: str | os.PathLike | None = None,
) -> DemoResult:
    """Run the memorization study in miniature and write everything under ``out_dir``.

    Layout: ``data/clean`` (built from ``source``, the running Python's standard library by default,
    unless ``data`` names existing GREAT shards with ``train`` and ``dev`` splits),
    ``data/<run name>`` (the noised training split and its ``noise_manifest.parquet``),
    ``runs/<run name>`` (run directories), ``report/index.html`` (``trainstats analyze``'s report),
    ``summary.json`` / ``summary.txt`` and ``demo.json`` (settings and timings).

    The noise inducer noises only the ``train`` split, with ``seed`` as its seed; level 0 trains on the
    clean data. Each run's ``run.json`` config holds ``noise_level`` (fraction), ``noise_kind``, ``seed``.
    ``paper``: the study's per-epoch CSV, drawn in the report beside the demo's curves (checked first,
    before any training).
    """
    out = Path(out_dir)
    data_path = Path(data) if data is not None else None
    levels = [float(lv) for lv in levels]
    seeds = [int(s) for s in seeds]
    _check(levels, seeds, kind, data_path)
    published = None
    if paper is not None:
        from trainstats.analysis.paper import load_published

        published = load_published(paper)  # ValueError naming the file and line, before hours of training
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if progress:
            print(f"[demo] {msg}", file=sys.stderr, flush=True)

    if data_path is None:
        from trainstats.varmisuse.builder import build_varmisuse

        data_path = out / "data" / "clean"
        say(f"building VarMisuse data from {'the standard library' if source is None else source} -> {data_path}")
        build_varmisuse(source, data_path, seed=0, max_functions=settings.max_functions,
                        split_fractions=settings.split_fractions, max_tokens=settings.max_tokens, overwrite=True,
                        progress=progress)
        timings["build"] = time.perf_counter() - t0

    from trainstats.noise import MANIFEST_NAME, induce_noise

    from .train import train_run

    run_dirs: list[Path] = []
    runs_root = out / "runs"
    for seed in seeds:
        for level in levels:
            name = run_name(kind, level, seed)
            train_dir, manifest = data_path, None
            if level > 0:
                t = time.perf_counter()
                train_dir = out / "data" / name
                say(f"noise: {kind} at {level:.0%} of the training split (seed {seed}) -> {train_dir}")
                induce_noise(data_path, train_dir, kind=kind, level=level, seed=seed, split="train", force=True,
                             workers=1, progress=progress)
                manifest = train_dir / MANIFEST_NAME
                timings[f"noise:{name}"] = time.perf_counter() - t
            run_dir = runs_root / name
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            t = time.perf_counter()
            say(f"training {settings.model} ({settings.epochs} epochs) -> {run_dir}")
            train_run(train_dir, data_path, run_dir, settings=settings, seed=seed, noise_manifest=manifest,
                      config={"noise_level": level, "noise_kind": kind, "data": str(data_path),
                              "train_data": str(train_dir)},
                      progress=progress, desc=name)
            timings[f"train:{name}"] = time.perf_counter() - t
            run_dirs.append(run_dir)

    t = time.perf_counter()
    say(f"analysing {len(run_dirs)} run(s) -> {out / 'report'}")
    from trainstats.analysis import analyze_runs
    from trainstats.report import write_report

    analysis = analyze_runs(run_dirs, progress=progress)
    report = write_report(analysis, out / "report", title=f"trainstats demo: memorization under {kind} noise",
                          paper=published)
    timings["analyze"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    table = summarize(analysis)
    result = DemoResult(out_dir=out, report=report, run_dirs=run_dirs, summary=table, timings=timings,
                        messages=list(analysis.messages))
    (out / "summary.json").write_text(json.dumps(table, indent=2))
    from .summary import format_summary

    (out / "summary.txt").write_text(format_summary(table) + "\n")
    (out / "demo.json").write_text(json.dumps({
        "settings": settings.to_dict(), "levels": levels, "kind": kind, "seeds": seeds,
        "data": str(data_path), "report": str(report), "runs": [str(d) for d in run_dirs],
        "timings_s": {k: round(v, 2) for k, v in timings.items()}}, indent=2))
    return result
