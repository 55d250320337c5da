"""``trainstats build-varmisuse [SRC_DIR] OUT_DIR``: GREAT VarMisuse shards from Python source.

Examples::

    trainstats build-varmisuse data/stdlib                 # the running interpreter's stdlib
    trainstats build-varmisuse ~/src/myproject data/mine --seed 1 --max-functions 5000
    trainstats build-varmisuse --with-stdlib ~/src/a ~/src/b data/abc   # several trees, one dataset
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [SRC_DIR ...] OUT_DIR [--with-stdlib] [--seed N] [--max-functions N] [options]"
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="[SRC_DIR ...] OUT_DIR: the source trees (directories searched for *.py, or "
                             "files; default: the running interpreter's standard library), built as one "
                             "dataset split by file, and the output directory")
    parser.add_argument("--with-stdlib", action="store_true",
                        help="add the running interpreter's standard library to the SRC_DIRs given")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the split, the bugs and the shuffle (default 0)")
    parser.add_argument("--max-functions", type=int, default=None,
                        help="stop after this many functions (two examples each)")
    parser.add_argument("--split-by", choices=("file", "directory"), default="file",
                        help="unit assigned to one split (default: file)")
    parser.add_argument("--split-fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                        metavar=("TRAIN", "DEV", "EVAL"),
                        help="fractions of files per split (default 0.8 0.1 0.1)")
    parser.add_argument("--max-tokens", type=int, default=512,
                        help="longest function kept, in tokens (default 512)")
    parser.add_argument("--examples-per-shard", type=int, default=500,
                        help="lines per shard file (default 500)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument("--license", default=None,
                        help='licence recorded in provenances (default "unknown"; "PSF-2.0" for the stdlib)')
    parser.add_argument("--overwrite", action="store_true", help="replace shards already in OUT_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from trainstats.varmisuse.builder import build_varmisuse, default_source_dir

    *trees, out = args.paths
    if args.with_stdlib or not trees:
        trees = [None, *trees]
    src = trees[0] if len(trees) == 1 else trees
    try:
        summary = build_varmisuse(
            src, out, seed=args.seed, max_functions=args.max_functions, split_by=args.split_by,
            split_fractions=tuple(args.split_fractions), max_tokens=args.max_tokens,
            examples_per_shard=args.examples_per_shard, workers=args.workers, license=args.license,
            overwrite=args.overwrite, progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        print(f"trainstats build-varmisuse: {e}", file=sys.stderr)
        return 2
    print(f"source: {', '.join(str(default_source_dir() if t is None else t) for t in trees)}")
    print(f"files: {summary.n_files} found, {summary.n_files_used} read, "
          f"{len(summary.skipped_files)} skipped")
    for item in summary.skipped_files[:10]:
        print(f"  skipped {item['reason']}")
    if len(summary.skipped_files) > 10:
        print(f"  ... {len(summary.skipped_files) - 10} more in {out}/build_summary.json")
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(summary.skipped_functions.items()))
    print(f"functions: {summary.n_functions} seen, {summary.n_functions_used} used"
          + (f" (skipped: {skipped})" if skipped else ""))
    for split in summary.examples:
        print(f"  {split}: {summary.examples[split]} examples ({summary.buggy[split]} buggy) from "
              f"{summary.files[split]} files in {summary.shards[split]} shards")
    print(f"wrote {out} in {summary.seconds:.1f} s")
    return 0
