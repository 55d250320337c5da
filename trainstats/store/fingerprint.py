"""``fingerprints``: a 64-bit fingerprint of every string of an Arrow array, computed in numpy.

The reader maps each part's ``sample_id`` dictionary to the ids it has seen before. Hashing every
entry with ``blake2b`` (the definition of ``sample_key``) costs about 0.6 µs an id in Python — 15 s
for a GREAT-scale run of 25 M rows whose parts each bring a new dictionary of 250 k ids. A
fingerprint needs no Python per string: the string's bytes are read as little-endian 64-bit words
(8 bytes at a time, in place in the Arrow data buffer; the last word masked to the string's
length) and folded, with the length, by ``h = (h ^ word) * M; h ^= h >> 32`` (``M`` = 2⁶⁴/φ).
About 15 ns an id for ids of ~55 bytes.

A fingerprint is not a key: two different strings may share one (probability ≈ n²/2⁶⁵). Callers
use it to *find* a known string and then compare the strings themselves
(:meth:`trainstats.store.sample_ids.IdMap.positions`), so a shared fingerprint costs time, never a
wrong id.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["fingerprints"]

_M = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(32)
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _offsets(arr: pa.Array) -> np.ndarray:
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    dtype, size = (np.int64, 8) if wide else (np.int32, 4)
    return np.frombuffer(arr.buffers()[1], dtype, count=len(arr) + 1, offset=arr.offset * size).astype(np.int64)


def fingerprints(arr: pa.Array) -> np.ndarray:
    """int64 fingerprint of each string of ``arr`` (string, binary or their large variants; no nulls).

    >>> import pyarrow as pa
    >>> a, b, c = fingerprints(pa.array(["train.txt:17", "train.txt:18", "train.txt:17"])).tolist()
    >>> a == c and a != b
    True
    """
    t = arr.type
    if not (pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t)
            or pa.types.is_large_binary(t)):
        raise TypeError(f"fingerprints needs a string or binary array; received {t}")
    if arr.null_count:
        raise ValueError("fingerprints needs an array without nulls (fill them first)")
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.int64)
    offsets = _offsets(arr)
    start, length = offsets[:-1], np.diff(offsets)
    h = np.empty(n, np.uint64)
    data = arr.buffers()[2]
    done = 0
    if data is not None and data.address % 8 == 0:  # read the words in place (Arrow aligns buffers)
        full = data.size // 8
        reach = ((start + np.maximum(length, 1) - 1) >> 3) + 1  # the last word a string's hash reads
        done = int(np.searchsorted(reach, full))  # a prefix: reach never decreases
        if done:
            h[:done] = _hash(np.frombuffer(data, "<u8", count=full), start[:done], length[:done])
    if done < n:  # the strings at the end of the buffer: from a copy with room for a word past them
        lo, hi = int(start[done]), int(offsets[-1])
        padded = np.zeros(((hi - lo) // 8 + 2) * 8, np.uint8)
        if hi > lo:
            padded[: hi - lo] = np.frombuffer(data, np.uint8, count=hi - lo, offset=lo)
        h[done:] = _hash(padded.view("<u8"), start[done:] - lo, length[done:])
    return h.view(np.int64)


def _hash(aligned: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Fold the strings at byte offsets ``start`` of the aligned words (each may read one word past its end)."""
    # the word at byte p = (aligned[p >> 3] >> 8r) | (aligned[(p >> 3) + 1] << (64 - 8r)), r = p & 7;
    # a string's words share r, and each aligned word read is also the next word's high part
    first = start >> 3
    shift = (start & 7).astype(np.uint64) * np.uint64(8)
    back = np.uint64(63) - shift  # (high << 1) << (63 - 8r) is high << (64 - 8r), and 0 for r = 0
    with np.errstate(over="ignore"):
        h = length.astype(np.uint64) * _M
        sel = None  # the strings still longer than w bytes (None: all of them)
        low = aligned[first]
        for w in range(0, int(length.max(initial=0)), 8):
            rest = length - w
            if sel is None and not (rest > 0).all():
                sel = np.flatnonzero(rest > 0)
                low = low[sel]
            elif sel is not None:
                keep = rest[sel] > 0
                if not keep.all():
                    sel, low = sel[keep], low[keep]
            i = slice(None) if sel is None else sel
            high = aligned[first[i] + (w >> 3) + 1]
            word = (low >> shift[i]) | ((high << np.uint64(1)) << back[i])
            h[i] = _fold(h[i], word, rest[i])
            low = high
    return h


def _fold(h: np.ndarray, word: np.ndarray, rest: np.ndarray) -> np.ndarray:
    short = rest < 8
    if short.any():  # keep only the string's own bytes of its last word
        bits = (np.minimum(rest, 8) * 8).astype(np.uint64)
        mask = np.where(short, (np.uint64(1) << np.where(short, bits, 0)) - np.uint64(1), _ONES)
        word = word & mask
    h = (h ^ word) * _M
    return h ^ (h >> _SHIFT)
