"""Per-shard work run in worker processes: the scan pass and the write pass.

Both stream a shard line by line (memory flat in shard size) and are pure functions of their task,
so they give the same result in any process, in any order.
"""
from __future__ import annotations

import hashlib
import os
from operator import ne
from dataclasses import dataclass, field

import numpy as np

from trainstats.noise.kinds import NoiseKind
from trainstats.noise.rng import example_random
from trainstats.varmisuse import InvalidExample, validate_example
from trainstats.varmisuse.lines import ParsedLine, encode_example, loads, parse_line, parse_lines

__all__ = ["ScanTask", "ScanResult", "WriteTask", "WriteResult", "scan_shard", "write_shard", "check_lines", "check_task", "CheckTask",
           "quick_class", "MANIFEST_FIELDS"]

_BUF = 1 << 20
_BLOCK = 256 << 10  # bytes of lines whose edges are checked together: the numpy temporaries stay
                    # in cache (bench: 2 workers 10 % faster than with 1 MB blocks, 25 % than 4 MB)
_CHECK_BATCH = 64   # lines read at random and checked together by check_lines
_WRITE_BATCH = 64   # selected lines decoded together by write_shard
#: class codes in :attr:`ScanResult.classes`
BUG_FREE, BUGGY, INVALID = 0, 1, -1
MANIFEST_FIELDS = ("sample_id", "split", "noise_kind", "level", "seed", "orig_has_bug", "new_has_bug",
                   "orig_error_location", "new_error_location", "orig_repair_targets",
                   "new_repair_targets", "changed_tokens")


#: line prefixes that announce the class without a parse (the canonical GREAT layout)
_PREFIXES = ((b'{"has_bug": true, ', BUGGY), (b'{"has_bug": false, ', BUG_FREE))


def _for_kind(parsed: ParsedLine, raw: bytes, kind: NoiseKind) -> dict:
    """The example as ``kind`` may see it: with real edges only if it declared ``needs_edges``."""
    if kind.needs_edges and parsed.edges_raw is not None:
        return dict(parsed.example, edges=loads(parsed.edges_raw))
    return parsed.example


def _line_blocks(fh, size: int = _BLOCK):
    """Yield ``(number of the first line, [raw lines])`` in blocks of about ``size`` bytes."""
    first = 1
    while True:
        block = fh.readlines(size)
        if not block:
            return
        yield first, block
        first += len(block)


def quick_class(raw: bytes) -> int | None:
    """Class of a canonical GREAT line from its first bytes (None: not canonical, parse it).

    Only trusted together with ``raw`` ending in ``}`` (plus line terminator): a ``has_bug`` key
    first and a closed object. A full parse gives the same class (tested on every real line).
    """
    for prefix, cls in _PREFIXES:
        if raw.startswith(prefix):
            return cls if raw.rstrip(b"\r\n").endswith(b"}") else None
    return None


@dataclass(frozen=True)
class ScanTask:
    path: str
    kinds: tuple[NoiseKind, ...]
    skip_invalid: bool
    validate: str = "all"         # "all": parse and validate every line; "selected": see quick_class


@dataclass
class ScanResult:
    n_lines: int
    n_bytes: int
    sha256: str
    classes: np.ndarray          # int8 [n_lines]: 1 buggy, 0 bug-free, -1 invalid (skipped)
    eligible: np.ndarray | None  # bool [n_kinds, n_lines] ("all"), None ("selected": decided later)
    offsets: np.ndarray          # int64 [n_lines + 1]: byte offset of each line, then the file size
    invalid: list[tuple[int, str]] = field(default_factory=list)   # (line, message)


def scan_shard(task: ScanTask) -> ScanResult:
    """Record every line's class and (``validate="all"``) validity and eligibility for each kind.

    With ``validate="selected"`` a canonical line is only recognised by :func:`quick_class` (no
    parse); other lines are parsed and validated.

    Raises:
        InvalidExample: the first bad line (``path:line[:col]: ...``) unless ``task.skip_invalid``.
    """
    if task.validate == "selected":
        return _scan_quick(task)
    classes: list[int] = []
    elig: list[list[bool]] = [[] for _ in task.kinds]
    invalid: list[tuple[int, str]] = []
    digest = hashlib.sha256()
    ends: list[int] = []
    n_bytes = 0
    with open(task.path, "rb", buffering=_BUF) as fh:
        for first, block in _line_blocks(fh):
            for raw in block:
                digest.update(raw)
                n_bytes += len(raw)
                ends.append(n_bytes)
            parsed = parse_lines(block, lambda i: f"{task.path}:{first + i}")
            for i, (raw, line) in enumerate(zip(block, parsed)):
                if isinstance(line, InvalidExample):
                    if not task.skip_invalid:
                        raise line
                    invalid.append((first + i, str(line)))
                    classes.append(INVALID)
                    for lst in elig:
                        lst.append(False)
                    continue
                classes.append(BUGGY if line.example["has_bug"] else BUG_FREE)
                for lst, kind in zip(elig, task.kinds):
                    lst.append(kind.is_eligible(_for_kind(line, raw, kind)))
    n = len(classes)
    return ScanResult(
        n_lines=n, n_bytes=n_bytes, sha256=digest.hexdigest(),
        classes=np.asarray(classes, dtype=np.int8),
        eligible=np.asarray(elig, dtype=bool).reshape(len(task.kinds), n),
        offsets=np.asarray([0] + ends, dtype=np.int64), invalid=invalid,
    )


def _scan_quick(task: ScanTask) -> ScanResult:
    classes: list[int] = []
    offsets: list[int] = []
    invalid: list[tuple[int, str]] = []
    digest = hashlib.sha256()
    pos = 0
    with open(task.path, "rb", buffering=_BUF) as fh:
        for lineno, raw in enumerate(fh, start=1):
            digest.update(raw)
            offsets.append(pos)
            pos += len(raw)
            cls = quick_class(raw)
            if cls is None:
                try:
                    cls = BUGGY if parse_line(raw, where=f"{task.path}:{lineno}").example["has_bug"] else BUG_FREE
                except InvalidExample as exc:
                    if not task.skip_invalid:
                        raise
                    invalid.append((lineno, str(exc)))
                    cls = INVALID
            classes.append(cls)
    offsets.append(pos)
    return ScanResult(n_lines=len(classes), n_bytes=pos, sha256=digest.hexdigest(),
                      classes=np.asarray(classes, dtype=np.int8), eligible=None,
                      offsets=np.asarray(offsets, dtype=np.int64), invalid=invalid)


@dataclass(frozen=True)
class CheckTask:
    path: str
    lines: np.ndarray      # 1-based line numbers
    offsets: np.ndarray    # their byte offsets
    kind: NoiseKind
    skip_invalid: bool


def check_task(task: CheckTask) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """:func:`check_lines` for a worker process."""
    return check_lines(task.path, task.lines, task.offsets, task.kind, task.skip_invalid)


def check_lines(path: str, lines: np.ndarray, offsets: np.ndarray, kind: NoiseKind,
                skip_invalid: bool) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Parse and validate the given lines of one shard (random access); return eligibility for ``kind``.

    Invalid lines are ineligible and returned as ``(line, message)`` when ``skip_invalid``; otherwise
    the first one raises :class:`InvalidExample`.
    """
    result = np.zeros(len(lines), dtype=bool)
    invalid: list[tuple[int, str]] = []
    order = np.argsort(offsets, kind="stable")
    with open(path, "rb") as fh:
        for start in range(0, order.size, _CHECK_BATCH):   # edges checked a batch at a time
            batch = order[start:start + _CHECK_BATCH]
            raws = []
            for i in batch:
                fh.seek(int(offsets[i]))
                raws.append(fh.readline())
            parsed = parse_lines(raws, lambda b: f"{path}:{int(lines[batch[b]])}")
            for i, raw, line in zip(batch, raws, parsed):
                if isinstance(line, InvalidExample):
                    if not skip_invalid:
                        raise line
                    invalid.append((int(lines[i]), str(line)))
                    continue
                result[i] = kind.is_eligible(_for_kind(line, raw, kind))
    return result, invalid


@dataclass(frozen=True)
class WriteTask:
    src: str
    dst: str                      # temporary output path (renamed by the caller on success)
    shard_name: str
    split: str
    lines: np.ndarray             # int64, 1-based line numbers to noise, ascending
    kind_index: np.ndarray        # int64, index into kinds per selected line
    starts: np.ndarray            # int64, byte offset of each selected line
    ends: np.ndarray              # int64, byte offset just past each selected line
    n_lines: int                  # lines and size of src when it was scanned
    n_bytes: int
    kinds: tuple[NoiseKind, ...]
    levels: tuple[float, ...]
    seed: int


@dataclass
class WriteResult:
    n_lines: int
    n_bytes: int
    sha256: str
    manifest: dict[str, list]


def _noise_one(parsed: ParsedLine, raw: bytes, where: str, kind: NoiseKind, seed: int,
               sample_id: str) -> tuple[bytes, dict, dict]:
    """The noised line (same line terminator) and the example before and after."""
    example, edges_raw = parsed.example, parsed.edges_raw
    if kind.needs_edges and edges_raw is not None:
        example, edges_raw = dict(example, edges=loads(edges_raw)), None
    new = kind.apply(example, example_random(seed, kind.name, sample_id))
    if new is None:
        raise RuntimeError(f"{where}: noise kind {kind.name!r} refused an example it declared eligible")
    try:
        if edges_raw is not None and len(new["source_tokens"]) != len(example["source_tokens"]):
            validate_example(dict(new, edges=loads(edges_raw)))  # kept edges must still fit
        else:
            validate_example(new)
    except InvalidExample as exc:
        raise RuntimeError(f"{where}: noise kind {kind.name!r} produced an invalid example: {exc}") from None
    body = raw.rstrip(b"\r\n")
    encoded = encode_example(new, edges_raw=edges_raw, ensure_ascii=body.isascii())
    return encoded + raw[len(body):], example, new


def _read_at(fh, offset: int, size: int, path: str) -> bytes:
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise RuntimeError(f"{path}: ended early (did the file change?)")
    return data


def write_shard(task: WriteTask) -> WriteResult:
    """Copy ``task.src`` to ``task.dst``, replacing the selected lines by their noised version.

    The bytes between selected lines are copied as spans, through one reused buffer of
    ``_BLOCK`` bytes (no per-line objects, no large allocations: a fresh 4 MB buffer costs about
    1000 page faults), into the output and its digest. Returns the manifest columns for the noised
    lines.
    """
    manifest: dict[str, list] = {name: [] for name in MANIFEST_FIELDS}
    wanted = task.lines.tolist()
    kind_index = task.kind_index.tolist()
    starts, ends = task.starts.tolist(), task.ends.tolist()
    digest = hashlib.sha256()
    buf = memoryview(bytearray(_BLOCK))
    with open(task.src, "rb", buffering=0) as src, open(task.src, "rb", buffering=0) as lines_in, \
            open(task.dst, "wb", buffering=_BUF) as dst:
        size = os.fstat(src.fileno()).st_size
        if size != task.n_bytes:
            raise RuntimeError(f"{task.src}: {size} bytes now, {task.n_bytes} when it was scanned "
                               f"(did the file change?)")

        def copy_to(end: int) -> None:   # copy src from its position up to ``end``
            left = end - src.tell()
            while left > 0:
                n = src.readinto(buf[:min(left, _BLOCK)])
                if not n:
                    raise RuntimeError(f"{task.src}: ended early (did the file change?)")
                chunk = buf[:n]
                dst.write(chunk)
                digest.update(chunk)
                left -= n

        for done in range(0, len(wanted), _WRITE_BATCH):
            picked = range(done, min(done + _WRITE_BATCH, len(wanted)))
            raws = [_read_at(lines_in, starts[i], ends[i] - starts[i], task.src) for i in picked]
            # the scan ("all") or check_lines ("selected") already validated these lines
            parsed = parse_lines(raws, lambda b: f"{task.src}:{wanted[done + b]}", check_edges=False,
                                 validate=False)
            for i, raw, line in zip(picked, raws, parsed):
                lineno, k = wanted[i], kind_index[i]
                if isinstance(line, InvalidExample):
                    raise RuntimeError(f"{line} (did the file change since it was scanned?)")
                kind = task.kinds[k]
                sample_id = f"{task.shard_name}:{lineno}"
                noised, old, new = _noise_one(line, raw, f"{task.src}:{lineno}", kind, task.seed, sample_id)
                copy_to(starts[i])
                src.seek(ends[i])
                dst.write(noised)
                digest.update(noised)
                old_tokens, new_tokens = old["source_tokens"], new["source_tokens"]
                changed = sum(map(ne, old_tokens, new_tokens)) + abs(len(old_tokens) - len(new_tokens))
                for name, value in zip(MANIFEST_FIELDS, (
                        sample_id, task.split, kind.name, task.levels[k], task.seed, old["has_bug"],
                        new["has_bug"], old["error_location"], new["error_location"],
                        list(old["repair_targets"]), list(new["repair_targets"]), changed)):
                    manifest[name].append(value)
        copy_to(size)
    return WriteResult(n_lines=task.n_lines, n_bytes=size, sha256=digest.hexdigest(), manifest=manifest)
