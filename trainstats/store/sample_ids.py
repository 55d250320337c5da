"""Sample ids (strings people read) and their compact int64 keys.

A sample id is a string a person can read, e.g. ``dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300:17``
(``shard-file:line``). Recorders carry ``sample_key(id)``, an int64 that every recorder, the noise
manifest and the reader compute the same way, with no coordination between processes:

    sample_key(id) = int.from_bytes(blake2b(id.encode("utf-8"), digest_size=8).digest(),
                                    "little", signed=True)

Row parts store the id itself (a dictionary-encoded string column: ~3 bytes a row, against 8 for a
random 64-bit key), so every Parquet reader sees it. :class:`IdTable` is the writer's side (keys of
a row group -> its ``sample_id`` column); :class:`IdMap` the reader's (ids -> keys, checked).
"""
from __future__ import annotations

from hashlib import blake2b
from typing import Iterable, Sequence, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trainstats.store.fingerprint import fingerprints
from trainstats.store.key_index import KeyIndex

__all__ = ["sample_key", "IdTable", "IdMap", "SAMPLE_ID_TYPE"]

SAMPLE_ID_TYPE = pa.dictionary(pa.int32(), pa.string())


def _digests(ids: Iterable[str | bytes]) -> np.ndarray:
    return np.frombuffer(b"".join([blake2b(i if isinstance(i, bytes) else i.encode("utf-8"),
                                           digest_size=8).digest() for i in ids]), dtype="<i8").astype(np.int64)


@overload
def sample_key(ids: str) -> int: ...
@overload
def sample_key(ids: Iterable[str]) -> np.ndarray: ...


def sample_key(ids):
    """Return the int64 key of one sample id (``int``) or of many (``np.ndarray[int64]``).

    >>> sample_key("a.txt:1") == sample_key(["a.txt:1"])[0]
    True
    """
    if isinstance(ids, str):
        return int(_digests([ids])[0])
    if isinstance(ids, np.ndarray) and ids.dtype.kind not in "UO":
        raise TypeError(f"sample ids must be strings; received an array of dtype {ids.dtype}")
    out = []
    for i in ids:
        if isinstance(i, bytes):
            i = i.decode("utf-8")
        elif not isinstance(i, str):
            raise TypeError(f"sample ids must be strings; received {type(i).__name__} {i!r}")
        out.append(i)
    return _digests(out) if out else np.zeros(0, np.int64)


class _Strings:
    """A growing string array by position: chunks kept geometrically sized (O(log n) of them)."""

    def __init__(self) -> None:
        self._chunks: list[pa.Array] = []

    def append(self, arr: pa.Array) -> None:
        self._chunks.append(arr)
        while len(self._chunks) > 1 and len(self._chunks[-2]) <= 2 * len(self._chunks[-1]):
            last = self._chunks.pop()
            self._chunks[-1] = pa.concat_arrays([self._chunks[-1], last])

    def take(self, positions: np.ndarray) -> pa.Array:
        """The strings at ``positions``, taken chunk by chunk (a take on the chunked array as a whole
        would first concatenate every chunk: a copy of all the ids for each call)."""
        if not self._chunks:
            return pa.array([], pa.string())
        positions = np.asarray(positions, np.int64)
        if len(self._chunks) > 1 and 2 * len(positions) >= sum(len(c) for c in self._chunks):
            self._chunks = [pa.concat_arrays(self._chunks)]  # most of them: one copy, then one take
        if len(self._chunks) == 1:
            return self._chunks[0].take(pa.array(positions))
        bounds = np.cumsum([0] + [len(c) for c in self._chunks])
        which = np.searchsorted(bounds, positions, side="right") - 1
        order = np.argsort(which, kind="stable")
        cut = np.searchsorted(which[order], np.arange(len(self._chunks) + 1))
        pieces = [c.take(pa.array(positions[order[cut[k]:cut[k + 1]]] - bounds[k]))
                  for k, c in enumerate(self._chunks)]
        inverse = np.empty(len(order), np.int64)
        inverse[order] = np.arange(len(order))
        return pa.concat_arrays(pieces).take(pa.array(inverse))

    def all(self) -> pa.Array:
        return pa.concat_arrays(self._chunks) if self._chunks else pa.array([], pa.string())


def _store_new(index: KeyIndex, strings: _Strings, keys: np.ndarray, ids: pa.Array) -> np.ndarray:
    """Add ``keys`` with their ``ids``; return positions and a mask of keys whose stored id differs."""
    n0 = len(index)
    pos = index.add(keys)
    fresh = np.flatnonzero(pos >= n0)
    check = np.ones(len(keys), bool)
    if len(fresh):
        first = np.empty(len(index) - n0, np.int64)
        first[(pos[fresh] - n0)[::-1]] = fresh[::-1]  # the first row of each new key gives its id
        strings.append(ids.take(pa.array(first)))
        check[first] = False
    differs = np.zeros(len(keys), bool)
    rows = np.flatnonzero(check)  # keys seen before, or repeated in this call: their id must agree
    if len(rows):
        stored = strings.take(pos[rows])
        differs[rows] = np.asarray(pc.fill_null(pc.not_equal(stored, ids.take(pa.array(rows))), True))
    return pos, differs


class IdTable:
    """A writer's registered ids: ``sample_key -> sample_id``, and the ``sample_id`` column of rows.

    Used from one thread (the writer's background thread). A key registered again with another id
    (two ids with one key: probability about n²/2⁶⁵) is *ambiguous*: its rows keep their key and get
    a null ``sample_id`` rather than a wrong one; :attr:`collisions` lists them."""

    def __init__(self) -> None:
        self._index = KeyIndex()
        self._ids = _Strings()
        self._ambiguous: set[int] = set()
        self.collisions: list[tuple[int, str, str]] = []
        self._last: tuple[np.ndarray, pa.Array] | None = None  # (ids used, dictionary) of the last part

    def __len__(self) -> int:
        return len(self._index)

    def add(self, keys: np.ndarray, ids: Sequence[str]) -> None:
        arr = pa.array(list(ids), pa.string())
        pos, differs = _store_new(self._index, self._ids, np.asarray(keys, np.int64), arr)
        for i in np.flatnonzero(differs):
            p = int(pos[i])
            if p not in self._ambiguous:
                self._ambiguous.add(p)
                self.collisions.append((int(keys[i]), self._ids.take(np.array([p]))[0].as_py(), arr[int(i)].as_py()))

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Each key's position in the table (``-1``: unregistered or ambiguous)."""
        pos = self._index.lookup(keys)
        if self._ambiguous:
            pos[np.isin(pos, np.fromiter(self._ambiguous, np.int64))] = -1
        return pos

    def column(self, keys: np.ndarray, pos: np.ndarray | None = None) -> tuple[pa.DictionaryArray, pa.Array]:
        """``(sample_id, sample_key)`` columns for rows with these keys (and their :meth:`positions`,
        when already looked up): the id where registered (its dictionary: the ids used, in
        registration order), else null and the key in ``sample_key``."""
        n = len(keys)
        if pos is None:
            pos = self.positions(keys)
        known = pos >= 0
        if not known.any():
            return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string())), \
                pa.array(keys, pa.int64())
        present = np.zeros(len(self._index), bool)
        present[pos[known]] = True
        codes = (np.cumsum(present, dtype=np.int32) - 1)[np.where(known, pos, 0)]
        if self._last is not None and np.array_equal(self._last[0], present):
            dictionary = self._last[1]  # the same samples as the last part (an epoch over one data set)
        else:
            dictionary = self._ids.take(np.flatnonzero(present))
            self._last = (present, dictionary)
        all_known = bool(known.all())
        ids = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=None if all_known else ~known),
                                             dictionary)
        key_col = pa.nulls(n, pa.int64()) if all_known else pa.array(keys, pa.int64(), mask=known)
        return ids, key_col


class IdMap:
    """The ``sample_id <-> sample_key`` pairs a reader has seen, checked: two ids with one key raise.

    Ids arrive as the dictionaries of ``sample_id`` chunks or as key/id pairs from a schema-1 side
    table. A dictionary entry is looked up by its :func:`~trainstats.store.fingerprint.fingerprints`
    value and confirmed by comparing the strings; only ids never seen before are hashed into keys
    (``blake2b``, ~0.6 µs each in Python) and checked for key collisions. A dictionary equal to a
    recent one is recognised at once."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._index = KeyIndex()
        self._ids = _Strings()
        self._recent: list[tuple[pa.Array, np.ndarray]] = []
        self._by_print = KeyIndex()                  # fingerprint -> slot
        self._print_pos = np.zeros(0, np.int64)      # slot -> position of the id that holds it

    def __len__(self) -> int:
        return len(self._index)

    @property
    def keys(self) -> np.ndarray:
        """Keys by position."""
        return self._index.keys

    def ids(self) -> pa.Array:
        """Ids by position."""
        return self._ids.all()

    def add(self, keys: np.ndarray, ids: pa.Array) -> np.ndarray:
        """Positions of these pairs (adding new ones); raise ``ValueError`` on a key collision."""
        ids = ids.cast(pa.string()) if ids.type != pa.string() else ids  # bytes: checked as UTF-8 once
        pos, differs = _store_new(self._index, self._ids, np.asarray(keys, np.int64), ids)
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            other = self._ids.take(pos[i:i + 1])[0].as_py()
            raise ValueError(f"{self.where}: sample ids {other!r} and {ids[i].as_py()!r} share sample_key "
                             f"{int(keys[i])}; rename one of them")
        return pos

    def positions(self, dictionary: pa.Array) -> np.ndarray:
        """Positions of the entries of a ``sample_id`` dictionary (string or binary), adding new ids."""
        for d, p in self._recent:
            if d is dictionary or (len(d) == len(dictionary) and d.equals(dictionary)):
                return p
        if dictionary.null_count:
            dictionary = pc.fill_null(dictionary, pa.scalar(b"" if pa.types.is_binary(dictionary.type) else "",
                                                            dictionary.type))
        prints = fingerprints(dictionary)
        pos = self._known(dictionary, prints)
        miss = np.flatnonzero(pos < 0)
        if len(miss):
            entries = dictionary.take(pa.array(miss)) if len(miss) < len(dictionary) else dictionary
            raw = entries.to_pylist()
            keys = _digests(raw) if pa.types.is_binary(entries.type) else sample_key(raw)
            pos[miss] = added = self.add(keys, entries)
            self._remember(prints[miss], added)
        self._recent = [(dictionary, pos)] + self._recent[:1]
        return pos

    def _known(self, dictionary: pa.Array, prints: np.ndarray) -> np.ndarray:
        """Positions of entries already seen (``-1`` for the rest), confirmed string by string."""
        pos = np.full(len(dictionary), -1, np.int64)
        slot = self._by_print.lookup(prints)
        found = np.flatnonzero(slot >= 0)
        if len(found):
            candidate = self._print_pos[slot[found]]
            mine = dictionary if len(found) == len(dictionary) else dictionary.take(pa.array(found))
            stored = self._ids.take(candidate)
            if not pa.types.is_string(mine.type):
                stored = stored.cast(mine.type)
            same = np.asarray(pc.equal(stored, mine).to_numpy(zero_copy_only=False), bool)
            pos[found[same]] = candidate[same]  # a shared fingerprint (another string) stays a miss
        return pos

    def _remember(self, prints: np.ndarray, positions: np.ndarray) -> None:
        n0 = len(self._by_print)
        slots = self._by_print.add(prints)
        if len(self._by_print) > len(self._print_pos):
            grown = np.zeros(max(len(self._by_print), 2 * len(self._print_pos)), np.int64)
            grown[: len(self._print_pos)] = self._print_pos
            self._print_pos = grown
        fresh = slots >= n0  # a fingerprint already held by another id keeps pointing there
        # reversed so that, within this call, the first id with a fingerprint keeps it
        self._print_pos[slots[fresh][::-1]] = positions[fresh][::-1]

    def ids_at(self, positions: np.ndarray) -> pa.Array:
        """Ids by position (null for a position without one)."""
        return self._ids.take(positions)

    def lookup_keys(self, keys: np.ndarray) -> np.ndarray:
        """Positions of keys seen with an id (``-1`` for the rest)."""
        return self._index.lookup(np.asarray(keys, np.int64))

    def ids_of(self, keys: np.ndarray) -> tuple[pa.Array, int]:
        """Ids aligned with ``keys`` (null where never seen) and how many were never seen."""
        pos = self._index.lookup(np.asarray(keys, np.int64))
        hit = pos >= 0
        ids = self._ids.take(np.where(hit, pos, 0)) if len(self._index) else pa.nulls(len(keys), pa.string())
        if not hit.all():
            ids = pc.if_else(pa.array(hit), ids, pa.scalar(None, pa.string()))
        return ids, int((~hit).sum())
