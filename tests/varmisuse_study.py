"""A planted VarMisuse study written through the real store: heads loc/rep/joint, has_bug, noise flags.

Each run trains (in simulation) for ``epochs`` epochs. Clean samples are learned gradually; the noised
samples are fitted against their noisy labels only from ``onset`` on (label noise: bug-free code given a
made-up bug is at 0 % before it; inject-repair: the marked samples jump above the clean ones), while
held-out accuracy falls after the onset in proportion to the noise level. The truth the tests check
(the onset epoch, the bug-free share of dev) is planted here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trainstats.store import RunWriter, ValueColumn


def _columns() -> list[ValueColumn]:
    cols = []
    for head in ("loc", "rep"):
        cols += [ValueColumn(f"{head}_loss", "float32", head=head, stat="loss", unit="nats"),
                 ValueColumn(f"{head}_gold_prob", "float32", head=head, stat="gold_prob"),
                 ValueColumn(f"{head}_correct", "bool", head=head, stat="correct"),
                 ValueColumn(f"{head}_margin", "float32", head=head, stat="margin")]
    cols += [ValueColumn("joint_correct", "bool", head="joint", stat="correct"),
             ValueColumn("has_bug", "bool", head=None, stat="has_bug")]
    return cols


def _head_values(rng, correct, defined):
    gold = np.where(correct, 0.55 + 0.4 * rng.random(len(correct)), 0.45 * rng.random(len(correct)) + 0.01)
    out = {k: np.where(defined, v, np.nan) for k, v in
           (("loss", -np.log(gold)), ("gold_prob", gold), ("margin", np.log(gold) - np.log1p(-gold + 1e-6)))}
    out["correct"] = np.ma.masked_array(correct, mask=~defined)  # masked = null (rep on bug-free code)
    return out


def write_varmisuse_run(run_dir: Path, *, kind: str | None, level: float, epochs: int = 8, onset: int = 3,
                        n_train: int = 400, n_dev: int = 120, seed: int = 0, dev_bug_free: float = 0.5) -> Path:
    """One planted run (module docstring); ``config`` carries noise_level, noise_kind and seed."""
    rng = np.random.default_rng(seed + int(level * 1000))
    ids = [f"train.txt:{i}" for i in range(n_train)]
    orig_bug = np.arange(n_train) % 2 == 1
    noisy = np.zeros(n_train, bool)
    if level > 0:
        noisy[rng.permutation(n_train)[:int(round(level * n_train))]] = True
    has_bug = np.where(noisy & (kind == "label"), ~orig_bug, orig_bug)
    manifest = {ids[i]: kind for i in np.flatnonzero(noisy)}
    dev_ids = [f"dev.txt:{i}" for i in range(n_dev)]
    dev_bug = np.arange(n_dev) >= int(round(dev_bug_free * n_dev))
    config = {"noise_level": level, "noise_kind": kind, "seed": seed}
    difficulty = rng.random(n_train)  # a sample is predicted right once p exceeds its difficulty
    dev_difficulty = rng.random(n_dev)
    with RunWriter(run_dir, _columns(), config=config, noise_manifest=manifest or None) as w:
        keys = w.register_samples(ids)
        dkeys = w.register_samples(dev_ids)
        step = 0
        for e in range(epochs):
            p = np.full(n_train, 0.5 + 0.3 * e / max(epochs - 1, 1))  # clean: learned gradually
            after = max(0, e - onset + 1)
            if kind == "label":
                p = np.where(noisy & has_bug, np.minimum(0.12 * after, 0.9), p)  # made-up bug: only by rote
                p = np.where(noisy & ~has_bug, np.minimum(0.3 + 0.1 * after, 0.9), p)
            elif kind is not None:
                p = np.where(noisy, np.where(e >= onset, 0.99, p - 0.15), p)  # the markers: a shortcut from the onset
            order = rng.permutation(n_train)
            for b, part in enumerate(np.array_split(order, 4)):
                values = {}
                right = difficulty[part] < p[part]
                loc = _head_values(rng, right, np.ones(len(part), bool))
                rep = _head_values(rng, right, has_bug[part])
                for head, vals in (("loc", loc), ("rep", rep)):
                    values.update({f"{head}_{k}": v for k, v in vals.items()})
                values["joint_correct"] = right
                values["has_bug"] = has_bug[part]
                w.write(split="train", epoch=e, step=step, batch=b, sample_key=keys[part], values=values)
                step += 1
            pd_ = np.full(n_dev, 0.5 + 0.3 * e / max(epochs - 1, 1) - level * 0.05 * after)
            right = dev_difficulty < pd_
            loc = _head_values(rng, right, np.ones(n_dev, bool))
            rep = _head_values(rng, right, dev_bug)
            values = {f"{h}_{k}": v for h, vals in (("loc", loc), ("rep", rep)) for k, v in vals.items()}
            values["joint_correct"] = right
            values["has_bug"] = dev_bug
            w.write(split="dev", epoch=e, step=step, batch=0, sample_key=dkeys, values=values)
            w.flush()
    return Path(run_dir)


def write_study(root: Path, *, kinds=("label", "inject-repair"), levels=(0.25, 0.5), **kw) -> list[Path]:
    """A shared clean run (level 0, kind None) plus one run per kind and level."""
    runs = [write_varmisuse_run(root / "clean-noise000-seed0", kind=None, level=0.0, **kw)]
    for kind in kinds:
        for level in levels:
            runs.append(write_varmisuse_run(root / f"{kind}-noise{round(level * 100):03d}-seed0", kind=kind,
                                            level=level, **kw))
    return runs
