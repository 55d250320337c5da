"""Compact int64 keys for human-readable sample ids.

A sample id is a string a person can read, e.g. ``dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300:17``
(``shard-file:line``). Rows store ``sample_key(id)``, an int64 that every recorder, the noise manifest
and the reader compute the same way, with no coordination between processes:

    sample_key(id) = int.from_bytes(blake2b(id.encode("utf-8"), digest_size=8).digest(),
                                    "little", signed=True)
"""
from __future__ import annotations

from hashlib import blake2b
from typing import Iterable, overload

import numpy as np

__all__ = ["sample_key"]


def _key(sample_id: str) -> int:
    digest = blake2b(sample_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


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
        return _key(ids)
    if isinstance(ids, np.ndarray) and ids.dtype.kind not in "UO":
        raise TypeError(f"sample ids must be strings; received an array of dtype {ids.dtype}")
    out = []
    for i in ids:
        if isinstance(i, bytes):
            i = i.decode("utf-8")
        elif not isinstance(i, str):
            raise TypeError(f"sample ids must be strings; received {type(i).__name__} {i!r}")
        out.append(_key(i))
    return np.array(out, dtype=np.int64)
