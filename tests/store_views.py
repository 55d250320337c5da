"""Helpers for the store tests: each reader's view of a run directory, in one comparable form."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

import trainstats
from trainstats.store import Run

KEY = ["split", "epoch", "step", "batch", "sample_id"]


def _canonical(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in columns})
    out["epoch"] = out["epoch"].astype(int)
    for c in ("step", "batch", "attempt"):
        out[c] = out[c].astype(int)
    for c in ("split", "sample_id", "noise_kind"):
        out[c] = [None if v is None else str(v) for v in out[c]]
    return out.sort_values(KEY + ["attempt"], na_position="first").reset_index(drop=True)


def stored_columns(run: Path) -> list[str]:
    """The columns every reader is compared on: all of them but ``sample_key`` (which files store
    only where ``sample_id`` is null and ``trainstats.read`` fills in)."""
    return [c for c in Run(run).columns() if c != "sample_key"]


def trainstats_view(run: Path) -> pd.DataFrame:
    return _canonical(trainstats.read(run), stored_columns(run))


def plain_views(run: Path) -> dict[str, pd.DataFrame]:
    """What pandas, pyarrow, Polars and DuckDB see of the directory, with no trainstats involved."""
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    cols = stored_columns(run)
    glob = f"{run}/split=*/epoch=*/*.parquet"
    views = {
        "pandas": pd.read_parquet(run),
        "pyarrow": ds.dataset(run, partitioning="hive").to_table().to_pandas(),
        "polars": pl.scan_parquet(glob, hive_partitioning=True).collect().to_pandas(),
        "duckdb": duckdb.sql(f"select * from read_parquet('{glob}', hive_partitioning=true)").df(),
    }
    return {name: _canonical(df, cols) for name, df in views.items()}


def assert_every_reader_sees_the_run(run: Path) -> pd.DataFrame:
    """Each plain reader returns exactly ``trainstats.read``'s rows (ids included); returns them."""
    expect = trainstats_view(run)
    for name, got in plain_views(run).items():
        pd.testing.assert_frame_equal(got, expect, check_dtype=False, obj=f"{name} view of {run}")
    return expect
