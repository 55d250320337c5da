"""What the live memorization monitor costs, as a share of an epoch.

Part 1, the demo: the demo's model and data (``trainstats.demo.DEFAULT``: built from the standard
library, 50 % label noise) trained ``--rounds`` times with ``PerSampleStats`` alone (A) and with
``PerSampleStats`` + ``MemorizationMonitor(on_onset="restore")`` (B, the costliest mode: it also copies
the weights every epoch), alternating A B B A ... in one process. Printed: median epoch time of A and B,
and the monitor's median time per epoch (every moment spent in its epoch-end hook and row listener,
timed inside them: rows held, signals, onset rules, TensorBoard, files, weight copy; the first epoch of
each fit, which also pays one-time set-up, printed apart) as a share of A's median epoch. Target <= 1 %.

Part 2, GREAT scale: :class:`MonitorCore` plus the TensorBoard writer on synthetic GREAT rows (heads
``loc``/``rep``/``joint``, 250 k training rows per GREAT step as in GREAT's ``valid_interval``, 25 k
held-out rows; the 1.75 M training samples streamed in order, 250 k new ones per step): seconds per GREAT step, to set
against a GREAT step's training time (minutes).

    .venv/bin/python bench/monitor_overhead.py [--rounds 2] [--epochs 4] [--max-functions N] [--skip-demo]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data(out: Path, settings):
    from trainstats.noise import MANIFEST_NAME, induce_noise
    from trainstats.varmisuse.builder import build_varmisuse

    clean = out / "clean"
    build_varmisuse(None, clean, seed=0, max_functions=settings.max_functions,
                    split_fractions=settings.split_fractions, max_tokens=settings.max_tokens, overwrite=True,
                    progress=False)
    noisy = out / "noisy"
    induce_noise(clean, noisy, kind="label", level=0.5, seed=0, split="train", force=True, workers=1,
                 progress=False)
    return clean, noisy, noisy / MANIFEST_NAME


def _fit(clean, noisy, manifest, run_dir, settings, *, monitor: bool):
    """One training like the demo's ``train_run``; returns (epoch seconds, monitor seconds)."""
    import keras

    from trainstats.keras import MemorizationMonitor, with_ids
    from trainstats.models import (SubtokenVocab, batch_by_length, build_varmisuse_model, compile_varmisuse_model,
                                   element_dataset, load_encoded, varmisuse_callback)
    from trainstats.varmisuse import iter_examples

    s = settings
    vocab = SubtokenVocab.build((ex["source_tokens"] for _, ex in iter_examples(noisy, split="train")),
                                max_size=s.vocab_size)
    train = load_encoded(noisy, vocab, split="train", max_tokens=s.max_tokens)
    dev = load_encoded(clean, vocab, split="dev", max_tokens=s.max_tokens)
    keras.utils.set_random_seed(0)
    model = build_varmisuse_model(s.model, vocab_size=len(vocab), max_subtokens=vocab.max_subtokens, hidden=s.hidden,
                                  num_layers=s.num_layers, num_heads=s.num_heads, dropout=s.dropout)
    compile_varmisuse_model(model, learning_rate=s.learning_rate)
    batching = dict(max_tokens=s.max_tokens, token_budget=s.token_budget, max_batch=s.max_batch)
    train_ds = batch_by_length(with_ids(element_dataset(train), train.sample_ids).shuffle(len(train), seed=0),
                               **batching).prefetch(2)
    dev_ds = batch_by_length(with_ids(element_dataset(dev), dev.sample_ids), **batching).prefetch(2)
    capture = varmisuse_callback(run_dir, noise_manifest=str(manifest), resume=False)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    callbacks = [Timer(), capture]
    mon, spent = None, []
    if monitor:
        # patience above the epoch count: the restore mode's weight copies run every epoch, nothing stops
        mon = MemorizationMonitor(capture, on_onset="restore", patience=s.epochs + 1)

        class Probe(keras.callbacks.Callback):  # the monitor's time so far, after its epoch-end work
            def on_epoch_end(self, epoch, logs=None):
                spent.append(mon._seconds)

        callbacks += [mon, Probe()]
    model.fit(train_ds, validation_data=dev_ds, epochs=s.epochs, verbose=0, callbacks=callbacks)
    per_epoch = [b - a for a, b in zip([0.0] + spent, spent)]
    return times, per_epoch, len(train)


def demo_part(args) -> None:
    from trainstats.demo import DEFAULT

    settings = DEFAULT.replace(epochs=args.epochs)
    if args.max_functions:
        settings = settings.replace(max_functions=args.max_functions)
    tmp = Path(tempfile.mkdtemp(prefix="trainstats-monitor-bench-"))
    try:
        clean, noisy, manifest = _data(tmp, settings)
        epochs = {False: [], True: []}
        monitor_s, first, n_train = [], [], 0
        order = [False, True, True, False] * ((args.rounds + 1) // 2)
        for i, monitored in enumerate(order[:2 * args.rounds]):
            times, mon_s, n_train = _fit(clean, noisy, manifest, tmp / f"run{i}", settings, monitor=monitored)
            epochs[monitored] += times[1:]  # the first epoch traces the step functions
            if monitored:
                first.append(mon_s[0])
                monitor_s += mon_s[1:]
        a, b = statistics.median(epochs[False]), statistics.median(epochs[True])
        per_epoch = statistics.median(monitor_s)
        print(f"demo ({settings.model}, {n_train} training examples, {settings.epochs} epochs x {args.rounds} rounds "
              f"per arm; first epoch of each fit left out)")
        print(f"  median epoch: stats only {a:.3f} s, stats + monitor {b:.3f} s (ratio {b / a:.3f})")
        print(f"  monitor's own time: median {1000 * per_epoch:.1f} ms per epoch = {100 * per_epoch / a:.2f} % of "
              f"an epoch (epochs: {', '.join(f'{1000 * m:.0f}' for m in monitor_s)} ms; first epoch of each fit, "
              f"with one-time set-up: {', '.join(f'{1000 * m:.0f}' for m in first)} ms)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def great_part(args) -> None:
    import numpy as np

    from trainstats.analysis.monitoring import MonitorCore
    from trainstats.great.columns import GREAT_COLUMNS, row_values
    from trainstats.summaries import SummaryWriter

    rng = np.random.default_rng(0)
    n_samples, per_step, dev_n, batch = 1_750_000, 250_000, 25_000, 2_500
    tmp = Path(tempfile.mkdtemp(prefix="trainstats-monitor-great-"))
    try:
        core = MonitorCore(GREAT_COLUMNS, out_dir=tmp, head=None, rule="auto", patience=2, min_delta=0.0)
        writer = SummaryWriter(tmp)

        def rows(n):
            has_bug = rng.random(n) < 0.5
            fit = rng.random(n) < 0.6
            loss = np.where(fit, rng.gamma(1.0, 0.1, n), rng.gamma(2.0, 1.0, n)).astype(np.float32)
            stats = {"has_bug": has_bug, "n_candidates": np.full(n, 5, np.int32), "joint_correct": fit}
            for h in ("loc", "rep"):
                stats.update({f"{h}_loss": loss, f"{h}_gold_prob": np.exp(-loss), f"{h}_pred": np.zeros(n, np.int64),
                              f"{h}_pred_prob": np.full(n, 0.5, np.float32), f"{h}_correct": fit,
                              f"{h}_margin": rng.normal(0, 1, n).astype(np.float32)})
            return row_values(stats, np.full(n, 100, np.int32))

        chunks = [rows(batch) for _ in range(8)]  # reused value arrays: generation is not what is timed
        seconds = []
        all_keys = rng.permutation(n_samples).astype(np.int64) * 7919 + 1  # GREAT streams its training set
        for step in range(args.great_steps):
            start = (step * per_step) % n_samples
            keys = np.take(all_keys, np.arange(start, start + per_step), mode="wrap")
            noise = rng.random(per_step) < 0.25
            t0 = time.perf_counter()
            for b in range(per_step // batch):
                sl = slice(b * batch, (b + 1) * batch)
                core.add("train", sample_key=keys[sl], step=step, values=chunks[b % 8], noise=noise[sl],
                         noise_kind="label")
            for b in range(dev_n // batch):
                core.add("dev", sample_key=np.arange(b * batch, (b + 1) * batch, dtype=np.int64), step=step,
                         values=chunks[b % 8])
            result = core.end_epoch(step)
            writer.write(step, result.scalars, result.histograms)
            core.write_files()
            seconds.append(time.perf_counter() - t0)
        writer.close()
        print(f"GREAT scale ({per_step:,} train + {dev_n:,} dev rows per GREAT step, {core.live._keys.size:,} samples "
              f"seen, {len(result.scalars)} scalars/step): {statistics.median(seconds):.2f} s per GREAT step "
              f"(median of {len(seconds)}; steps: {', '.join(f'{s:.2f}' for s in seconds)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="fits per arm (A/B alternated)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit")
    parser.add_argument("--max-functions", type=int, default=None, help="(default: the demo's)")
    parser.add_argument("--great-steps", type=int, default=5)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-great", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    if not args.skip_demo:
        demo_part(args)
    if not args.skip_great:
        great_part(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
