"""``trainstats inspect RUN_DIR``: what a run directory holds, without loading its rows."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by trainstats")
    parser.add_argument("--json", action="store_true", help="print the merged metadata as JSON")


def run(args: argparse.Namespace) -> int:
    from trainstats.store import NotARunDirectory, Run, UnsupportedSchemaVersion

    try:
        run = Run(args.run_dir)
    except (NotARunDirectory, UnsupportedSchemaVersion) as e:
        print(f"trainstats inspect: {e}", file=sys.stderr)
        return 2
    meta = run.metadata
    if args.json:
        print(json.dumps(meta, indent=2, default=str))
        return 0
    print(f"run {meta['run_id']}  recorder={meta['recorder']}  created {meta['created_at']}")
    print(f"versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    if run.legacy:
        print(f"layout: schema_version {run.schema_version} (older layout; `trainstats migrate {args.run_dir}` "
              "upgrades it in place so that any Parquet reader sees exactly the run)")
    elif run.pending:
        print("layout: rows superseded by a newer attempt are still in the dataset (a move was interrupted); "
              f"trainstats hides them, `trainstats migrate {args.run_dir}` moves them to _superseded/")
    if meta.get("config"):
        print("config: " + json.dumps(meta["config"], default=str))
    print("value columns:")
    for c in meta["value_columns"]:
        head = c.get("head") or "-"
        print(f"  {c['name']:<20} {c['dtype']:<8} head={head:<8} stat={c.get('stat') or '-':<10} {c.get('unit') or ''}")
    for a in meta["attempts"]:
        start = a.get("start")
        where = f"from {start['split']} epoch {start['epoch']} step {start['step']}" if start else "(no rows)"
        print(f"attempt {a['attempt']}: started {a['started_at']} {where}")
    print(f"rows written {meta['rows_written']:,}, dropped {meta['rows_dropped']:,}, errors {len(meta['errors'])}")
    for e in meta["errors"]:
        print(f"  error (attempt {e['attempt']}, writer {e['writer']}): {e['type']}: {e['message']}")
    table = run.dataset().to_table(columns=["split", "epoch", "noise"])
    if table.num_rows:
        counts = table.group_by(["split", "epoch"]).aggregate([("noise", "count"), ("noise", "sum")])
        counts = counts.sort_by([("split", "ascending"), ("epoch", "ascending")]).to_pylist()
        print("rows (newest attempt wins):")
        for row in counts:
            print(f"  {row['split']:<5} epoch {row['epoch']:>3}: {row['noise_count']:>10,} rows, "
                  f"{row['noise_sum']:,} noisy")
    return 0
