"""Run :func:`~trainstats.analysis.sql.score_sql` on DuckDB (one machine) or Apache Spark (a cluster).

Both read the run directories' Parquet as it is stored (``RUN/split=*/epoch=*/*.parquet``), one
relation for all of them with a ``run`` column (each directory's path as given), so a study of 40
runs is one query. Neither needs trainstats on the workers: the query is plain SQL.

>>> from trainstats.analysis.sql_engines import duckdb_scores      # doctest: +SKIP
>>> duckdb_scores(["runs/noise10-seed0", "runs/noise20-seed0"])    # doctest: +SKIP
"""
from __future__ import annotations

import os
from functools import reduce
from pathlib import Path
from typing import Any

from trainstats.analysis.sql import ROWS_GLOB, score_sql

__all__ = ["check_runs", "duckdb_rows_sql", "duckdb_scores", "spark_rows", "spark_scores"]


def check_runs(run_dirs) -> tuple[list[Path], list[dict[str, Any]]]:
    """The run directories and their value columns, after checking that a plain Parquet reader sees
    exactly their rows (schema 2, no superseded rows left in the dataset) and that they share one
    layout (the same value columns, so one query scores them all)."""
    from trainstats.store import Run

    dirs = [Path(d) for d in ([run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else run_dirs)]
    if not dirs:
        raise ValueError("run_dirs is empty; expected at least one run directory")
    layouts = []
    for d in dirs:
        run = Run(d)
        if run.legacy:
            raise ValueError(f"{d} is a schema-1 run directory (ids outside the rows); upgrade it with "
                             f"`trainstats migrate {d}` before reading it with SQL")
        if run.pending:
            raise ValueError(f"{d}: rows superseded by a later attempt are still in the dataset (a move was "
                             f"interrupted); `trainstats migrate {d}` finishes it")
        layouts.append(list(run.metadata.get("value_columns") or []))
    first = [(c["name"], c.get("dtype")) for c in layouts[0]]
    for d, cols in zip(dirs[1:], layouts[1:]):
        got = [(c["name"], c.get("dtype")) for c in cols]
        if got != first:
            raise ValueError(f"{d} declares the value columns {got}; {dirs[0]} declares {first}. Score runs of "
                             "one layout together (one query per layout)")
    return dirs, layouts[0]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_rows_sql(run_dirs) -> str:
    """A DuckDB ``SELECT`` of the rows of the run directories with a ``run`` column: one
    ``read_parquet(RUN/split=*/epoch=*/*.parquet, hive_partitioning = true)`` per run, ``UNION ALL BY NAME``."""
    dirs, _ = check_runs(run_dirs)
    return "\nUNION ALL BY NAME\n".join(
        f"SELECT *, {_literal(str(d))} AS run FROM read_parquet({_literal(str(d / ROWS_GLOB))}, "
        "hive_partitioning = true, union_by_name = true)" for d in dirs)


def duckdb_scores(run_dirs, *, split: str = "train", connection=None):
    """The :data:`~trainstats.analysis.sql.SCORE_SQL` scores of one or more run directories, computed
    by DuckDB: a pandas DataFrame, one row per run and sample, with a ``run`` column (each run
    directory's path as given).

    Args:
        run_dirs: a run directory or several of one layout.
        split: the split scored (``train``; ``dev``/``eval`` on request).
        connection: a DuckDB connection to use (default: a new in-memory one; DuckDB's own settings,
            e.g. ``threads`` and ``memory_limit``, apply).
    """
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("duckdb_scores needs DuckDB: pip install 'trainstats[sql]'") from exc
    _, value_columns = check_runs(run_dirs)
    con = connection if connection is not None else duckdb.connect()
    con.execute(f"CREATE OR REPLACE TEMP VIEW trainstats_rows AS {duckdb_rows_sql(run_dirs)}")
    return con.execute(score_sql(value_columns, dialect="duckdb", rows="trainstats_rows", split=split)).df()


def spark_rows(spark, run_dirs):
    """The rows of one or more run directories as one Spark DataFrame with a ``run`` column (each
    directory's path as given): one ``spark.read.parquet(RUN/split=*/epoch=*/*.parquet)`` per run with
    ``basePath`` set, so ``split`` and ``epoch`` come from the partition folders, unioned by name."""
    try:
        from pyspark.sql import functions as F
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("spark_rows needs pyspark (and Java): pip install 'trainstats[spark]'") from exc
    dirs, _ = check_runs(run_dirs)
    frames = [spark.read.option("basePath", str(d)).parquet(str(d / ROWS_GLOB)).withColumn("run", F.lit(str(d)))
              for d in dirs]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def spark_scores(spark, run_dirs, *, split: str = "train", view: str = "trainstats_rows"):
    """The :data:`~trainstats.analysis.sql.SCORE_SQL` scores of one or more run directories, computed by
    Spark: a Spark DataFrame (lazy; ``.toPandas()`` or ``.write.parquet(...)``), one row per run and
    sample, with a ``run`` column. :func:`spark_rows` is registered as the temporary view ``view``."""
    _, value_columns = check_runs(run_dirs)
    spark_rows(spark, run_dirs).createOrReplaceTempView(view)
    return spark.sql(score_sql(value_columns, dialect="spark", rows=view, split=split))
