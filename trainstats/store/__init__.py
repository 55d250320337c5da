"""The per-sample stats store: run directories that are plain hive-partitioned Parquet (``docs/store.md``).

Writing: :class:`RunWriter` with :class:`ValueColumn` declarations. Reading: :class:`Run` (the one
reader of the layout: metadata, splits, epochs, partition scans, checked ids), :func:`read` (pandas),
:func:`open_dataset` (pyarrow, out of core), :func:`read_metadata`. Upgrading an older run directory:
:func:`migrate`. This package imports no TensorFlow: any framework can write to it and any tool can
read it.
"""
from trainstats.store.errors import NotARunDirectory, StoreWriteError, UnsupportedSchemaVersion
from trainstats.store.migrate import migrate
from trainstats.store.reader import open_dataset, read, read_metadata, read_samples, value_columns
from trainstats.store.run import Run
from trainstats.store.run_dir import claim_attempt, files_dir, monitor_dir
from trainstats.store.sample_ids import sample_key
from trainstats.store.schema import MARGIN_UNITS, SCHEMA_VERSION, SPLITS, STANDARD_STATS, ValueColumn
from trainstats.store.writer import RunWriter

__all__ = [
    "NotARunDirectory",
    "Run",
    "RunWriter",
    "SCHEMA_VERSION",
    "SPLITS",
    "MARGIN_UNITS",
    "STANDARD_STATS",
    "StoreWriteError",
    "UnsupportedSchemaVersion",
    "ValueColumn",
    "claim_attempt",
    "files_dir",
    "migrate",
    "open_dataset",
    "read",
    "read_metadata",
    "monitor_dir",
    "read_samples",
    "sample_key",
    "value_columns",
]
