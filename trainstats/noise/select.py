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
from typing import Callable, Sequence

import numpy as np

from trainstats.noise.rng import selection_order
from trainstats.noise.shardwork import BUG_FREE, BUGGY

__all__ = ["count_for_level", "select_split", "CLASS_NAMES"]

CLASS_NAMES = {BUGGY: "buggy", BUG_FREE: "bug_free"}


def count_for_level(level: float, n: int) -> int:
    """``round(level * n)`` with halves rounded up (Python's ``round`` would round them to even)."""
    return int(math.floor(level * n + 0.5 + 1e-9))


EligibleFn = Callable[[int, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def select_split(classes: np.ndarray, *, kind_names: Sequence[str], levels: Sequence[float], seed: int,
                 split: str, eligible_fn: EligibleFn) -> tuple[np.ndarray, dict]:
    """Choose the examples of one split to noise.

    Args:
        classes: int8 class code of every line of the split, in (shard, line) order
            (1 buggy, 0 bug-free, -1 invalid and skipped).
        kind_names, levels: kinds in priority order and their levels (fractions in [0, 1]).
        eligible_fn: ``(kind_index, line_indices) -> (eligible, invalid)`` bool arrays; called on
            candidates in selection order, in batches a little larger than still needed, so a
            caller can decode lines lazily.

    Returns:
        ``(kind_of, stats)``: ``kind_of[i]`` is the index of the kind that noises line ``i`` or -1;
        ``stats[class_name] = {"n", "noised": {kind: k}, "ineligible_seen": {kind: m}}``, where
        ``ineligible_seen`` counts the ineligible examples met before the kind's quota was filled.

    Raises:
        ValueError: a class has fewer eligible examples than a kind's count needs.
    """
    kind_of = np.full(classes.shape[0], -1, dtype=np.int64)
    stats: dict[str, dict] = {}
    for cls in (BUGGY, BUG_FREE):
        members = np.flatnonzero(classes == cls)
        ordered = members[selection_order(seed, split, cls == BUGGY, members.size)]
        cstats: dict = {"n": int(members.size), "noised": {}, "ineligible_seen": {}}
        for j, (name, level) in enumerate(zip(kind_names, levels)):
            k = count_for_level(level, members.size)
            free = ordered[kind_of[ordered] < 0]
            picked = seen_bad = pos = 0
            while picked < k and pos < free.size:
                need = k - picked
                batch = free[pos:pos + need + max(16, need // 20)]
                ok, invalid = eligible_fn(j, batch)
                accept = np.flatnonzero(ok)[:need]
                examined = accept[-1] + 1 if accept.size == need else batch.size
                seen_bad += int((~ok[:examined] & ~invalid[:examined]).sum())
                kind_of[batch[accept]] = j
                picked += accept.size
                pos += examined
            if picked < k:
                raise ValueError(
                    f"split {split!r}: level {level} of kind {name!r} needs {k} of the {members.size} "
                    f"{CLASS_NAMES[cls]} examples, but only {picked} are eligible"
                    + (" and not taken by an earlier kind" if j else ""))
            cstats["noised"][name] = int(k)
            cstats["ineligible_seen"][name] = seen_bad
        stats[CLASS_NAMES[cls]] = cstats
    return kind_of, stats
