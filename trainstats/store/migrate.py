"""``migrate``: upgrade a run directory to the current layout in place, safely if interrupted.

Schema version 1 (``run.json``, ``attempts/``, ``writers/``, ``samples/`` and ``rows/`` at the top)
becomes version 2 (see :mod:`trainstats.store.layout`). Steps, each idempotent:

1. attempt and writer records are copied under ``_trainstats/`` (then the old copy removed);
2. each ``rows/`` part is rewritten into its partition folder at the top with a ``sample_id``
   column joined from ``samples/`` (checked), keeping only the rows the newest-attempt rule keeps;
   then the old part is removed, or — if the rule dropped rows from it — moved to ``_superseded/``;
3. ``samples/`` moves to ``_trainstats/v1-samples/`` (renamed ``*.parquet.v1``);
4. ``_trainstats/run.json`` (``schema_version`` 2, ``migrated_from``) is written and the top-level
   ``run.json`` removed: from this rename on the directory is version 2;
5. the emptied folders are removed.

Until step 4 the directory reads as version 1 (the reader lists ``rows/`` and the moved parts, each
part once); a migration killed at any point is finished by running it again. On a version-2
directory, ``migrate`` finishes an interrupted supersession (moves rows a newer attempt replaced).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainstats.store import durable
from trainstats.store import run_dir as rd
from trainstats.store.layout import Layout, PartName
from trainstats.store.sample_ids import SAMPLE_ID_TYPE, IdMap
from trainstats.store.schema import SCHEMA_VERSION, ValueColumn, file_schema, write_options
from trainstats.store.supersede import DROP, KEEP, attempt_starts, reconcile, verdict

__all__ = ["migrate"]


def migrate(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Upgrade ``run_dir`` in place to schema version 2; return what was done.

    Returns ``{"from_version", "to_version", "parts", "superseded_parts", "rows"}``: row parts
    rewritten, parts from which the newest-attempt rule dropped rows (kept under ``_superseded/``),
    rows now in the dataset. Raises ``NotARunDirectory`` / ``UnsupportedSchemaVersion`` /
    ``ValueError`` (two sample ids with one key in ``samples/``)."""
    layout = Layout(Path(run_dir))
    meta = rd.load_run_json(layout)
    columns = [ValueColumn.from_json(c) for c in meta.get("value_columns", [])]
    if not layout.legacy:
        changed = reconcile(layout, columns, attempt_starts(layout))
        _remove_empty_legacy_dirs(layout)
        return {"from_version": SCHEMA_VERSION, "to_version": SCHEMA_VERSION, "parts": 0,
                "superseded_parts": changed, "rows": None}
    layout.make_dirs()
    ids = IdMap(str(layout.root / "samples"))
    for f in layout.legacy_sample_files():
        t = pq.read_table(f, columns=["sample_key", "sample_id"])
        ids.add(t.column("sample_key").to_numpy(), t.column("sample_id").combine_chunks())
    for files, folder in ((layout.attempt_files(legacy=True), layout.attempts_dir),
                          (layout.writer_files(legacy=True), layout.writers_dir)):
        for p in files:
            durable.write_json_atomic(folder / p.name, json.loads(p.read_text(encoding="utf-8")), what="migrate json")
            durable.unlink(p, "migrate remove json")
    starts = attempt_starts(layout)
    parts = superseded = rows = 0
    for stale in layout.legacy_rows_dir.rglob(".tmp-*") if layout.legacy_rows_dir.is_dir() else []:
        stale.unlink(missing_ok=True)  # a dead writer's unfinished part: never data
    for split, epoch, path in layout.parts(base=layout.legacy_rows_dir):
        name = PartName.parse(path.name)
        table = pq.read_table(path)
        step = table.column("step")
        v = verdict(split, epoch, name.attempt, starts,
                    lambda: (int(pc.min(step).as_py()), int(pc.max(step).as_py())) if len(step) else (0, -1))
        target = layout.part_file(split, epoch, name)
        if v != DROP and not target.exists():
            kept = table if v == KEEP else table.filter(pc.less(step, v))
            if kept.num_rows:
                tmp = layout.tmp_dir / f"{name}.migrate.tmp"
                pq.write_table(_as_v2(kept, ids, columns), tmp, **write_options(columns))
                durable.fsync_file(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                durable.replace(tmp, target, "migrate part")
        parts += 1
        if v == KEEP:
            durable.unlink(path, "migrate remove part")
        else:
            superseded += 1
            archive = layout.superseded_file(target)
            archive.parent.mkdir(parents=True, exist_ok=True)
            durable.replace(path, archive, "migrate supersede part")
    layout.migrated_samples_dir.mkdir(parents=True, exist_ok=True)
    if layout.legacy_samples_dir.is_dir():
        for f in sorted(layout.legacy_samples_dir.glob("part-*.parquet")):
            durable.replace(f, layout.migrated_samples_dir / f"{f.name}.v1", "migrate samples")
    new_meta = {k: v for k, v in meta.items()}
    new_meta["schema_version"] = SCHEMA_VERSION
    new_meta["migrated_from"] = {"schema_version": meta["schema_version"], "at": rd.utc_now()}
    durable.write_json_atomic(layout.meta_dir / "run.json", new_meta, what="migrate run.json")
    durable.unlink(layout.root / "run.json", "migrate switch")
    _remove_empty_legacy_dirs(layout)
    for _, _, p in layout.parts():
        rows += pq.ParquetFile(p).metadata.num_rows
    return {"from_version": meta["schema_version"], "to_version": SCHEMA_VERSION, "parts": parts,
            "superseded_parts": superseded, "rows": rows}


def _as_v2(table: pa.Table, ids: IdMap, columns: list[ValueColumn]) -> pa.Table:
    """A schema-1 part's rows with ``sample_id`` (from the side table) and ``sample_key`` kept only
    where no id is known."""
    keys = table.column("sample_key").to_numpy()
    found, _ = ids.ids_of(keys)
    known = np.asarray(pc.is_valid(found))
    schema = file_schema(columns)
    cols = {}
    for f in schema:
        if f.name == "sample_id":
            cols[f.name] = pc.dictionary_encode(found).cast(SAMPLE_ID_TYPE)
        elif f.name == "sample_key":
            cols[f.name] = pa.array(keys, pa.int64(), mask=known)
        elif f.name in table.column_names:
            cols[f.name] = table.column(f.name).combine_chunks().cast(f.type)
        else:
            cols[f.name] = pa.nulls(table.num_rows, f.type)
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def _remove_empty_legacy_dirs(layout: Layout) -> None:
    """After the switch: the version-1 folders hold at most temp files of dead writers."""
    for leftover in layout.tmp_dir.glob("*.migrate.tmp"):
        leftover.unlink(missing_ok=True)
    for top in (layout.legacy_rows_dir, layout.legacy_samples_dir, layout.legacy_attempts_dir,
                layout.legacy_writers_dir):
        if not top.is_dir():
            continue
        for stale in top.rglob(".tmp-*"):
            stale.unlink(missing_ok=True)
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(d)
        _rmdir(top)


def _rmdir(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:  # not empty (a stray file someone put there): left alone
        pass
