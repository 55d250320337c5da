"""Fill the ``noise`` / ``noise_kind`` columns from a noise manifest.

The store reads only two columns of a manifest: ``sample_id`` (str) and ``noise_kind`` (str), so any
table with those columns works (the noise inducer's ``noise_manifest.parquet`` does).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trainstats.store.key_index import KeyIndex
from trainstats.store.sample_ids import sample_key

__all__ = ["NoiseLookup"]


class NoiseLookup:
    """``sample_key -> kind`` table answering vectorised look-ups (through a :class:`KeyIndex`).

    ``lookup(keys)`` returns ``(noise, kind_codes)``: a bool array and an int32 array of indices into
    ``kinds`` (-1 where the sample is clean)."""

    def __init__(self, mapping: Mapping[str, str]):
        ids = list(mapping)
        kinds_per_id = [str(mapping[i]) for i in ids]
        self.kinds: list[str] = sorted(set(kinds_per_id))
        code_of = {k: i for i, k in enumerate(self.kinds)}
        keys = sample_key(ids) if ids else np.zeros(0, np.int64)
        self._index = KeyIndex()
        positions = self._index.add(keys)
        self._codes = np.zeros(len(self._index), np.int32)
        self._codes[positions] = np.array([code_of[k] for k in kinds_per_id], dtype=np.int32)

    def __len__(self) -> int:
        return len(self._index)

    @classmethod
    def from_source(cls, source: Any) -> tuple["NoiseLookup", str | None]:
        """Build from a manifest path, a ``{sample_id: kind}`` mapping or a DataFrame/Table with
        ``sample_id`` and ``noise_kind`` columns. Returns the lookup and a description for metadata."""
        if isinstance(source, (str, Path)):
            import pyarrow.parquet as pq

            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"noise manifest {path} does not exist (expected a Parquet file "
                                        "with columns sample_id and noise_kind)")
            table = pq.read_table(path)
            return cls._from_table(table, str(path)), str(path.resolve())
        if isinstance(source, Mapping):
            return cls(source), "<mapping>"
        try:
            import pyarrow as pa

            table = source if isinstance(source, pa.Table) else pa.Table.from_pandas(source)
        except Exception as e:  # noqa: BLE001 - explain what was expected
            raise TypeError(
                "noise_manifest must be a path to a Parquet manifest, a {sample_id: kind} mapping, or a "
                f"DataFrame/Table with columns sample_id and noise_kind; received {type(source).__name__}"
            ) from e
        return cls._from_table(table, "<table>"), "<table>"

    @classmethod
    def _from_table(cls, table, where: str) -> "NoiseLookup":
        missing = {"sample_id", "noise_kind"} - set(table.column_names)
        if missing:
            raise ValueError(f"noise manifest {where} lacks column(s) {sorted(missing)}; found "
                             f"{table.column_names} (expected sample_id and noise_kind)")
        ids = table.column("sample_id").to_pylist()
        kinds = table.column("noise_kind").to_pylist()
        return cls(dict(zip(ids, kinds)))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = self._index.lookup(keys)
        hit = pos >= 0
        if not len(self._codes):
            return hit, np.full(len(keys), -1, np.int32)
        return hit, np.where(hit, self._codes[np.where(hit, pos, 0)], -1).astype(np.int32)
