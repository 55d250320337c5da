"""Stream one split of a run into per-sample state: the pass behind :func:`~trainstats.analysis.analyze_run`.

Epoch partitions are read oldest first (the next one in a background thread while this one is
processed), each with only the columns analysis needs. Rows are numbered by sample in order of first
appearance, so the per-sample arrays only ever grow at the end: by the reader's own id positions
(:meth:`trainstats.store.Run.scan_positions`, one look-up per entry of a part's ``sample_id``
dictionary, none per row) — or, from the first row without an id (its writer never learned it), by
sample key through a :class:`~trainstats.store.key_index.KeyIndex` that continues the same
numbering. Rows are then ordered for the state updates:

* an epoch in which every sample appears at most once (the usual case) needs no exact order: its
  rows are bucketed by ``position >> shift`` with one radix sort of 16-bit bucket numbers, which
  makes the scattered updates of the per-sample arrays nearly sequential in memory;
* an epoch with repeated samples is sorted by ``(position, step)`` (stable), the order the
  order-dependent scores (forgetting, learned epochs) need.

At the end the samples are put in ascending ``sample_key`` order, so the results do not depend on
the order in which rows were read. Memory: O(samples + largest epoch).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trainstats.analysis.accumulate import STATS, SampleStats, _moved
from trainstats.analysis.columns import HeadColumns
from trainstats.analysis.epochs import epoch_metrics, keep_losses
from trainstats.analysis.source import as_bool, as_float
from trainstats.store import Run
from trainstats.store.key_index import KeyIndex

__all__ = ["STATS_USED", "SplitState", "scan_split"]

#: the per-head stats the per-sample scores and per-epoch metrics read
STATS_USED: tuple[str, ...] = STATS


@dataclass
class SplitState:
    """Per-sample results of one split, samples in ascending ``sample_key`` order."""

    keys: np.ndarray
    ids: pa.Array | None
    stats: dict[str, SampleStats]
    noise: np.ndarray
    kinds: np.ndarray
    context: dict[str, np.ndarray]


class _Samples:
    """The per-sample arrays of a split, grown geometrically as new samples appear."""

    def __init__(self, heads: dict[str, HeadColumns], context_names) -> None:
        self.capacity = 0
        self.stats = {name: SampleStats(0, stats=[s for s in STATS_USED if h.get(s) is not None])
                      for name, h in heads.items()}
        self.noise = np.zeros(0, bool)
        self.kind_code = np.zeros(0, np.int32)
        self.context = {name: np.zeros(0) for name in context_names}
        self.seen = np.zeros(0, bool)
        self.stamp = np.zeros(0, np.int32)

    def reserve(self, n: int) -> None:
        if n <= self.capacity:
            return
        new = max(n, self.capacity + self.capacity // 4, 1024)  # x1.25: little slack at 1.75 M samples
        same = np.arange(self.capacity)
        for st in self.stats.values():
            st.grow(same, new)
        self.noise = _moved(self.noise, same, new, False)
        self.kind_code = _moved(self.kind_code, same, new, -1)
        self.context = {k: _moved(v, same, new, np.nan) for k, v in self.context.items()}
        self.seen = _moved(self.seen, same, new, False)
        self.stamp = _moved(self.stamp, same, new, -1)
        self.capacity = new

    def unique(self, pos: np.ndarray) -> bool:
        """True when no position repeats (two random passes, no sort)."""
        rows = np.arange(len(pos), dtype=np.int32)
        self.stamp[pos] = rows  # a repeated position keeps its last row only
        return bool(np.array_equal(self.stamp[pos], rows))


def _row_order(pos: np.ndarray, step: np.ndarray, unique: bool, capacity: int) -> np.ndarray:
    if unique:
        shift = max(0, int(capacity - 1).bit_length() - 16)
        return np.argsort((pos >> shift).astype(np.uint16), kind="stable")  # radix sort: O(n)
    if len(step) < 2 or np.all(step[1:] >= step[:-1]):  # rows already in step order: one stable sort
        return np.argsort(pos, kind="stable")
    return np.lexsort((step, pos))


def scan_split(run_dir, split: str, heads: dict[str, HeadColumns], context: dict[str, str], msgs,
               metric_rows: list[dict], loss_parts: list | None, max_loss: int, progress: bool, *,
               with_ids: bool = True) -> SplitState:
    """Feed every epoch of ``split`` to one :class:`SampleStats` per head; append the per-epoch metric
    rows to ``metric_rows`` and (when given) the kept training losses to ``loss_parts``.

    The split is read through its own :class:`~trainstats.store.Run`, so the ids of other splits do
    not widen its arrays, and the reader's id table is freed when the scan returns (``ids``: the
    samples' ids, when ``with_ids``)."""
    src = Run(run_dir)
    epochs = src.epochs(split)
    numbering = _Numbering(src)
    samples = _Samples(heads, context.values())
    kinds: list[str] = []
    present = src.columns()
    wanted = ["sample_key", "step", "noise", "noise_kind"] + [c for h in heads.values() for s in STATS_USED
                                                             if (c := h.get(s)) in present] + \
        [c for c in context.values() if c in present]
    has_bug = context.get("has_bug")
    defined: dict[tuple[str, str], bool] = {}
    tables = _prefetch(src, split, epochs, list(dict.fromkeys(wanted)))
    if progress:
        from tqdm import tqdm

        tables = tqdm(tables, total=len(epochs), desc=f"{src.path.name} {split}", unit="epoch")
    for epoch, (t, id_pos) in tables:
        if t.num_rows == 0:
            continue
        step = t.column("step").to_numpy()
        pos = numbering.positions(id_pos, t.column("sample_key"))
        samples.reserve(numbering.size)
        unique = samples.unique(pos)
        order = _row_order(pos, step, unique, samples.capacity)
        idx = pos[order]
        samples.seen[idx] = True
        nz = as_bool(t.column("noise"))[order]
        if unique:
            samples.noise[idx] |= nz
        else:
            np.logical_or.at(samples.noise, idx, nz)
        if nz.any():
            kcol = pc.cast(t.column("noise_kind"), pa.string())
            for k in pc.unique(kcol).to_pylist():
                if k is not None and k not in kinds:
                    kinds.append(k)
            codes = np.asarray(pc.fill_null(pc.index_in(kcol, value_set=pa.array(kinds, pa.string())), -1)
                               .to_numpy())[order]
            samples.kind_code[idx[codes >= 0]] = codes[codes >= 0]
        for name, arr in samples.context.items():
            if name in t.column_names:
                v = as_float(t.column(name), order)
                ok = ~np.isnan(v)
                arr[idx[ok]] = v[ok]
        bug = as_float(t.column(has_bug), order) if has_bug in t.column_names else None
        ep = np.broadcast_to(np.int64(epoch), idx.shape)  # one value per row, no array of them
        sampled = _LossOrder(numbering, idx) if loss_parts is not None else None
        for hname, h in heads.items():
            vals = {s: as_float(t.column(h.get(s)), order) for s in STATS_USED if h.get(s) in t.column_names}
            samples.stats[hname].update_sorted(idx, ep, unique=unique, **vals)
            for s, v in vals.items():
                defined[(hname, s)] = defined.get((hname, s), False) or bool((~np.isnan(v)).any())
            epoch_metrics(metric_rows, split, epoch, hname, vals, nz, bug, idx, unique)
            if sampled is not None and "loss" in vals:
                o = sampled.order()
                keep_losses(loss_parts, epoch, hname, vals["loss"][o], nz[o], max_loss)
    for (hname, s), ok in defined.items():
        if not ok:
            msgs.add(f"{src.path.name}: head {hname}: '{s}' is null in every {split} row; scores and metrics "
                     f"from it skipped")
    state, positions = _in_key_order(numbering, samples, kinds)
    if with_ids:
        state.ids = numbering.ids(positions)
    return state


class _Numbering:
    """Dense sample positions: the reader's id positions while every row has an id, then (from the
    first row without one) a KeyIndex over sample keys seeded with the same numbering."""

    def __init__(self, src: Run) -> None:
        self.src = src
        self.size = 0
        self.index: KeyIndex | None = None

    def positions(self, id_pos: np.ndarray, stored_key: pa.ChunkedArray) -> np.ndarray:
        orphan = id_pos < 0
        if self.index is None and not orphan.any():
            if len(id_pos):
                self.size = max(self.size, int(id_pos.max()) + 1)
            return id_pos
        if self.index is None:
            self.index = KeyIndex(self.src.keys_at(np.arange(self.size)))  # positions 0..size-1 kept
        keys = np.empty(len(id_pos), np.int64)
        keys[~orphan] = self.src.keys_at(id_pos[~orphan])
        keys[orphan] = pc.fill_null(stored_key, 0).to_numpy()[orphan]
        pos = self.index.add(keys)
        self.size = len(self.index)
        return pos

    def keys(self, positions: np.ndarray) -> np.ndarray:
        return self.src.keys_at(positions) if self.index is None else self.index.keys[positions]

    def ids(self, positions: np.ndarray) -> pa.Array:
        """Ids of dense positions (null for a sample whose rows carry no id)."""
        if self.index is None:
            return self.src.ids_at(positions)
        return self.src.sample_ids(self.index.keys[positions])[0]


class _LossOrder:
    """The rows in order of their key's leading 16 bits (keys are hashes, so every k-th row in this
    order is a pseudo-random sample); computed once per epoch, on first use."""

    def __init__(self, numbering: _Numbering, idx: np.ndarray) -> None:
        self._numbering, self._idx, self._order = numbering, idx, None

    def order(self) -> np.ndarray:
        if self._order is None:
            keys = self._numbering.keys(self._idx)
            top = (keys.view(np.uint64) >> np.uint64(48)) ^ np.uint64(0x8000)  # signed order
            self._order = np.argsort(top.astype(np.uint16), kind="stable")
        return self._order


def _in_key_order(numbering: _Numbering, samples: _Samples, kinds: list[str]) -> tuple[SplitState, np.ndarray]:
    """The seen samples' state in ascending key order, and their dense positions in that order."""
    n = numbering.size
    positions = np.flatnonzero(samples.seen[:n])
    keys = numbering.keys(positions)
    by_key = np.argsort(keys, kind="stable")
    rank = np.empty(len(keys), np.int64)
    rank[by_key] = np.arange(len(keys))
    mask = np.zeros(samples.capacity, bool)
    mask[positions] = True
    for st in samples.stats.values():
        st.keep(mask)
        st.grow(rank, len(keys))
    noise = _moved(samples.noise[mask], rank, len(keys), False)
    kind_code = _moved(samples.kind_code[mask], rank, len(keys), -1)
    context = {name: _moved(v[mask], rank, len(keys), np.nan) for name, v in samples.context.items()}
    kind_arr = np.array(kinds + [None], dtype=object)[np.where(kind_code >= 0, kind_code, len(kinds))]
    return SplitState(keys[by_key], None, samples.stats, noise, kind_arr, context), positions[by_key]


def _prefetch(src, split, epochs, columns):
    """Yield ``(epoch, table)`` in order, reading the next epoch in a thread while this one is processed."""
    if not epochs:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainstats-read") as pool:
        pending = pool.submit(src.scan_positions, split, epochs[0], columns)
        for i, epoch in enumerate(epochs):
            table = pending.result()
            if i + 1 < len(epochs):
                pending = pool.submit(src.scan_positions, split, epochs[i + 1], columns)
            yield epoch, table
