"""``induce_noise``: write a noisy copy of GREAT-format shards plus a per-sample noise manifest.

Three passes, each over shards in parallel worker processes, each streaming line by line:

1. *scan*: validate every line (fast path of :mod:`trainstats.varmisuse.lines`), record its class and
   its eligibility for each kind; bad input stops here, before anything is written. With
   ``validate="selected"`` the scan only reads each line's class from its first bytes;
2. *select* (main process): :func:`trainstats.noise.select.select_split` per split (in
   ``"selected"`` mode it decodes and validates the drawn candidates on the fly);
3. *write*: copy each shard to a hidden temporary file in ``out_dir``, noising only the selected
   lines (decoded, changed, re-encoded); all other lines are copied as bytes.

Only when every shard is written are the temporaries renamed to their shard names, then the
manifest and finally the summary (the summary's presence marks a complete output). On any error the
temporaries are deleted: ``out_dir`` never holds a half-written shard, and folders the run created
(``out_dir`` itself included) are removed again; a folder that existed before is never removed.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from trainstats.noise.kinds import get_kind
from trainstats.noise.manifest import MANIFEST_NAME, SUMMARY_NAME, ManifestWriter
from trainstats.noise.select import select_split
from trainstats.noise.shardwork import (INVALID, CheckTask, ScanTask, WriteTask, check_task, scan_shard,
                                         write_shard)
from trainstats.varmisuse import list_shards, parse_shard_name

__all__ = ["induce_noise"]

log = logging.getLogger(__name__)
SUMMARY_FORMAT = "trainstats-noise/1"


def _as_list(value, name: str) -> list:
    if isinstance(value, (str, int, float)):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise TypeError(f"{name} must be a single value or a sequence, received {type(value).__name__}")


def _check_args(kind, level, seed, workers) -> tuple[list[str], list[float], int, int]:
    kinds = _as_list(kind, "kind")
    levels = _as_list(level, "level")
    if not kinds or len(kinds) != len(levels):
        raise ValueError(f"expected one level per kind, received kinds={kinds} and levels={levels}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"each kind may appear once, received {kinds}")
    for k in kinds:
        get_kind(k)
    out_levels = []
    for lv in levels:
        if isinstance(lv, bool) or not isinstance(lv, (int, float)) or not 0.0 <= float(lv) <= 1.0:
            raise ValueError(f"level must be a fraction in [0, 1] (the CLI takes percent), received {lv!r}")
        out_levels.append(float(lv))
    if sum(out_levels) > 1.0 + 1e-9:
        raise ValueError(f"the levels of disjoint kinds must sum to at most 1, received {out_levels}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), received {seed!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, received {workers!r}")
    return kinds, out_levels, seed, workers


def _check_out_dir(in_path: Path, out_dir: Path, force: bool) -> None:
    in_root = in_path if in_path.is_dir() else in_path.parent
    out_res, in_res = out_dir.resolve(), in_root.resolve()
    if out_res == in_res or in_res in out_res.parents:
        raise ValueError(f"out_dir {str(out_dir)!r} must not be the input directory or inside it ({str(in_root)!r})")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir {str(out_dir)!r} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(f"out_dir {str(out_dir)!r} is not empty; pass force=True (--force) to write into it")


def _make_dirs(path: Path, created: list[Path]) -> None:
    """``mkdir -p path``, appending the folders it creates (outermost first) to ``created``."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        created.append(folder)


def _remove_dirs(created: list[Path]) -> None:
    """Remove the folders this run created, innermost first, where they are (still) empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass


def _stale_outputs(out_dir: Path, keep: set[Path]) -> list[Path]:
    """Shards (and manifest/summary) in ``out_dir`` from an earlier run that this run does not rewrite."""
    stale = []
    for folder in [out_dir] + [p for p in out_dir.iterdir() if p.is_dir()]:
        for p in folder.iterdir():
            if p.is_file() and p not in keep and (parse_shard_name(p.name) or p.name in (MANIFEST_NAME, SUMMARY_NAME)):
                stale.append(p)
    return stale


#: environment variable that forces the workers' start method (``fork``, ``spawn`` or ``forkserver``)
START_METHOD_ENV = "TRAINSTATS_NOISE_START_METHOD"


#: frameworks whose native thread pools and device contexts a forked worker should not inherit
_NO_FORK_WITH = ("tensorflow", "torch", "jax")


def _start_method() -> str:
    """How worker processes start: ``fork`` where it is the platform's default and safe, else ``spawn``.

    ``fork`` (Linux, Python < 3.12, no other Python thread running, no TensorFlow/PyTorch/JAX
    imported) starts a worker in milliseconds; ``spawn`` re-imports numpy and trainstats in each
    (about 0.3 s per call on a 2-core box, 15 % of a 200 MB run). Python 3.12+ warns about forking a process that runs threads (numpy's BLAS pool
    is one), so ``spawn`` is used there. ``$TRAINSTATS_NOISE_START_METHOD`` overrides the choice.
    """
    forced = os.environ.get(START_METHOD_ENV, "").strip()
    if forced:
        if forced not in multiprocessing.get_all_start_methods():
            raise ValueError(f"${START_METHOD_ENV}={forced!r} is not a start method here; expected one of "
                             f"{multiprocessing.get_all_start_methods()}")
        return forced
    if (sys.platform.startswith("linux") and sys.version_info < (3, 12) and threading.active_count() == 1
            and not any(name in sys.modules for name in _NO_FORK_WITH)):
        return "fork"
    return "spawn"


def _progress_bar(total: int):
    from tqdm import tqdm   # only with a bar: even a disabled tqdm starts a monitor thread

    return tqdm(total=total, unit="B", unit_scale=True, desc="noise", file=sys.stderr)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _mapper(workers: int, n_tasks: int) -> tuple[Callable[[Callable, Iterable], Iterator], Callable[[], None]]:
    if workers == 1 or n_tasks <= 1:
        return map, lambda: None
    method = _start_method()
    pool = ProcessPoolExecutor(max_workers=min(workers, n_tasks), mp_context=multiprocessing.get_context(method))
    if method == "fork":
        pool.submit(int).result()   # fork every worker now, while this is the only thread
    return pool.map, lambda: pool.shutdown(cancel_futures=True)


def _select(split, idx, scans, shards, kind_objs, kinds, levels, seed, validate, skip_invalid, run_map):
    """Run :func:`select_split` for one split, decoding candidates lazily in ``"selected"`` mode."""
    classes = np.concatenate([scans[i].classes for i in idx])
    starts = np.cumsum([0] + [scans[i].n_lines for i in idx])
    if validate == "all":
        eligible = np.concatenate([scans[i].eligible for i in idx], axis=1)

        def eligible_fn(j, cand):
            return eligible[j, cand], np.zeros(cand.size, dtype=bool)
    else:
        def eligible_fn(j, cand):
            ok = np.zeros(cand.size, dtype=bool)
            bad = np.zeros(cand.size, dtype=bool)
            which = np.searchsorted(starts, cand, side="right") - 1
            groups = []
            for w in np.unique(which):
                pos = np.flatnonzero(which == w)
                local = cand[pos] - starts[w]
                groups.append((w, pos, local))
            tasks = [CheckTask(str(shards[idx[w]]), local + 1, scans[idx[w]].offsets[local], kind_objs[j],
                               skip_invalid) for w, pos, local in groups]
            for (w, pos, local), (res, invalid) in zip(groups, run_map(check_task, tasks)):
                scan = scans[idx[w]]
                ok[pos] = res
                for line, msg in invalid:
                    scan.invalid.append((line, msg))
                    scan.classes[line - 1] = INVALID
                    bad[pos[local == line - 1]] = True
            return ok, bad

    kind_of, stats = select_split(classes, kind_names=kinds, levels=levels, seed=seed, split=split,
                                  eligible_fn=eligible_fn)
    if validate == "all":
        for cls, name in ((1, "buggy"), (0, "bug_free")):
            members = classes == cls
            stats[name]["eligible"] = {k: int(eligible[j, members].sum()) for j, k in enumerate(kinds)}
    return kind_of, stats


def induce_noise(in_dir: str | os.PathLike, out_dir: str | os.PathLike, *, kind: str | Sequence[str],
                 level: float | Sequence[float], seed: int, split: str | None = None,
                 skip_invalid: bool = False, validate: str = "all", force: bool = False,
                 workers: int | None = None, progress: bool = False) -> dict:
    """Write a noisy copy of the GREAT shards in ``in_dir`` to ``out_dir`` and return the summary.

    Args:
        in_dir: a shard file, a folder of shards, or a folder of split sub-folders.
        out_dir: output folder (same shard names and sub-folders); must be empty unless ``force``.
        kind: a registered kind (``trainstats.noise.available_kinds()``) or several, applied to
            disjoint examples in the given order.
        level: fraction in [0, 1] per kind: ``round(level * n_class)`` examples of *each* class of
            each split are noised, ``n_class`` counting all valid examples of the class.
        seed: int in [0, 2**63); the output is a pure function of the input, kinds, levels and seed.
        split: only the shards of this split.
        skip_invalid: copy invalid lines unchanged (never noised; listed in the summary) instead of
            stopping at the first one.
        validate: ``"all"`` (default) decodes and validates every line, so any bad line stops the run;
            ``"selected"`` (faster at low levels) fully decodes only the lines drawn for noising; the
            others are only checked to be canonical GREAT lines that start with ``{"has_bug": true``
            or ``false`` and end with ``}`` (anything else is decoded and validated), then copied
            as bytes. For valid input both modes give byte-identical outputs.
        force: write into a non-empty ``out_dir`` (earlier shards, manifest and summary there are
            replaced; other files are left alone).
        workers: processes (default: all cores; 1 runs in this process).
        progress: show a tqdm progress bar on stderr.

    Returns:
        The summary dict also written to ``out_dir/noise_summary.json`` (see ``docs/noise.md``).

    Raises:
        InvalidExample: a bad line (``path:line[:col]: ...``) without ``skip_invalid``.
        FileExistsError: ``out_dir`` is not empty and ``force`` is false.
        ValueError: bad arguments, or too few eligible examples for a level.
    """
    kinds, levels, seed, workers = _check_args(kind, level, seed, workers)
    if validate not in ("all", "selected"):
        raise ValueError(f"validate must be 'all' or 'selected', received {validate!r}")
    kind_objs = tuple(get_kind(k) for k in kinds)
    in_path, out_path = Path(in_dir), Path(out_dir)
    shards = list_shards(in_path, split=split)
    names = [s.name for s in shards]
    if len(set(names)) != len(names):
        raise ValueError(f"shard basenames must be unique (they are the sample ids' prefix); found duplicates in {str(in_path)!r}")
    _check_out_dir(in_path, out_path, force)
    rel = [s.name if in_path.is_file() else s.relative_to(in_path) for s in shards]
    splits = [(parse_shard_name(s.name) or ("unknown", 0, 1))[0] for s in shards]
    total = sum(s.stat().st_size for s in shards)
    run_map, shutdown = _mapper(workers, len(shards))   # before tqdm starts its monitor thread
    bar = _progress_bar(2 * total) if progress else _NoBar()
    token = uuid.uuid4().hex[:8]
    temps: list[Path] = []
    created: list[Path] = []   # folders this run made: removed again if it fails
    ok = False
    try:
        _make_dirs(out_path, created)
        scans = []
        for s, res in zip(shards, run_map(scan_shard, [ScanTask(str(s), kind_objs, skip_invalid, validate) for s in shards])):
            scans.append(res)
            bar.update(res.n_bytes)
        selections: list = [None] * len(shards)
        split_stats = {}
        for sp in sorted(set(splits)):
            idx = [i for i, x in enumerate(splits) if x == sp]
            kind_of, stats = _select(sp, idx, scans, shards, kind_objs, kinds, levels, seed, validate,
                                     skip_invalid, run_map)
            start = 0
            for i in idx:
                part = kind_of[start:start + scans[i].n_lines]
                lines = np.flatnonzero(part >= 0)
                selections[i] = ((lines + 1).astype(np.int64), part[lines])
                start += scans[i].n_lines
            n_inv = sum(int((scans[i].classes < 0).sum()) for i in idx)
            split_stats[sp] = {"n_examples": sum(scans[i].n_lines for i in idx), "n_invalid": n_inv, **stats}
        finals = [out_path / r for r in rel]
        for f in finals:
            _make_dirs(f.parent, created)
            temps.append(f.parent / f".{f.name}.tmp-{token}")
        manifest_tmp = out_path / f".{MANIFEST_NAME}.tmp-{token}"
        temps.append(manifest_tmp)
        writer = ManifestWriter(manifest_tmp, metadata={
            "trainstats.noise": json.dumps({"kinds": kinds, "levels": levels, "seed": seed})})
        tasks = [WriteTask(str(s), str(t), s.name, sp, sel[0], sel[1], scan.offsets[sel[0] - 1],
                           scan.offsets[sel[0]], scan.n_lines, scan.n_bytes, kind_objs, tuple(levels), seed)
                 for s, t, sp, sel, scan in zip(shards, temps, splits, selections, scans)]
        shard_info = []
        try:
            for s, r, scan, res in zip(shards, rel, scans, run_map(write_shard, tasks)):
                writer.write(res.manifest)
                shard_info.append({"path": str(r), "n_lines": res.n_lines, "n_noised": len(res.manifest["sample_id"]),
                                   "input_sha256": scan.sha256, "output_sha256": res.sha256})
                bar.update(scan.n_bytes)
        finally:
            writer.close()
        summary = _summary(in_path, out_path, kinds, levels, seed, split_stats, scans, shards, shard_info,
                           writer.rows, skip_invalid, validate)
        for p in _stale_outputs(out_path, set(finals)):
            p.unlink()
        for t, f in zip(temps, finals):
            os.replace(t, f)
        os.replace(manifest_tmp, out_path / MANIFEST_NAME)
        summary_tmp = out_path / f".{SUMMARY_NAME}.tmp-{token}"
        temps.append(summary_tmp)
        summary_tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(summary_tmp, out_path / SUMMARY_NAME)
        ok = True
    finally:
        shutdown()
        bar.close()
        for t in temps:
            if t.exists():
                t.unlink()
        if not ok:
            _remove_dirs(created)
    if summary["invalid"]:
        log.warning("copied %d invalid line(s) unchanged; see %s", len(summary["invalid"]), SUMMARY_NAME)
    return summary


def _summary(in_path, out_path, kinds, levels, seed, split_stats, scans, shards, shard_info, rows,
             skip_invalid, validate) -> dict:
    invalid = [{"sample_id": f"{s.name}:{line}", "error": msg}
               for s, scan in zip(shards, scans) for line, msg in sorted(scan.invalid)]
    counts = {k: {"buggy": sum(st["buggy"]["noised"][k] for st in split_stats.values()),
                  "bug_free": sum(st["bug_free"]["noised"][k] for st in split_stats.values())} for k in kinds}
    from trainstats import __version__
    return {
        "format": SUMMARY_FORMAT,
        "trainstats_version": __version__,
        "in_dir": str(in_path),
        "out_dir": str(out_path),
        "kinds": [{"kind": k, "level": lv} for k, lv in zip(kinds, levels)],
        "seed": seed,
        "level_semantics": "per split and class: round_half_up(level * n_class) examples, n_class = all "
                           "valid examples of the class; drawn uniformly among those eligible for the kind",
        "skip_invalid": skip_invalid,
        "validate": validate,
        "n_examples": sum(st["n_examples"] for st in split_stats.values()),
        "n_noised": rows,
        "counts": counts,
        "splits": split_stats,
        "invalid": invalid,
        "manifest": MANIFEST_NAME,
        "shards": shard_info,
    }
