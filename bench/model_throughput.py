"""Training throughput of the Keras VarMisuse model with per-sample capture: today's code against the new.

Both sides train the same GREAT model size (hidden 64, 2 layers, 4 heads, no dropout) on the same built
data with ``model.fit`` and the trainstats capture callback, each in its own process; the baseline runs
the package as it was at ``--baseline-ref`` (default: the commit before the throughput work, extracted
with ``git archive``) with that commit's demo batching, the new side runs this checkout with the
demo's current batching. Runs alternate (baseline, new, new, baseline, ...) so that a load change on
the shared machine hits both; the first epoch of every run (tracing) is dropped.

Printed per side: training samples/s (median over the kept epochs of all rounds), cores busy (process
CPU seconds / wall seconds), CPU microseconds per sample, and the capture's share of the step
(``1 - t_without / t_with``, from runs without the callback); then the aggregate rate of two new runs
trained at once with ``cores // 2`` threads each (how ``trainstats demo`` uses a 2-core machine), and
the ratios to the baseline.

    .venv/bin/python bench/model_throughput.py                   # ~5 min on 2 cores
    .venv/bin/python bench/model_throughput.py --rounds 3 --functions 8000
    .venv/bin/python bench/model_throughput.py --data PATH      # GREAT shards with train/

Target (issue 12): new >= 5x baseline samples/s. On a loaded machine prefer more --rounds and read
the CPU microseconds per sample too (less sensitive to other processes than wall time).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the last commit before the throughput work of issue 12 (its layers, pipeline and demo batching)
BASELINE_REF = "5a6a7b0"
#: the model size both sides train (the demo's before and after)
MODEL = dict(hidden=64, num_layers=2, num_heads=4)
#: the baseline demo's batching and dropout (trainstats/demo/settings.py at BASELINE_REF)
BASELINE_BATCHING = dict(token_budget=2048, max_batch=64)
BASELINE_DROPOUT = 0.0


def _worker(cfg: dict) -> None:
    """Train in this process and print one JSON line of per-epoch timings (runs on either code tree)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf  # noqa: F401

    from trainstats.keras import with_ids
    from trainstats.models import (SubtokenVocab, batch_by_length, build_varmisuse_model, compile_varmisuse_model,
                                   element_dataset, load_encoded, varmisuse_callback)
    from trainstats.varmisuse import iter_examples

    vocab = SubtokenVocab.build((ex["source_tokens"] for _, ex in iter_examples(cfg["data"], split="train")),
                                max_size=4000)
    train = load_encoded(cfg["data"], vocab, split="train", max_tokens=cfg["max_tokens"])
    keras.utils.set_random_seed(0)
    model = build_varmisuse_model("great", vocab_size=len(vocab), max_subtokens=vocab.max_subtokens,
                                  **cfg["model"])
    compile_varmisuse_model(model, learning_rate=3e-3)
    ds = with_ids(element_dataset(train), train.sample_ids).shuffle(len(train), seed=0)
    ds = batch_by_length(ds, max_tokens=cfg["max_tokens"], **cfg["batching"]).prefetch(2)
    times: list[tuple[float, float]] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            times.append((time.perf_counter() - self.t, time.process_time() - self.c))

    callbacks = [Timer()]
    if cfg["capture"]:
        callbacks.insert(0, varmisuse_callback(cfg["run_dir"], resume=False, record_dev=False))
    model.fit(ds, epochs=cfg["epochs"], verbose=0, callbacks=callbacks)
    print("RESULT " + json.dumps({"n": len(train), "epochs": times[1:]}), flush=True)


def _extract(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "trainstats"], check=True,
                             capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _start(cfg: dict, pythonpath: Path, threads: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"worker failed (rc {proc.returncode}):\n{err[-3000:]}")


def _run(cfg: dict, pythonpath: Path) -> dict:
    return _result(_start(cfg, pythonpath))


def _run_side_by_side(cfg: dict, pythonpath: Path, n: int) -> float:
    """Aggregate training samples/s of ``n`` identical runs trained at once, ``cores // n`` threads each
    (how ``trainstats demo`` trains its runs): the sum of each run's median-epoch rate."""
    threads = max(1, (os.cpu_count() or 1) // n)
    procs = [_start({**cfg, "run_dir": f"{cfg['run_dir']}-{i}"}, pythonpath, threads) for i in range(n)]
    total = 0.0
    for proc in procs:
        res = _result(proc)
        total += res["n"] / statistics.median(w for w, _ in res["epochs"])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="GREAT shards with a train/ split (default: built from the stdlib)")
    ap.add_argument("--functions", type=int, default=6000, help="functions to build when --data is absent")
    ap.add_argument("--max-tokens", type=int, default=80, help="longest example (the baseline demo's 80)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is dropped")
    ap.add_argument("--rounds", type=int, default=2, help="baseline/new pairs (ABBA order)")
    ap.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of today's code")
    ap.add_argument("--no-capture-share", action="store_true", help="skip the runs without the callback")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return

    sys.path.insert(0, str(REPO))
    from trainstats.demo.settings import DEFAULT

    tmp = Path(tempfile.mkdtemp(prefix="model-throughput-"))
    try:
        data = Path(args.data) if args.data else tmp / "data"
        if not args.data:
            from trainstats.varmisuse.builder import build_varmisuse

            build_varmisuse(None, data, seed=0, max_functions=args.functions, split_fractions=(0.8, 0.1, 0.1),
                            max_tokens=args.max_tokens)
        baseline_tree = _extract(args.baseline_ref, tmp / "baseline")
        new_batching = dict(token_budget=DEFAULT.token_budget, max_batch=DEFAULT.max_batch,
                            bucket_width=DEFAULT.bucket_width)
        sides = {"baseline": (baseline_tree, BASELINE_BATCHING, BASELINE_DROPOUT),
                 "new": (REPO, new_batching, DEFAULT.dropout)}
        results: dict[tuple[str, bool], list] = {}
        order = []
        for r in range(args.rounds):
            pair = ["baseline", "new"] if r % 2 == 0 else ["new", "baseline"]
            order += pair
        captures = [True] if args.no_capture_share else [True, False]
        for i, side in enumerate(order):
            for capture in (captures if i % 2 == 0 else captures[::-1]):
                tree, batching, dropout = sides[side]
                cfg = {"data": str(data), "max_tokens": args.max_tokens, "model": {**MODEL, "dropout": dropout},
                       "batching": batching,
                       "capture": capture, "epochs": args.epochs, "run_dir": str(tmp / f"run-{side}-{i}-{capture}")}
                res = _run(cfg, tree)
                results.setdefault((side, capture), []).extend((res["n"], w, c) for w, c in res["epochs"])
                shutil.rmtree(cfg["run_dir"], ignore_errors=True)
                w = statistics.median(e[1] for e in results[(side, capture)])
                print(f"  {side:8s} capture={'on ' if capture else 'off'}: {res['n'] / w:7.0f} samples/s so far",
                      file=sys.stderr, flush=True)

        def summary(side: str) -> dict:
            rows = results[(side, True)]
            wall = statistics.median(w for _, w, _ in rows)
            cpu = statistics.median(c for _, _, c in rows)
            n = rows[0][0]
            out = {"samples_per_s": n / wall, "cores_busy": cpu / wall, "cpu_us_per_sample": 1e6 * cpu / n}
            if (side, False) in results:
                bare = statistics.median(w for _, w, _ in results[(side, False)])
                out["capture_share"] = 1.0 - bare / wall
            return out

        base, new = summary("baseline"), summary("new")
        side = [_run_side_by_side({"data": str(data), "max_tokens": args.max_tokens,
                                   "model": {**MODEL, "dropout": DEFAULT.dropout},
                                   "batching": new_batching, "capture": True, "epochs": args.epochs,
                                   "run_dir": str(tmp / f"run-side-{r}")}, REPO, 2) for r in range(args.rounds)]
        n_train = results[("new", True)][0][0]
        print(f"data: {n_train} training examples (<= {args.max_tokens} tokens); model {MODEL}; "
              f"{args.rounds} round(s) x {args.epochs - 1} timed epoch(s) per side")
        print(f"{'':28s} {'samples/s':>10s} {'cores busy':>10s} {'CPU us/sample':>14s} {'capture share':>14s}")
        for name, s, desc in (("baseline", base, f"{args.baseline_ref} {BASELINE_BATCHING} dropout {BASELINE_DROPOUT}"),
                              ("new", new, f"{new_batching} dropout {DEFAULT.dropout}")):
            share = f"{100 * s['capture_share']:13.1f}%" if "capture_share" in s else f"{'-':>14s}"
            print(f"{name:8s} {'':19s} {s['samples_per_s']:10.0f} {s['cores_busy']:10.2f} "
                  f"{s['cpu_us_per_sample']:14.0f} {share}   ({desc})")
        side_rate = statistics.median(side)
        print(f"new, 2 runs side by side (as trainstats demo trains; {max(1, (os.cpu_count() or 1) // 2)} "
              f"thread(s) each): {side_rate:.0f} samples/s together")
        print(f"ratio new/baseline: samples/s x{new['samples_per_s'] / base['samples_per_s']:.2f} for one run, "
              f"x{side_rate / base['samples_per_s']:.2f} for two runs side by side; CPU per sample "
              f"x{base['cpu_us_per_sample'] / new['cpu_us_per_sample']:.2f} less")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
