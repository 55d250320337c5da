"""Which value columns a run recorded, grouped by head, and what the run was (noise level/kind/seed).

Analysis never hard-codes column names: it reads the ``value_columns`` declared in ``run.json``
(each ``{"name", "dtype", "head", "stat", ...}``) and groups them by ``head``. Columns with
``head`` null are per-sample context (e.g. ``has_bug``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["STATS", "HeadColumns", "RunInfo", "discover_heads", "context_columns", "run_info"]

#: the per-head stats analysis understands (docs/store.md, "Value columns")
STATS: tuple[str, ...] = ("loss", "gold_prob", "pred", "pred_prob", "correct", "margin")


@dataclass(frozen=True)
class HeadColumns:
    """The row columns holding one head's stats: ``columns[stat] -> column name``, and the units
    the run declared for them (``units[stat]``; ``""`` when none)."""

    head: str
    columns: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def get(self, stat: str) -> str | None:
        """Column name for ``stat`` or None when the run did not record it."""
        return self.columns.get(stat)

    @property
    def margin_unit(self) -> str | None:
        """Unit of the head's margin (``trainstats.store.MARGIN_UNITS``: ``logit``, ``probability``,
        ``log-probability``; another string for runs recorded before units were fixed); None when
        the head has no margin column or declared no unit."""
        if "margin" not in self.columns:
            return None
        return self.units.get("margin") or None


def _check_value_columns(value_columns: Any) -> Sequence[Mapping[str, Any]]:
    if not isinstance(value_columns, (list, tuple)):
        raise TypeError(
            f"value_columns must be a list of column declarations; received {type(value_columns).__name__}"
        )
    for i, col in enumerate(value_columns):
        if not isinstance(col, Mapping) or "name" not in col:
            raise ValueError(
                f"value_columns[{i}] must be a mapping with at least 'name', 'head', 'stat'; received {col!r}"
            )
    return value_columns


def discover_heads(value_columns: Sequence[Mapping[str, Any]]) -> dict[str, HeadColumns]:
    """Group declared value columns by head.

    Args:
        value_columns: ``read_metadata(run_dir)["value_columns"]``.

    Returns:
        ``{head: HeadColumns}`` in declaration order, only heads with at least one known stat
        (``STATS``). Columns with ``head`` null are context, see :func:`context_columns`.
    """
    heads: dict[str, dict[str, str]] = {}
    units: dict[str, dict[str, str]] = {}
    for col in _check_value_columns(value_columns):
        head, stat = col.get("head"), col.get("stat")
        if head is None or stat not in STATS:
            continue
        if str(stat) not in heads.setdefault(str(head), {}):
            heads[str(head)][str(stat)] = str(col["name"])
            units.setdefault(str(head), {})[str(stat)] = str(col.get("unit") or "")
    return {h: HeadColumns(h, cols, units.get(h, {})) for h, cols in heads.items()}


def context_columns(value_columns: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per-sample context columns (``head`` null): ``{stat: column name}``, e.g. ``{"has_bug": "has_bug"}``."""
    out: dict[str, str] = {}
    for col in _check_value_columns(value_columns):
        if col.get("head") is None:
            out.setdefault(str(col.get("stat") or col["name"]), str(col["name"]))
    return out


@dataclass(frozen=True)
class RunInfo:
    """What a run was, for putting runs side by side.

    ``noise_level`` is a fraction in [0, 1] (a config value > 1 is read as a percentage).
    Each field is None when neither the config nor the directory name tells it.
    """

    run: str
    noise_level: float | None
    noise_kind: str | None
    seed: int | None


_LEVEL_RE = re.compile(r"(?:noise|level|lvl)[-_=]?(\d+(?:\.\d+)?)", re.IGNORECASE)
_SEED_RE = re.compile(r"seed[-_=]?(\d+)", re.IGNORECASE)


def _as_level(value: Any) -> float | None:
    try:
        level = float(value)
    except (TypeError, ValueError):
        return None
    return level / 100.0 if level > 1.0 else level


def run_info(run_dir: str | Path, metadata: Mapping[str, Any]) -> RunInfo:
    """Read noise level, kind and seed of a run.

    Sources, first hit wins: ``run.json`` ``config["noise_level"]``, ``config["noise_kind"]``,
    ``config["seed"]``; then the run directory name (``noise50``, ``level_0.25``, ``seed3`` …).
    """
    path = Path(run_dir)
    config = metadata.get("config") or {}
    if not isinstance(config, Mapping):
        config = {}
    level = _as_level(config.get("noise_level"))
    kind = config.get("noise_kind")
    seed = config.get("seed")
    name = path.name
    if level is None:
        m = _LEVEL_RE.search(name)
        level = _as_level(m.group(1)) if m else None
    if seed is None:
        m = _SEED_RE.search(name)
        seed = int(m.group(1)) if m else None
    try:
        seed = None if seed is None else int(seed)
    except (TypeError, ValueError):
        seed = None
    return RunInfo(run=name, noise_level=level, noise_kind=None if kind is None else str(kind), seed=seed)
