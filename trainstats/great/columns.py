"""The value columns a GREAT run records, and the numpy side of turning batch stats into rows.

No TensorFlow here: :func:`row_values` takes the numpy arrays that
:func:`trainstats.great.stats.per_sample_stats` produced.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from trainstats.store import ValueColumn

__all__ = ["GREAT_COLUMNS", "REPAIR_COLUMNS", "row_values"]

_HEADS = {"loc": "localization pointer", "rep": "repair pointer"}


def _head_columns(head: str) -> list[ValueColumn]:
    what = _HEADS[head]
    gold = "the gold location" if head == "loc" else "all repair targets (summed)"
    margin_unit = "logit"   # trainstats.store.MARGIN_UNITS
    null = "" if head == "loc" else " Null for bug-free samples."
    return [
        ValueColumn(f"{head}_loss", "float32", head=head, stat="loss", unit="nats",
                    description=f"per-sample loss of the {what} as GREAT computes it.{null}"),
        ValueColumn(f"{head}_gold_prob", "float32", head=head, stat="gold_prob", unit="[0, 1]",
                    description=f"probability the {what} puts on {gold}.{null}"),
        ValueColumn(f"{head}_pred", "int64", head=head, stat="pred", unit="token position",
                    description=f"argmax position of the {what}.{null}"),
        ValueColumn(f"{head}_pred_prob", "float32", head=head, stat="pred_prob", unit="[0, 1]",
                    description=f"probability of the {what}'s argmax position.{null}"),
        ValueColumn(f"{head}_correct", "bool", head=head, stat="correct",
                    description=("argmax equals the gold location" if head == "loc"
                                 else "target mass >= 0.5 (GREAT's repair accuracy).") + null),
        ValueColumn(f"{head}_margin", "float32", head=head, stat="margin", unit=margin_unit,
                    description=("gold logit minus the best other unmasked logit" if head == "loc" else
                                 "logsumexp of target logits minus the best non-target candidate logit")
                    + "; null when undefined." + null),
    ]


#: Every value column of a GREAT run (``recorder="great"``), in row order.
GREAT_COLUMNS: tuple[ValueColumn, ...] = (
    ValueColumn("has_bug", "bool", head=None, stat="has_bug",
                description="the example has a variable-misuse bug (error_location > 0)"),
    ValueColumn("n_tokens", "int32", head=None, stat="n_tokens", unit="tokens",
                description="source tokens of the example (GREAT's sequence length)"),
    ValueColumn("n_candidates", "int32", head=None, stat="n_candidates", unit="positions",
                description="repair candidate positions of the example"),
    *_head_columns("loc"),
    *_head_columns("rep"),
    ValueColumn("joint_correct", "bool", head="joint", stat="correct",
                description="buggy: loc_correct and rep_correct (GREAT's joint accuracy is its mean over "
                            "has_bug rows); bug-free: loc_correct"),
)

#: Columns that are null for bug-free samples.
REPAIR_COLUMNS: tuple[str, ...] = tuple(c.name for c in GREAT_COLUMNS if c.head == "rep")


def row_values(stats: Mapping[str, np.ndarray], n_tokens: np.ndarray) -> dict[str, np.ndarray]:
    """Map per-sample stats of one batch to ``RunWriter.write`` values.

    Args:
        stats: numpy arrays ``[B]`` keyed like :data:`trainstats.great.stats.STAT_KEYS`.
        n_tokens: int ``[B]`` sequence lengths.

    Returns:
        ``{column name: array}`` for every column of :data:`GREAT_COLUMNS`; repair columns are masked
        arrays with the bug-free rows masked (stored as null).
    """
    has_bug = np.asarray(stats["has_bug"], dtype=bool)
    bug_free = ~has_bug
    values: dict[str, np.ndarray] = {"n_tokens": np.asarray(n_tokens, dtype=np.int32)}
    for col in GREAT_COLUMNS:
        if col.name == "n_tokens":
            continue
        arr = np.asarray(stats[col.name])
        if col.name in REPAIR_COLUMNS:
            arr = np.ma.MaskedArray(arr, mask=bug_free)
        values[col.name] = arr
    return values
