"""The GREAT command line (``run_model.py``'s arguments plus ``--stats``), shared by the drop-in script
``integrations/great/run_model_stats.py`` and ``trainstats great train``.

Nothing here imports TensorFlow before :func:`trainstats.great.checkout.load_checkout` has switched
``tf.keras`` to the legacy tf-keras.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["add_great_arguments", "monitor_options", "run_great", "main"]

log = logging.getLogger("trainstats.great")


def add_great_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """GREAT's own arguments (same names and meaning) plus trainstats' options."""
    parser.add_argument("data_path", help="Path to data root (with train/, dev/, eval/ shard folders)")
    parser.add_argument("vocabulary_path", help="Path to vocabulary file")
    parser.add_argument("config", help="Path to config file")
    parser.add_argument("-m", "--models", help="Directory to store trained models (optional)")
    parser.add_argument("-l", "--log", help="Path to store training log (optional)")
    parser.add_argument("-e", "--eval_only", help="Whether to run just the final model evaluation")
    parser.add_argument("--stats", metavar="RUN_DIR",
                        help="trainstats run directory for per-sample rows (omit: plain GREAT behaviour)")
    parser.add_argument("--noise-manifest", metavar="PARQUET",
                        help="noise manifest whose sample_id/noise_kind fill the noise columns")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed Python, numpy and TensorFlow before building the model (GREAT: unseeded)")
    parser.add_argument("--monitor", action="store_true",
                        help="live memorization monitor (needs --stats): signals per GREAT step in TensorBoard "
                             "(RUN_DIR/_trainstats/monitor) and onset detection; see docs/monitor.md")
    parser.add_argument("--on-onset", choices=["log", "stop", "restore"], default="log",
                        help="with --monitor, at the memorization onset: record it (default), stop training, or "
                             "stop and restore the onset step's weights")
    parser.add_argument("--onset-rule", choices=["auto", "flags", "loss"], default="auto",
                        help="with --monitor: onset rule (default auto: 'flags' with a noise manifest, else 'loss')")
    parser.add_argument("--onset-patience", type=int, default=2, metavar="N",
                        help="with --monitor: GREAT steps the memorization signal must keep rising (default 2)")
    return parser


def monitor_options(args: argparse.Namespace) -> dict | None:
    """``GreatMonitor`` keyword arguments from parsed ``--monitor`` flags (None without ``--monitor``)."""
    if not getattr(args, "monitor", False):
        return None
    return {"on_onset": args.on_onset, "rule": args.onset_rule, "patience": args.onset_patience}


def run_great(*, checkout: str | os.PathLike, data_path: str, vocabulary_path: str, config_path: str,
              models: str | None = None, log_path: str | None = None, eval_only: str | None = None,
              stats: str | None = None, noise_manifest: str | None = None, seed: int | None = None,
              echo: Callable[[str], None] = log.info, monitor: dict | None = None) -> int:
    """Run GREAT's train (or ``-e`` evaluation) from ``checkout`` with per-sample statistics.

    ``monitor``: :class:`trainstats.great.monitor.GreatMonitor` options (see :func:`monitor_options`)."""
    if monitor is not None and stats is None:
        raise ValueError("--monitor needs --stats RUN_DIR (the monitor reads the rows recorded there)")
    if monitor is not None and eval_only:
        raise ValueError("--monitor watches training; it does nothing with -e/--eval_only")
    from trainstats.great.checkout import load_checkout, seed_everything

    great = load_checkout(checkout)  # switches tf.keras to tf-keras first
    import yaml

    from trainstats.great import loop

    if noise_manifest is not None and stats is None:
        raise ValueError("--noise-manifest needs --stats RUN_DIR")
    with open(config_path) as fh:
        config = yaml.safe_load(fh)
    echo("Training with configuration: {}".format(config))
    data = great.make_data(data_path, config, vocabulary_path)
    if seed is not None:
        seed_everything(seed)
    run_config = {"checkout": str(great.path), "checkout_commit": great.commit, "data_path": str(data_path),
                  "vocabulary_path": str(vocabulary_path), "config_path": str(config_path), "seed": seed,
                  "models": models, "log": log_path}
    if eval_only:
        if models is None or log_path is None:
            raise ValueError("-e/--eval_only evaluates a trained model: give its checkpoints (-m) and log (-l)")
        loop.evaluate_checkpoint(great, data, config, model_path=models, log_path=log_path, stats_dir=stats,
                                 run_config=run_config, echo=echo)
    else:
        loop.train(great, data, config, model_path=models, log_path=log_path, stats_dir=stats,
                   noise_manifest=noise_manifest, run_config=run_config, echo=echo, monitor=monitor)
    return 0


def main(argv: Sequence[str] | None = None, *, checkout: str | os.PathLike) -> int:
    """Parse GREAT's arguments (plus ``--stats``...) and run; console lines go to stdout like GREAT's."""
    parser = add_great_arguments(argparse.ArgumentParser(
        description="GREAT's run_model.py with per-sample statistics (trainstats)"))
    args = parser.parse_args(argv)
    return run_great(checkout=Path(checkout), data_path=args.data_path, vocabulary_path=args.vocabulary_path,
                     config_path=args.config, models=args.models, log_path=args.log, eval_only=args.eval_only,
                     stats=args.stats, noise_manifest=args.noise_manifest, seed=args.seed,
                     echo=lambda line: print(line, flush=True), monitor=monitor_options(args))
