"""GREAT shard file names: ``<split>__VARIABLE_MISUSE__SStuB.txt-NNNNN-of-NNNNN``."""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["SHARD_PATTERN", "shard_name", "parse_shard_name", "list_shards"]

#: Matches a GREAT shard basename; groups ``split``, ``index``, ``total`` (5-digit, zero-padded).
SHARD_PATTERN = re.compile(
    r"^(?P<split>[A-Za-z0-9][A-Za-z0-9_.-]*?)__VARIABLE_MISUSE__SStuB\.txt-(?P<index>\d{5})-of-(?P<total>\d{5})$"
)
_SPLIT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def shard_name(split: str, index: int, total: int) -> str:
    """Return the basename of shard ``index`` (0-based) of ``total`` for ``split``.

    >>> shard_name("dev", 24, 300)
    'dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300'
    """
    if not isinstance(split, str) or not _SPLIT_PATTERN.match(split) or "__" in split:
        raise ValueError(f"invalid split {split!r}: expected letters, digits, '_', '.', '-' (no '__')")
    for name, value in (("index", index), ("total", total)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, received {type(value).__name__} {value!r}")
    if not (0 < total <= 99999 and 0 <= index < total):
        raise ValueError(f"expected 0 <= index < total <= 99999, received index={index}, total={total}")
    return f"{split}__VARIABLE_MISUSE__SStuB.txt-{index:05d}-of-{total:05d}"


def parse_shard_name(name: str | os.PathLike) -> tuple[str, int, int] | None:
    """Return ``(split, index, total)`` for a shard basename (or path), or None if it is not one."""
    m = SHARD_PATTERN.match(Path(name).name)
    if m is None:
        return None
    return m["split"], int(m["index"]), int(m["total"])


def list_shards(dir_or_file: str | os.PathLike, split: str | None = None) -> list[Path]:
    """Return the GREAT shard files at ``dir_or_file``, sorted by (split, index).

    Args:
        dir_or_file: a shard file (returned as is, whatever its name), a directory of shards, or a
            directory whose sub-directories (e.g. ``train/``, ``dev/``, ``eval/``) hold shards, used
            when it holds none itself.
        split: keep only shards of this split (for a single file whose name is a shard name, a
            different split is an error).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a directory holds no matching shard.
    """
    path = Path(dir_or_file)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {str(path)!r}")
    if path.is_file():
        parsed = parse_shard_name(path)
        if split is not None and parsed is not None and parsed[0] != split:
            raise ValueError(f"{str(path)!r} is a shard of split {parsed[0]!r}, not of the requested {split!r}")
        return [path]

    def matching(folder: Path) -> list[Path]:
        found = []
        for child in folder.iterdir():
            parsed = parse_shard_name(child.name)
            if parsed is not None and child.is_file() and (split is None or parsed[0] == split):
                found.append(child)
        return found

    shards = matching(path)
    if not shards:
        for sub in sorted(p for p in path.iterdir() if p.is_dir()):
            shards.extend(matching(sub))
    if not shards:
        wanted = f"of split {split!r} " if split is not None else ""
        raise ValueError(
            f"no GREAT shards {wanted}in {str(path)!r}: expected files named like "
            f"{shard_name(split or 'train', 0, 1)!r}")
    return sorted(shards, key=lambda p: (parse_shard_name(p.name), str(p)))
