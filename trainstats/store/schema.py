"""Row schema of a run directory: fixed key columns plus value columns declared per run.

See ``docs/store.md`` for the column-by-column description.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import pyarrow as pa

__all__ = [
    "SCHEMA_VERSION",
    "SPLITS",
    "KEY_COLUMNS",
    "PARTITION_COLUMNS",
    "STANDARD_STATS",
    "ValueColumn",
    "row_schema",
    "file_schema",
    "legacy_row_schema",
    "partitioning",
    "write_options",
]

#: 2: rows carry ``sample_id``; metadata under ``_trainstats/``. 1: older layout (``trainstats migrate``).
SCHEMA_VERSION = 2
SPLITS = ("train", "dev", "eval")

#: Columns stored inside every part file (the partition columns live in the path).
KEY_COLUMNS: dict[str, pa.DataType] = {
    "step": pa.int64(),
    "batch": pa.int32(),
    "sample_id": pa.dictionary(pa.int32(), pa.string()),
    "sample_key": pa.int64(),
    "noise": pa.bool_(),
    "noise_kind": pa.dictionary(pa.int32(), pa.string()),
    "attempt": pa.int32(),
}
_NULLABLE_KEYS = {"sample_id", "sample_key", "noise_kind"}
#: Schema version 1 stored the key in every row and the ids in a side table.
_LEGACY_KEY_COLUMNS = {k: v for k, v in KEY_COLUMNS.items() if k != "sample_id"}
PARTITION_COLUMNS: dict[str, pa.DataType] = {"split": pa.string(), "epoch": pa.int32()}

#: Per-head statistics the analysis understands, with their dtype.
STANDARD_STATS: dict[str, str] = {
    "loss": "float32",
    "gold_prob": "float32",
    "pred": "int64",
    "pred_prob": "float32",
    "correct": "bool",
    "margin": "float32",
}

#: Units of the ``margin`` stat: the ``unit`` of each head's margin column in ``run.json``, written by
#: the recorders. Margins of different units are not comparable (AUM over probabilities is not AUM
#: over logits); analysis shows each run's unit per head and warns when compared runs differ.
MARGIN_UNITS: dict[str, str] = {
    "logit": "best gold score minus best other score, on logits (the AUM of Pleiss et al. 2020)",
    "probability": "best gold probability minus best other probability, in [-1, 1]",
    "log-probability": ("log(p_gold + eps) - log(p_other + eps): the logit margin wherever both probabilities "
                        "are well above eps, clipped at about +-20.7 for eps = 1e-9"),
}

_DTYPES: dict[str, pa.DataType] = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = set(KEY_COLUMNS) | set(PARTITION_COLUMNS)


@dataclass(frozen=True)
class ValueColumn:
    """One value column declared for a run.

    Args:
        name: column name, an identifier (``loc_loss``); not a key column name.
        dtype: one of ``float32``, ``float64``, ``int32``, ``int64``, ``bool``.
        head: the model output / pointer head it belongs to (``None`` for per-sample context).
        stat: what it measures; analysis understands ``loss``, ``gold_prob``, ``pred``,
            ``pred_prob``, ``correct``, ``margin`` (see ``STANDARD_STATS``).
        unit: unit or range, e.g. ``"nats"``.
        description: one sentence for people.
    """

    name: str
    dtype: str
    head: str | None = None
    stat: str | None = None
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"Invalid value column name {self.name!r}: expected an identifier (letters, digits, _)."
            )
        if self.name in _RESERVED:
            raise ValueError(
                f"Value column name {self.name!r} is reserved for a key column; reserved: {sorted(_RESERVED)}."
            )
        if self.dtype not in _DTYPES:
            raise ValueError(
                f"Invalid dtype for value column {self.name!r}. Received: dtype={self.dtype!r}. "
                f"Expected one of {sorted(_DTYPES)}."
            )

    @property
    def arrow_type(self) -> pa.DataType:
        return _DTYPES[self.dtype]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "ValueColumn":
        return cls(**{k: obj.get(k) for k in ("name", "dtype", "head", "stat")},
                   unit=obj.get("unit", ""), description=obj.get("description", ""))


def check_value_columns(columns: Sequence[ValueColumn]) -> list[ValueColumn]:
    cols = list(columns)
    for c in cols:
        if not isinstance(c, ValueColumn):
            raise TypeError(f"value_columns must hold ValueColumn objects; received {type(c).__name__} {c!r}")
    names = [c.name for c in cols]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Value column names must be unique; repeated: {dupes}")
    return cols


def file_schema(columns: Sequence[ValueColumn], *, legacy: bool = False) -> pa.Schema:
    """Schema of one part file: key columns then value columns (partition columns excluded)."""
    keys = _LEGACY_KEY_COLUMNS if legacy else KEY_COLUMNS
    fields = [pa.field(n, t, nullable=(n in _NULLABLE_KEYS and not (legacy and n == "sample_key")))
              for n, t in keys.items()]
    fields += [pa.field(c.name, c.arrow_type, nullable=True) for c in columns]
    return pa.schema(fields)


def row_schema(columns: Sequence[ValueColumn]) -> pa.Schema:
    """Schema a reader sees: partition columns, key columns, value columns."""
    parts = [pa.field(n, t, nullable=False) for n, t in PARTITION_COLUMNS.items()]
    return pa.schema(parts + list(file_schema(columns)))


def legacy_row_schema(columns: Sequence[ValueColumn]) -> pa.Schema:
    """Row schema of a schema-version-1 part, plus ``sample_id`` (absent there, null when read)."""
    parts = [pa.field(n, t, nullable=False) for n, t in PARTITION_COLUMNS.items()]
    return pa.schema(parts + list(file_schema(columns, legacy=True)) + [pa.field("sample_id", KEY_COLUMNS["sample_id"])])


def write_options(columns: Sequence[ValueColumn]) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter`` options of every row part (measured in ``bench/store.py``).

    - zstd; dictionary encoding for ``sample_id`` (its dictionary page holds the ids once per part:
      ~3 bytes a row), the small key columns and integer/bool values;
    - ``BYTE_STREAM_SPLIT`` for floats, with pages of up to 131072 rows and 512 KiB so that each byte
      plane of a full float32 page is one 128 KiB zstd block (compressed on its own statistics);
    - no statistics for ``sample_id`` (min/max over strings cost as much as writing the column).
    """
    floats = [c.name for c in columns if c.dtype.startswith("float")]
    return dict(
        compression="zstd",
        use_dictionary=["sample_id", "noise_kind", "step", "batch", "attempt"]
        + [c.name for c in columns if not c.dtype.startswith("float")],
        column_encoding={name: "BYTE_STREAM_SPLIT" for name in floats} | {"sample_key": "PLAIN"},
        write_statistics=["step", "batch", "attempt", "noise", "sample_key"] + [c.name for c in columns],
        max_rows_per_page=131072,
        data_page_size=512 * 1024,
        dictionary_pagesize_limit=128 * 1024 * 1024,
    )


def partitioning():
    import pyarrow.dataset as ds

    return ds.partitioning(pa.schema(list(PARTITION_COLUMNS.items())), flavor="hive")
