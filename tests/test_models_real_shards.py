"""Training the GREAT model on GREAT-format shards (built, and real where present) beats the trivial baselines."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from trainstats.models import (  # noqa: E402
    SubtokenVocab,
    build_varmisuse_model,
    compile_varmisuse_model,
    evaluate_varmisuse,
    load_encoded,
    make_dataset,
)
from trainstats.varmisuse import iter_examples, list_shards  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning"),
              pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")]
MAX_TOKENS = 128


def _random_candidate_accuracy(path) -> float:
    """Repair accuracy of picking one integer candidate uniformly: mean over buggy examples of
    |targets among candidates| / |candidates|."""
    fr = []
    for _, ex in iter_examples(path):
        if ex["has_bug"] and len(ex["source_tokens"]) <= MAX_TOKENS:
            cands = [c for c in ex["repair_candidates"] if isinstance(c, int)]
            fr.append(sum(c in set(ex["repair_targets"]) for c in cands) / max(len(cands), 1))
    return float(np.mean(fr))


# the built shards hold fewer short examples (372 of <= 128 tokens in the training shard, 402 real)
# and each buggy example has its bug-free twin, so they take more epochs to fit. Measured (2026-12, the
# model of af51d42): built, seeds 0/1: train joint 0.55/0.62 after 16 epochs, 0.79/0.72 after 20 (vs
# 0.478 for "no bug"); held-out repair 0.30/0.29 after 20 (vs 0.22 for a random candidate)
EPOCHS = {"built": 20, "real": 15}


def test_great_model_beats_trivial_baselines(great_dev_dir, request):
    epochs = EPOCHS[request.node.callspec.params["great_dev_dir"]]
    train_shard, held_out_shard = list_shards(great_dev_dir)[:2]
    vocab = SubtokenVocab.build((ex["source_tokens"] for _, ex in iter_examples(train_shard)), max_size=3000)
    train = load_encoded(train_shard, vocab, max_tokens=MAX_TOKENS)
    dev = load_encoded(held_out_shard, vocab, max_tokens=MAX_TOKENS)
    keras.utils.set_random_seed(0)
    model = build_varmisuse_model("great", vocab_size=len(vocab), hidden=64, num_layers=2, num_heads=4, dropout=0.0)
    compile_varmisuse_model(model, learning_rate=3e-3)
    model.fit(make_dataset(train, shuffle=True, max_tokens=MAX_TOKENS, token_budget=2048), epochs=epochs, verbose=0)
    tr = evaluate_varmisuse(model, make_dataset(train, max_tokens=MAX_TOKENS))
    dv = evaluate_varmisuse(model, make_dataset(dev, max_tokens=MAX_TOKENS))

    # baseline 1, always "no bug": joint accuracy = fraction of bug-free examples, 0 on buggy ones
    always_no_bug = 1.0 - float(train.has_bug.mean())
    # measured (seed 0, 2026-12): real: train joint 0.73 after 15 epochs, vs 0.485 for "no bug" (plain Adam on
    # the sparse embedding gradient: 8 epochs are not enough to fit these 400 examples); built: see EPOCHS
    assert tr["joint_acc"] > always_no_bug + 0.05, (tr, always_no_bug)
    assert tr["bug_loc_acc"] > 0.2, tr
    # baseline 2, a random candidate: the model's repair on held-out buggy code is better
    # (measured: real 0.28-0.34 held out vs 0.23 random, with the earlier model; built: see EPOCHS)
    random_candidate = _random_candidate_accuracy(held_out_shard)
    assert dv["rep_acc"] > random_candidate + 0.03, (dv, random_candidate)
