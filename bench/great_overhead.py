"""Overhead of trainstats' GREAT instrumentation: samples/s of the instrumented vs the plain training loop.

Needs a GREAT checkout (VHellendoorn/ICLR20-Great) and GREAT-format data with a ``train/`` folder::

    python bench/great_overhead.py --checkout /path/to/ICLR20-Great --data DATA_ROOT [--family great]

Both loops train one tiny model (hidden 64, 2 layers) in this process, in interleaved blocks of
``--block`` batches: the plain loop is GREAT's update (``trainstats.great.loop.train_step``, the step
``run_model.py`` makes) on GREAT's own ``DataLoader.batcher``; the instrumented loop is the same step on :class:`trainstats.great.IdBatcher` plus per-sample stats from
the same forward pass and a ``RunWriter`` row write per batch (into a temporary run directory). A
second pair runs both steps on the same batches held in memory, isolating the cost of the stats and
row writes from the input pipelines. Prints per-round samples/s and median ratios (target: overhead
<= 3 %, i.e. ratio >= 0.97).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TINY = {
    "model": {"configuration": "great", "base": {"hidden_dim": 64, "dropout_rate": 0.1, "num_edge_types": 24},
              "rnn": {"num_layers": 2}, "ggnn": {"time_steps": [1, 1], "residuals": {"1": [0]}, "add_type_bias": True},
              "transformer": {"ff_dim": 128, "num_layers": 2, "attention_dim": 64, "num_heads": 4}},
    "data": {"max_batch_size": 2000, "max_buffer_size": 5, "max_sequence_length": 256, "valid_interval": 10 ** 9,
             "max_valid_samples": 100, "max_token_length": 10},
    "training": {"max_steps": 1, "print_freq": 10 ** 9, "learning_rate": 0.0001},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", default=os.environ.get("TRAINSTATS_GREAT_CHECKOUT"), required=False)
    ap.add_argument("--data", required=True, help="data root with a train/ folder of GREAT shards")
    ap.add_argument("--family", default="great", help="model configuration, e.g. great, ggnn, 'rnn great rnn'")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block", type=int, default=8, help="batches per timed block")
    args = ap.parse_args()
    if not args.checkout:
        ap.error("--checkout (or TRAINSTATS_GREAT_CHECKOUT) is required")

    from trainstats.great.checkout import load_checkout, seed_everything

    great = load_checkout(args.checkout)
    import tensorflow as tf

    from trainstats.great.batching import IdBatcher
    from trainstats.great.loop import train_step
    from trainstats.great.recorder import GreatRecorder
    from trainstats.great.stats import per_sample_stats_fn

    config = TINY
    config["model"]["configuration"] = args.family
    data = great.make_data(args.data, config, Path(args.checkout) / "vocab.txt")
    seed_everything(0)
    model = great.meta_model.VarMisuseModel(config["model"], data.vocabulary.vocab_dim)
    model.run_dummy_input()
    optimizer = tf.optimizers.Adam(config["training"]["learning_rate"])
    losses, accs, counts = great.run_model.get_metrics()
    recorder = GreatRecorder(Path(tempfile.mkdtemp(prefix="great-bench-")) / "run")

    share = {"instr": 0.0, "step": 0.0}  # calling-thread CPU seconds in instrumented steps

    def step(batch, record: bool, n: int) -> int:
        """The loop's own train_step, then what the instrumented loop adds: one row write."""
        t0 = time.thread_time()
        out = train_step(model, optimizer, batch, with_stats=False)
        if record:  # the loop computes the same stats from the same logits inside train_step
            t1 = time.thread_time()
            stats = per_sample_stats_fn(out.logits, out.token_mask, batch[2], batch[3], batch[4])
            recorder.write_batch(split="train", epoch=0, step=n, batch=n, sample_ids=batch[5].numpy(),
                                 n_tokens=batch[6].numpy(), stats=stats)
            share["instr"] += time.thread_time() - t1
        great.run_model.update_metrics(losses, accs, counts, out.token_mask, out.losses, out.accuracies,
                                       tf.reduce_sum(tf.clip_by_value(batch[2], 0, 1)))
        samples = int(tf.shape(out.token_mask)[0].numpy())  # GREAT syncs here too (tracker.update_samples)
        if record:
            share["step"] += time.thread_time() - t0
        return samples

    plain_it = iter(data.batcher(mode="train"))
    inst_it = iter(IdBatcher(data).batcher("train"))
    cached = [b for _, b in zip(range(args.block), IdBatcher(data).batcher("train"))]
    n = 0

    def block(mode: str) -> tuple[float, float]:
        """(samples per wall second, samples per CPU second of this process) over one block.

        'plain'/'inst' read their pipelines; 'cached-*' reuse batches held in memory. CPU time counts
        every thread of this process (pipelines, writer thread) and is less disturbed by other load.
        """
        nonlocal n
        record = mode.endswith("inst")
        source = cached if mode.startswith("cached") else None
        samples, start, cpu = 0, time.perf_counter(), time.process_time()
        for i in range(args.block):
            batch = source[i] if source else next(inst_it if record else plain_it)
            samples += step(batch, record, n)
            n += 1
        return samples / (time.perf_counter() - start), samples / (time.process_time() - cpu)

    modes = ["plain", "inst", "cached-plain", "cached-inst"]
    for mode in modes:  # trace every path once
        block(mode)
    share.update(instr=0.0, step=0.0)
    ratios: dict[tuple[str, int], list[float]] = {(k, c): [] for k in ("pipeline", "cached") for c in (0, 1)}
    print(f"family={args.family} block={args.block} batches, tf {tf.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for r in range(args.rounds):
        order = modes[r % 4:] + modes[:r % 4]
        rate = {m: block(m) for m in order}
        for c in (0, 1):
            ratios["pipeline", c].append(rate["inst"][c] / rate["plain"][c])
            ratios["cached", c].append(rate["cached-inst"][c] / rate["cached-plain"][c])
        print(f"round {r}: " + "  ".join(f"{m} {rate[m][0]:5.1f}/s" for m in modes)
              + "  wall ratios {:.3f} {:.3f}  cpu ratios {:.3f} {:.3f}".format(
                  *(ratios[k, c][-1] for c in (0, 1) for k in ("pipeline", "cached"))))
    recorder.close()
    for name, what in (("pipeline", "instrumented (IdBatcher + stats + rows) vs GREAT's own loop"),
                       ("cached", "same batches held in memory: stats + rows vs the bare step")):
        wall, cpu = (statistics.median(ratios[name, c]) for c in (0, 1))
        print(f"median ratio instrumented/plain, {what}: samples/s {wall:.3f} (overhead {100 * (1 - wall):+.1f} %), "
              f"samples/CPU-s {cpu:.3f} (overhead {100 * (1 - cpu):+.1f} %)")
    print(f"stats + row writes took {100 * share['instr'] / share['step']:.2f} % of the calling thread's CPU time in "
          f"instrumented steps (an upper bound: TensorFlow's worker threads are not counted in the step)")
    print(f"rows written: {recorder.writer.rows_written}")
    return 0


if __name__ == "__main__":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    sys.exit(main())
