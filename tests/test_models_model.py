"""The Keras VarMisuse model: encoding, masking, and loss/accuracy against a numpy hand check."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from trainstats.models import (  # noqa: E402
    HEAD_STATS,
    SubtokenVocab,
    build_varmisuse_model,
    compile_varmisuse_model,
    encode_examples,
    evaluate_varmisuse,
    make_dataset,
    split_subtokens,
)
from trainstats.models.capture import capture_extra_stats  # noqa: E402
from trainstats.models.data import NUM_GREAT_EDGE_TYPES  # noqa: E402

pytestmark = pytest.mark.tf


def _example(tokens, *, bug=None, targets=(), candidates=(), edges=()):
    return {
        "source_tokens": list(tokens),
        "has_bug": bug is not None,
        "error_location": 0 if bug is None else bug,
        "repair_targets": list(targets),
        "repair_candidates": list(candidates),
        "edges": [list(e) for e in edges],
        "bug_kind": 1 if bug is not None else 0,
        "bug_kind_name": "VARIABLE_MISUSE" if bug is not None else "NONE",
        "provenances": [],
    }


TOKS_A = ["#NEWLINE#", "def f(", "a", ",", "b", ")", ":", "#NEWLINE#", "#INDENT#", "return", "a", "+", "a"]
TOKS_B = ["#NEWLINE#", "def g(", "x", ")", ":", "#NEWLINE#", "#INDENT#", "return", "x"]
EXAMPLES = [
    # buggy: position 12 should be b (targets 4); candidates a/b positions
    ("s:1", _example(TOKS_A, bug=12, targets=[4], candidates=[2, 4, 10, 12, "a"],
                     edges=[[2, 10, 2, "enum_LAST_READ"], [10, 12, 2, "enum_LAST_READ"], [1, 2, 9, "enum_NEXT_SYNTAX"]])),
    ("s:2", _example(TOKS_B, candidates=[2, 8, "x"], edges=[[2, 8, 3, "enum_LAST_WRITE"]])),
    # buggy with two targets
    ("s:3", _example(TOKS_A, bug=10, targets=[4, 2], candidates=[2, 4, 10, 12])),
]


def test_split_subtokens():
    assert split_subtokens("getHTTPResponse_code2") == ["get", "http", "response", "code", "2"]
    assert split_subtokens("def __init__(") == ["def", "init", "("]
    assert split_subtokens("#NEWLINE#") == ["#NEWLINE#"]
    assert split_subtokens("==") == ["=="]
    assert split_subtokens("a_b_c_d_e_f_g", max_subtokens=3) == ["a", "b", "c"]


def test_encode_edges_both_directions_and_targets():
    vocab = SubtokenVocab.build([t for _, e in EXAMPLES for t in [e["source_tokens"]]], min_count=1)
    enc = encode_examples(EXAMPLES, vocab, max_tokens=64)
    assert enc.sample_ids == ["s:1", "s:2", "s:3"]
    e0 = enc.edges[enc.edge_splits[0]:enc.edge_splits[1]].tolist()
    assert [2, 10, 3] in e0 and [10, 2, 3 + NUM_GREAT_EDGE_TYPES] in e0
    assert len(e0) == 6
    rep1 = enc.rep[enc.token_splits[1]:enc.token_splits[2]]
    assert (rep1 == -1).all()  # bug-free
    rep2 = enc.rep[enc.token_splits[2]:enc.token_splits[3]]
    assert np.flatnonzero(rep2 == 1).tolist() == [2, 4]
    assert enc.loc.tolist() == [12, 0, 10]
    short = encode_examples(EXAMPLES, vocab, max_tokens=10)
    assert len(short) == 1 and short.skipped_too_long == 2
    with pytest.raises(ValueError, match="max_tokens"):
        encode_examples(EXAMPLES, vocab, max_tokens=1)


@pytest.mark.parametrize("kind", ["great", "transformer"])
def test_loss_and_accuracy_match_numpy_hand_check(kind):
    vocab = SubtokenVocab.build([e["source_tokens"] for _, e in EXAMPLES], min_count=1)
    enc = encode_examples(EXAMPLES, vocab, max_tokens=64)
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(1)
    model = build_varmisuse_model(kind, vocab_size=len(vocab), hidden=16, num_layers=1, num_heads=2, dropout=0.0)
    compile_varmisuse_model(model)
    (x, y), = list(make_dataset(enc, max_tokens=64, token_budget=10_000))
    assert x["subtokens"].shape[0] == 3 and y["rep"].numpy()[1, 9:].tolist() == [-2.0] * 4  # padding
    p = model(x, training=False)
    p_loc, p_rep = p["loc"].numpy(), p["rep"].numpy()
    n_tok = [13, 9, 13]
    for i, n in enumerate(n_tok):  # masked softmaxes
        assert p_loc[i, :n].sum() == pytest.approx(1.0, abs=1e-5) and (p_loc[i, n:] == 0).all()
    cand = [[2, 4, 10, 12], [2, 8], [2, 4, 10, 12]]
    for i, c in enumerate(cand):
        assert p_rep[i, c].sum() == pytest.approx(1.0, abs=1e-5)

    # numpy hand check
    loc = np.array([12, 0, 10])
    targets = [[4], [], [2, 4]]
    loc_loss = -np.log(p_loc[np.arange(3), loc] + 1e-9)
    mass = np.array([p_rep[i, t].sum() for i, t in enumerate(targets)])
    has_bug = np.array([True, False, True])
    rep_loss = np.where(has_bug, -np.log(mass + 1e-9), 0.0)
    expected_loss = loc_loss.mean() + rep_loss.mean()
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert got["loc_loss"] == pytest.approx(loc_loss.mean(), rel=1e-4)

    loc_correct = p_loc.argmax(1) == loc
    rep_correct = mass >= 0.5
    joint = loc_correct & (~has_bug | rep_correct)
    ls = {k: v.numpy() for k, v in HEAD_STATS["loc"](y["loc"], p["loc"]).items()}
    rs = {k: v.numpy() for k, v in HEAD_STATS["rep"](y["rep"], p["rep"]).items()}
    np.testing.assert_allclose(ls["loss"], loc_loss, rtol=1e-5)
    np.testing.assert_array_equal(ls["correct"], loc_correct)
    np.testing.assert_allclose(ls["gold_prob"], p_loc[np.arange(3), loc], rtol=1e-6)
    other = [np.max(np.delete(p_loc[i, :n_tok[i]], loc[i])) for i in range(3)]
    np.testing.assert_allclose(ls["margin"], np.log(p_loc[np.arange(3), loc] + 1e-9) - np.log(np.array(other) + 1e-9),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(rs["valid"], has_bug)
    np.testing.assert_allclose(rs["gold_prob"], mass, rtol=1e-5)
    np.testing.assert_array_equal(rs["correct"][has_bug], rep_correct[has_bug])
    np.testing.assert_allclose(rs["loss"], rep_loss, rtol=1e-5)
    extra = {k: v.numpy() for k, v in capture_extra_stats(x, y, p).items()}
    np.testing.assert_array_equal(extra["joint_correct"], joint)
    np.testing.assert_array_equal(extra["has_bug"], has_bug)
    np.testing.assert_array_equal(extra["n_tokens"], n_tok)
    acc = evaluate_varmisuse(model, make_dataset(enc, max_tokens=64, token_budget=10_000))
    assert acc["joint_acc"] == pytest.approx(joint.mean())
    assert acc["rep_acc"] == pytest.approx(rep_correct[has_bug].mean())
    assert acc["no_bug_acc"] == pytest.approx(float(loc_correct[1]))


def test_edge_bias_changes_attention_only_for_great():
    vocab = SubtokenVocab.build([e["source_tokens"] for _, e in EXAMPLES], min_count=1)
    enc = encode_examples(EXAMPLES, vocab, max_tokens=64)
    (x, _), = list(make_dataset(enc, max_tokens=64, token_budget=10_000))
    no_edges = dict(x, edges=tf.zeros_like(x["edges"]))
    for kind, should_differ in (("great", True), ("transformer", False)):
        model = build_varmisuse_model(kind, vocab_size=len(vocab), hidden=16, num_layers=1, num_heads=2, dropout=0.0)
        if kind == "great":
            bias = model.get_layer("attention_bias")
            bias.table.assign(np.random.default_rng(0).normal(size=bias.table.shape).astype("float32"))
        a = model(x, training=False)["loc"].numpy()
        b = model(no_edges, training=False)["loc"].numpy()
        assert (not np.allclose(a, b)) == should_differ


def test_build_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        build_varmisuse_model("gnn", vocab_size=10)
    with pytest.raises(ValueError, match="divisible"):
        build_varmisuse_model("great", vocab_size=10, hidden=10, num_heads=4)
