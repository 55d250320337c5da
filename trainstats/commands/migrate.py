"""``trainstats migrate RUN_DIR [RUN_DIR ...]``: upgrade run directories to the current layout in place."""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by trainstats")


def run(args: argparse.Namespace) -> int:
    from trainstats.store import NotARunDirectory, UnsupportedSchemaVersion, migrate

    status = 0
    for run_dir in args.run_dirs:
        try:
            done = migrate(run_dir)
        except (NotARunDirectory, UnsupportedSchemaVersion, ValueError) as e:
            print(f"trainstats migrate: {e}", file=sys.stderr)
            status = 2
            continue
        if done["from_version"] == done["to_version"]:
            extra = (f"; moved superseded rows out of {done['superseded_parts']} part(s)"
                     if done["superseded_parts"] else "")
            print(f"{run_dir}: already schema_version {done['to_version']}{extra}")
        else:
            print(f"{run_dir}: schema_version {done['from_version']} -> {done['to_version']}: "
                  f"{done['parts']} part(s) rewritten with sample_id, {done['superseded_parts']} held superseded "
                  f"rows (kept under _superseded/), {done['rows']:,} rows in the dataset")
    return status
