"""Level/seed selection: exactly ``round(level * n_class)`` examples per class, uniform over a split.

For one split and one class (buggy / bug-free) with ``n_class`` valid examples:

1. visit the class's examples in the seeded uniform random order of
   :func:`~trainstats.noise.rng.selection_order` (over the whole split, not shard by shard);
2. for each requested kind in order, take the first ``k = floor(level * n_class + 1/2)`` examples
   (round half up) that are eligible for that kind and not taken by an earlier kind.

The first ``k`` eligible examples of a uniform random order are a uniform random ``k``-subset of the
eligible ones, so each kind's selection is uniform over its eligible examples, and several kinds
get disjoint sets. ``n_class`` counts *all* valid examples of the class (eligible or not), so the
noised fraction of every class is the level; too few eligible examples is an error.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from trainstats.noise.rng import selection_order
from trainstats.noise.shardwork import BUG_FREE, BUGGY, ScanResult

__all__ = ["count_for_level", "select_split", "CLASS_NAMES"]

CLASS_NAMES = {BUGGY: "buggy", BUG_FREE: "bug_free"}


def count_for_level(level: float, n: int) -> int:
    """``round(level * n)`` with halves rounded up (Python's ``round`` would round them to even)."""
    return int(math.floor(level * n + 0.5 + 1e-9))


def select_split(scans: Sequence[ScanResult], *, kind_names: Sequence[str], levels: Sequence[float],
                 seed: int, split: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """Choose the examples of one split to noise.

    Args:
        scans: the scan results of the split's shards, in shard order.
        kind_names, levels: kinds in priority order and their levels (fractions in [0, 1]).

    Returns:
        ``(per_shard, stats)``: for every shard, ``(lines, kind_index)`` int64 arrays (1-based line
        numbers, ascending); ``stats[class_name]`` = ``{"n", "eligible": {kind: m}, "noised": {kind: k}}``.

    Raises:
        ValueError: a class has fewer eligible examples than a kind's count needs.
    """
    classes = np.concatenate([s.classes for s in scans]) if scans else np.zeros(0, np.int8)
    eligible = (np.concatenate([s.eligible for s in scans], axis=1) if scans
                else np.zeros((len(kind_names), 0), bool))
    kind_of = np.full(classes.shape[0], -1, dtype=np.int64)
    stats: dict[str, dict] = {}
    for cls in (BUGGY, BUG_FREE):
        members = np.flatnonzero(classes == cls)
        ordered = members[selection_order(seed, split, cls == BUGGY, members.size)]
        cstats = {"n": int(members.size), "eligible": {}, "noised": {}}
        for j, (name, level) in enumerate(zip(kind_names, levels)):
            k = count_for_level(level, members.size)
            free = ordered[eligible[j, ordered] & (kind_of[ordered] < 0)]
            cstats["eligible"][name] = int(eligible[j, members].sum())
            if free.size < k:
                raise ValueError(
                    f"split {split!r}: level {level} of kind {name!r} needs {k} of the {members.size} "
                    f"{CLASS_NAMES[cls]} examples, but only {free.size} are eligible"
                    + (" and not taken by an earlier kind" if j else ""))
            kind_of[free[:k]] = j
            cstats["noised"][name] = int(k)
        stats[CLASS_NAMES[cls]] = cstats
    per_shard = []
    start = 0
    for s in scans:
        part = kind_of[start:start + s.n_lines]
        idx = np.flatnonzero(part >= 0)
        per_shard.append(((idx + 1).astype(np.int64), part[idx].astype(np.int64)))
        start += s.n_lines
    return per_shard, stats
