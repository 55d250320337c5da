"""Build GREAT-format VarMisuse shards from a Python source tree (default: the standard library)."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from trainstats.varmisuse.builder.files import FileJob, FileResult, process_file, source_files
from trainstats.varmisuse.shards import SHARD_PATTERN, shard_name

__all__ = ["BuildSummary", "build_varmisuse", "default_source_dir", "SPLITS", "DEFAULT_EXCLUDE_DIRS"]

SPLITS = ("train", "dev", "eval")
#: directory names never searched for sources (hidden directories are skipped as well)
DEFAULT_EXCLUDE_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules"})
_SPLIT_BY = ("file", "directory")


def default_source_dir() -> Path:
    """The running interpreter's standard library (``sysconfig.get_paths()["stdlib"]``)."""
    return Path(sysconfig.get_paths()["stdlib"])


@dataclass
class BuildSummary:
    """What :func:`build_varmisuse` did (also written to ``OUT_DIR/build_summary.json``).

    Attributes:
        n_files: ``*.py`` files found; n_files_used: files that parsed (those whose functions were
        read); skipped_files: ``{"file", "reason"}`` for every file that did not parse or decode;
        n_functions: functions and methods seen in the files read; n_functions_used: functions that
        gave examples (two each); skipped_functions: reason -> count (too long, no misuse possible,
        internal error); function_errors: ``file:line: ...`` for internal errors (at most 100);
        examples / buggy / files / shards: per split counts; seconds: wall time of the build.
    """

    src_dir: str
    out_dir: str
    seed: int
    split_by: str
    max_tokens: int
    n_files: int = 0
    n_files_used: int = 0
    skipped_files: list[dict] = field(default_factory=list)
    n_functions: int = 0
    n_functions_used: int = 0
    skipped_functions: dict[str, int] = field(default_factory=dict)
    function_errors: list[str] = field(default_factory=list)
    examples: dict[str, int] = field(default_factory=dict)
    buggy: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Tree:
    path: Path
    stdlib: bool
    key: str  # unique short name of the tree (prefix of its files' keys when there are several)
    dataset_name: str


def _resolve_trees(src_dir) -> list[_Tree]:
    items = list(src_dir) if isinstance(src_dir, (list, tuple)) else [src_dir]
    if not items:
        raise ValueError("src_dir is an empty list; expected a directory, a file, None (the stdlib) or a list of them")
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    trees, keys = [], set()
    for item in items:
        path = default_source_dir() if item is None else Path(item)
        stdlib = item is None or (path.exists() and path.resolve() == default_source_dir().resolve())
        key = "stdlib" if stdlib else (path.resolve().name or "src")
        base, i = key, 1
        while key in keys:
            i += 1
            key = f"{base}{i}"
        keys.add(key)
        trees.append(_Tree(path, stdlib, key, f"python{ver}-stdlib" if stdlib else path.resolve().name))
    return trees


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64


def _split_of(seed: int, relpath: str, split_by: str, fractions: Sequence[float]) -> str:
    key = relpath if split_by == "file" else (relpath.rsplit("/", 1)[0] if "/" in relpath else ".")
    u = _unit_hash(seed, "split:" + key)
    acc = 0.0
    for name, frac in zip(SPLITS, fractions):
        acc += frac
        if u < acc:
            return name
    return SPLITS[-1]


def _validate(src: Path, out: Path, seed, max_functions, split_by, fractions, max_tokens,
              examples_per_shard, workers) -> None:
    if not src.exists():
        raise FileNotFoundError(f"source directory {str(src)!r} does not exist")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    for name, value in (("seed", seed), ("max_tokens", max_tokens),
                        ("examples_per_shard", examples_per_shard)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, received {type(value).__name__} {value!r}")
    if max_functions is not None and (not isinstance(max_functions, int) or max_functions < 1):
        raise ValueError(f"max_functions must be None or a positive int, received {max_functions!r}")
    if split_by not in _SPLIT_BY:
        raise ValueError(f"split_by must be one of {_SPLIT_BY}, received {split_by!r}")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split_fractions must be 3 non-negative numbers (train, dev, eval) summing to 1, "
                         f"received {tuple(fractions)!r}")
    if max_tokens < 8 or examples_per_shard < 1:
        raise ValueError(f"expected max_tokens >= 8 and examples_per_shard >= 1, "
                         f"received {max_tokens} and {examples_per_shard}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be None or a positive int, received {workers!r}")


def build_varmisuse(src_dir: str | os.PathLike | None | Sequence[str | os.PathLike | None],
                    out_dir: str | os.PathLike, *, seed: int = 0,
                    max_functions: int | None = None, split_by: str = "file",
                    split_fractions: Sequence[float] = (0.8, 0.1, 0.1), max_tokens: int = 512,
                    examples_per_shard: int = 500, workers: int | None = None,
                    license: str | None = None, dataset_name: str | None = None,
                    exclude_dirs: Iterable[str] = DEFAULT_EXCLUDE_DIRS, overwrite: bool = False,
                    progress: bool = False) -> BuildSummary:
    """Write GREAT VarMisuse shards built from the Python files under ``src_dir``.

    Every function and method of at most ``max_tokens`` tokens that has a possible misuse gives two
    examples: the bug-free function and a copy with one variable use replaced by another variable
    (see ``docs/builder.md``). Files are assigned to ``train``/``dev``/``eval`` by a hash of
    ``(seed, file path)`` (or of its directory with ``split_by="directory"``), so no function
    appears in two splits. Each split's examples are shuffled with ``seed`` and written to
    ``OUT_DIR/<split>/<split>__VARIABLE_MISUSE__SStuB.txt-NNNNN-of-NNNNN``
    (``examples_per_shard`` lines each). Same inputs and seed give byte-identical files.

    Args:
        src_dir: a directory (searched recursively for ``*.py``) or one file; None for the running
            interpreter's standard library (licence then ``PSF-2.0``); or a list of these, built as one
            dataset (each file keyed ``<tree name>/<path>``, so the split stays disjoint by file and
            the same file in two trees would still get distinct keys).
        out_dir: output directory (created).
        seed: drives the split, the bugs and the shuffling.
        max_functions: stop after this many functions (files are visited in a seeded order, so the
            first ones come from all splits).
        split_by: ``"file"`` or ``"directory"``.
        split_fractions: (train, dev, eval) fractions of files.
        max_tokens: longest function kept, in GREAT tokens.
        workers: processes (default: CPU count).
        license: licence recorded in provenances (default ``"unknown"``, ``"PSF-2.0"`` for the stdlib).
        dataset_name: provenance ``datasetName`` (default ``python<X.Y>-stdlib`` or the directory name).
        overwrite: replace existing shards in ``out_dir`` (otherwise they are an error).
        progress: show a tqdm progress bar on stderr.

    Returns:
        a :class:`BuildSummary`, also written to ``OUT_DIR/build_summary.json``.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    trees = _resolve_trees(src_dir)
    for tree in trees:
        _validate(tree.path, out, seed, max_functions, split_by, split_fractions, max_tokens, examples_per_shard,
                  workers)

    existing = [p for s in SPLITS if (out / s).is_dir()
                for p in (out / s).iterdir() if SHARD_PATTERN.match(p.name)]
    if existing and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds {len(existing)} shard file(s) (e.g. "
                              f"{existing[0].name!r}); pass overwrite=True (--overwrite) to replace them")

    jobs = []
    for tree in trees:
        lic = license or ("PSF-2.0" if tree.stdlib else "unknown")
        name = dataset_name or tree.dataset_name
        if tree.path.is_file():
            files = [(str(tree.path), tree.path.name)]
        else:
            files = source_files(tree.path, frozenset(exclude_dirs))
        # with several trees a file's key (split, order, bugs) is "<tree name>/<path in the tree>"
        prefix = f"{tree.key}/" if len(trees) > 1 else ""
        jobs += [FileJob(path, prefix + rel, seed, max_tokens, name, lic) for path, rel in files]
    jobs.sort(key=lambda j: (_unit_hash(seed, "order:" + j.relpath), j.relpath))
    src = trees[0].path if len(trees) == 1 else Path(os.pathsep.join(str(t.path) for t in trees))
    summary = BuildSummary(str(src), str(out), seed, split_by, max_tokens, n_files=len(jobs))
    per_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    split_files: dict[str, int] = {s: 0 for s in SPLITS}

    results = _run(jobs, workers, progress)
    try:
        _collect(results, summary, per_split, split_files, seed, split_by, split_fractions, max_functions)
    finally:
        results.close()  # stops the workers when max_functions ended the loop early
    for p in existing:
        p.unlink()
    for split in SPLITS:
        lines = per_split[split]
        random.Random(f"{seed}:shuffle:{split}").shuffle(lines)
        summary.examples[split] = len(lines)
        summary.buggy[split] = sum(1 for line in lines if line.startswith('{"has_bug": true'))
        summary.files[split] = split_files[split]
        summary.shards[split] = _write_split(out / split, split, lines, examples_per_shard)
    summary.skipped_files.sort(key=lambda d: d["file"])
    summary.seconds = round(time.perf_counter() - started, 3)
    out.mkdir(parents=True, exist_ok=True)
    (out / "build_summary.json").write_text(json.dumps(summary.to_dict(), indent=1) + "\n", encoding="utf-8")
    return summary


def _collect(results: Iterable[FileResult], summary: BuildSummary, per_split: dict[str, list[str]],
             split_files: dict[str, int], seed: int, split_by: str, fractions: Sequence[float],
             max_functions: int | None) -> None:
    for res in results:
        if res.error is not None:
            summary.skipped_files.append({"file": res.relpath, "reason": res.error})
            continue
        summary.n_files_used += 1
        summary.n_functions += res.n_functions
        for reason, count in res.skipped_functions.items():
            summary.skipped_functions[reason] = summary.skipped_functions.get(reason, 0) + count
        summary.function_errors.extend(res.function_errors[: max(0, 100 - len(summary.function_errors))])
        split = _split_of(seed, res.relpath, split_by, fractions)
        functions = res.functions
        if max_functions is not None:
            functions = functions[: max_functions - summary.n_functions_used]
        if functions:
            split_files[split] += 1
        for _, lines in functions:
            per_split[split].extend(lines)
        summary.n_functions_used += len(functions)
        if max_functions is not None and summary.n_functions_used >= max_functions:
            return


def _run(jobs: list[FileJob], workers: int | None, progress: bool) -> Iterable[FileResult]:
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), unit="file", desc="build-varmisuse", disable=not progress, file=sys.stderr)
    try:
        if workers == 1 or len(jobs) < 8:
            for job in jobs:
                res = process_file(job)
                bar.update(1)   # before the yield: the consumer may stop at this file
                yield res
            return
        with multiprocessing.get_context().Pool(workers) as pool:
            for res in pool.imap(process_file, jobs, chunksize=2):
                bar.update(1)
                yield res
            # leaving the with-block early (max_functions reached) terminates the pool
    finally:
        if bar.n < bar.total:   # stopped early (max_functions): end the bar at the files read
            bar.total = bar.n
            bar.refresh()
        bar.close()


def _write_split(folder: Path, split: str, lines: list[str], per_shard: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    if not lines:
        return 0
    total = (len(lines) + per_shard - 1) // per_shard
    for i in range(total):
        chunk = lines[i * per_shard:(i + 1) * per_shard]
        path = folder / shard_name(split, i, total)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(chunk) + "\n", encoding="utf-8")
        tmp.replace(path)
    return total
