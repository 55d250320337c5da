"""``trainstats noise IN_DIR OUT_DIR --kind KIND --level PCT --seed N``: noisy copy + noise manifest."""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainstats.noise import available_kinds

    parser.add_argument("in_dir", metavar="IN_DIR", help="GREAT shards: a shard file, a folder of shards, "
                        "or a folder of split sub-folders")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (same shard names), must be empty "
                        "unless --force; gets noise_manifest.parquet and noise_summary.json")
    parser.add_argument("--kind", required=True,
                        help=f"noise kind, or several comma-separated for disjoint samples; one of {available_kinds()}")
    parser.add_argument("--level", required=True,
                        help="percent of each class (buggy / bug-free) to noise, 0-100; comma-separated, one per kind. "
                             "A value such as 0.25 looks like a fraction and is refused: write 25, or 0.25%% for a "
                             "quarter of a percent")
    parser.add_argument("--seed", type=int, required=True, help="non-negative integer seed")
    parser.add_argument("--split", default=None, help="only the shards of this split")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="copy invalid lines unchanged (listed in the summary) instead of stopping")
    parser.add_argument("--validate", choices=("all", "selected"), default="all",
                        help="all (default): decode and check every line, stop at any bad one; selected: "
                             "fully decode only the lines drawn for noising (about 3x faster; other lines "
                             "are only checked to start with a has_bug field and end with '}')")
    parser.add_argument("--force", action="store_true", help="write into a non-empty OUT_DIR")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from trainstats.commands.percent import parse_percentages
    from trainstats.noise import induce_noise
    from trainstats.varmisuse import InvalidExample

    kinds = [k.strip() for k in args.kind.split(",")]
    try:
        levels = parse_percentages(args.level, flag="--level")
        summary = induce_noise(args.in_dir, args.out_dir, kind=kinds, level=levels, seed=args.seed,
                               split=args.split, skip_invalid=args.skip_invalid, validate=args.validate, force=args.force,
                               workers=args.workers, progress=not args.quiet)
    except (InvalidExample, ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"trainstats noise: error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{k}: {c['buggy']} buggy + {c['bug_free']} bug-free" for k, c in summary["counts"].items())
    print(f"noised {summary['n_noised']} of {summary['n_examples']} examples ({counts}) -> {args.out_dir}")
    if summary["invalid"]:
        print(f"copied {len(summary['invalid'])} invalid line(s) unchanged (listed in noise_summary.json)")
    return 0
