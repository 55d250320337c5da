"""Per-sample scores as SQL over run directories, for engines people already run: DuckDB, Apache Spark.

A run directory is a plain hive-partitioned Parquet dataset (``RUN/split=*/epoch=*/*.parquet``,
``docs/store.md``), so the scores that are plain aggregates of a sample's rows are one ``GROUP BY``
away in any SQL engine. :data:`SCORE_SQL` gives each of them its aggregate, keyed by the names of
the score registry (:data:`~trainstats.analysis.scores.SCORE_NAMES`; the stat each score reads is
:data:`~trainstats.analysis.scores.SCORE_STATS`, its unit ``SCORE_UNITS``): the formulas themselves
are the docstrings of :mod:`trainstats.analysis.scores`. :func:`score_sql` writes the query for a
run's value columns in a dialect; :mod:`trainstats.analysis.sql_engines` runs it on DuckDB or Spark.

The scores of :data:`ORDER_DEPENDENT` are not aggregates: they follow the sequence of a sample's
appearances, which :class:`~trainstats.analysis.SampleStats` does in training order
(``trainstats analyze``). Agreement with the engine is tested (``tests/test_analysis_sql.py``):
equal to 1e-9 relative (sums in another order) and exactly for counts, epochs and 0/1 values.
Variability is ``STDDEV_POP``, which DuckDB and Spark compute with a numerically stable update
(Welford / a merge of central moments), like the engine's Chan merge.

Null semantics are the engine's: a null or NaN value (a stat undefined for the row) is skipped; a
sample without any defined value gets NULL (the engine's NaN); ``first_learned_epoch`` is ``+inf``
for a sample seen with a defined ``correct`` but never correct. Samples are grouped by the stored
``(sample_id, sample_key)`` pair: ``sample_key`` is stored only where the id is not
(``docs/store.md``), so it is NULL in the result for samples with an id
(``trainstats.sample_key(df.sample_id)`` computes it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from trainstats.analysis.columns import context_columns, discover_heads
from trainstats.analysis.scores import SCORE_NAMES, SCORE_STATS

__all__ = ["SCORE_SQL", "ORDER_DEPENDENT", "DIALECTS", "ROWS_GLOB", "ScoreSQL", "score_sql"]

#: the files of a run directory that hold its rows (hive partitioning gives ``split`` and ``epoch``)
ROWS_GLOB = "split=*/epoch=*/*.parquet"

#: training order as one number: ``epoch * 2**32 + step`` (steps below 2**32)
_ORDER = "(CAST(epoch AS BIGINT) * 4294967296 + step)"

#: stats stored as floats: NaN there means undefined, as in the engine (``analysis/source.py``)
_FLOAT_STATS = ("loss", "gold_prob", "margin")


@dataclass(frozen=True)
class ScoreSQL:
    """One score as a SQL aggregate over a sample's rows.

    ``template``: ``{v}`` is the head's column for the score's stat (NaN already turned into NULL),
    ``{inf}`` the dialect's +infinity, ``{order}`` the training order of a row."""

    score: str
    template: str


#: every per-sample score that is a plain aggregate (the rest: :data:`ORDER_DEPENDENT`)
SCORE_SQL: dict[str, ScoreSQL] = {s.score: s for s in (
    ScoreSQL("csl", "SUM({v})"),
    ScoreSQL("mean_loss", "AVG({v})"),
    ScoreSQL("aum", "AVG({v})"),
    ScoreSQL("confidence", "AVG({v})"),
    ScoreSQL("variability", "STDDEV_POP({v})"),
    ScoreSQL("correctness", "AVG(CAST({v} AS DOUBLE))"),
    ScoreSQL("first_learned_epoch",
             "COALESCE(CAST(MIN(CASE WHEN {v} THEN epoch END) AS DOUBLE), CASE WHEN COUNT({v}) > 0 THEN {inf} END)"),
    ScoreSQL("final_correct", "CAST(MAX_BY({v}, {order}) FILTER (WHERE {v} IS NOT NULL) AS DOUBLE)"),
)}

#: scores that need the order-dependent engine (``trainstats analyze``), and why
ORDER_DEPENDENT: dict[str, str] = {
    "forgetting_events": "counts correct -> incorrect transitions between consecutive appearances: a sequence, "
                         "not an aggregate (in SQL it needs a LAG window over each sample's rows in training "
                         "order, i.e. a sort of every row)",
    "learned_for_good_epoch": "the start of the last unbroken run of correct appearances: a sequence, not an "
                              "aggregate",
}

#: how each engine spells what ANSI SQL leaves open
DIALECTS: dict[str, dict[str, str]] = {
    "duckdb": {"inf": "CAST('infinity' AS DOUBLE)", "quote": '"'},
    "spark": {"inf": "CAST('Infinity' AS DOUBLE)", "quote": "`"},
}

if set(SCORE_SQL) | set(ORDER_DEPENDENT) != set(SCORE_NAMES) or set(SCORE_SQL) & set(ORDER_DEPENDENT):
    raise RuntimeError("trainstats.analysis.sql must place every score of SCORE_NAMES exactly once")  # pragma: no cover


def _quoter(dialect: str):
    q = DIALECTS[dialect]["quote"]

    def quote(name: str) -> str:
        if not name or not name.replace("_", "").isalnum():
            raise ValueError(f"column name {name!r} cannot be used in SQL here (letters, digits and '_' only)")
        return f"{q}{name}{q}"

    return quote


def score_sql(value_columns: Sequence[Mapping[str, Any]], *, dialect: str = "duckdb", rows: str = "rows",
              split: str = "train", by_run: bool = True) -> str:
    """The ``SELECT`` of every plain-aggregate score of every head, one row per sample.

    Args:
        value_columns: ``run.json``'s ``value_columns`` (``Run(d).metadata["value_columns"]``).
        dialect: ``"duckdb"`` or ``"spark"`` (:data:`DIALECTS`).
        rows: the relation holding the rows (a table or view with the row schema of docs/store.md).
        split: the split scored (``train``; ``dev`` on request), as in ``trainstats analyze --split``.
        by_run: group by a ``run`` column of ``rows`` too (several run directories in one relation).

    Columns, named and defined as in ``scores.parquet`` (docs/analysis.md): ``[run,] sample_key,
    sample_id, noise, noise_kind``, the context columns (e.g. ``has_bug``: the value at the sample's
    last appearance with one), then per head ``<head>_n`` (appearances with a defined ``correct``,
    or ``loss``) and ``<head>_<score>`` for each score of :data:`SCORE_SQL` whose stat the head
    records. Rows are ordered by the group keys.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {sorted(DIALECTS)}; received {dialect!r}")
    if split not in ("train", "dev", "eval"):
        raise ValueError(f"split must be 'train', 'dev' or 'eval'; received {split!r}")
    quote = _quoter(dialect)
    words = {"inf": DIALECTS[dialect]["inf"], "order": _ORDER}
    dtypes = {str(c["name"]): c.get("dtype") for c in value_columns}
    keys = [quote(k) for k in (["run"] if by_run else []) + ["sample_key", "sample_id"]]
    select = list(keys) + [f"BOOL_OR(noise) AS {quote('noise')}",
                           f"MAX(noise_kind) FILTER (WHERE noise) AS {quote('noise_kind')}"]
    for name in context_columns(value_columns).values():
        c = quote(name)
        last = f"MAX_BY({c}, {_ORDER}) FILTER (WHERE {c} IS NOT NULL)"
        select.append(f"{last if dtypes.get(name) == 'bool' else f'CAST({last} AS DOUBLE)'} AS {c}")
    for head, cols in discover_heads(value_columns).items():
        counted = [f"COUNT({quote(c)})" for s in ("correct", "loss") if (c := cols.get(s))]
        n = "0" if not counted else counted[0] if len(counted) == 1 else f"GREATEST({', '.join(counted)})"
        select.append(f"CAST({n} AS DOUBLE) AS {quote(head + '_n')}")
        for score in SCORE_NAMES:
            stat = SCORE_STATS[score]
            column = cols.get(stat)
            if score not in SCORE_SQL or column is None:
                continue
            v = quote(column)
            if stat in _FLOAT_STATS:  # NaN is undefined, as in the engine; sums in double precision
                v = f"(CASE WHEN isnan({v}) THEN NULL ELSE CAST({v} AS DOUBLE) END)"
            expr = SCORE_SQL[score].template.format(v=v, **words)
            select.append(f"{expr} AS {quote(f'{head}_{score}')}")
    return (f"SELECT {', '.join(select)}\nFROM {rows}\nWHERE split = '{split}'\n"
            f"GROUP BY {', '.join(keys)}\nORDER BY {', '.join(keys)}")
