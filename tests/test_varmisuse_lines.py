"""The fast line parser must agree exactly with json.loads + validate_example."""
from __future__ import annotations

import json
import re

import pytest

from trainstats.varmisuse import InvalidExample, decode_line, list_shards
from trainstats.varmisuse import lines
from trainstats.varmisuse.lines import encode_example, parse_line, parse_lines


@pytest.fixture(scope="module")
def raw_lines(great_dev_dir):
    return [line for shard in list_shards(great_dev_dir) for line in shard.read_bytes().splitlines(keepends=True)]


def _edges_line(n_tokens: int, edges: bytes) -> bytes:
    ex = {"has_bug": False, "source_tokens": ["t"] * n_tokens, "edges": "E", "error_location": 0,
          "repair_targets": [], "repair_candidates": []}
    return json.dumps(ex).replace('"E"', edges.decode()).encode() + b"\n"


def test_edge_index_range_is_exact_at_every_boundary():
    """src/dst must lie in [0, n): checked around every power of ten, for src and dst, in a block."""
    cases = []
    for n in [1, 2, 9, 10, 11, 99, 100, 101, 109, 110, 999, 1000, 1001]:
        for i in sorted({0, n - 2, n - 1, n, n + 1, 10 * n} - {-1}):
            for edge in (f"[{i}, 0, 7, \"enum_FIELD\"]", f"[0, {i}, 12, \"x_1\"]"):
                cases.append((n, i, _edges_line(n, f"[[0, 0, 1, \"a\"], {edge}]".encode())))
    got = parse_lines([raw for _, _, raw in cases], lambda i: f"f:{i + 1}")
    for (n, i, raw), res in zip(cases, got):
        if i < n:
            assert isinstance(res, lines.ParsedLine) and res.edges_raw is not None, (n, i)
        else:
            assert isinstance(res, InvalidExample) and "points outside the tokens" in str(res), (n, i, res)
            with pytest.raises(InvalidExample) as exc:
                decode_line(raw, where=f"f:{cases.index((n, i, raw)) + 1}")
            assert str(exc.value) == str(res)


def test_fast_path_equals_full_parse_and_round_trips(raw_lines):
    for raw in raw_lines:
        parsed = parse_line(raw, where="x:1")
        assert parsed.edges_raw is not None, "every real line should take the fast path"
        full = json.loads(raw)
        assert json.loads(parsed.edges_raw) == full["edges"]
        assert dict(parsed.example, edges=full["edges"]) == full
        assert encode_example(parsed.example, edges_raw=parsed.edges_raw) == raw.rstrip(b"\n")
        assert encode_example(full) == raw.rstrip(b"\n")


def _variants(raw: bytes, n_tokens: int):
    """Corruptions of a real line, each either still valid or invalid."""
    yield raw.replace(b"[1, ", b"[" + str(n_tokens).encode() + b", ", 1)      # edge src out of range
    yield raw.replace(b"[1, ", b"[01, ", 1)                                      # leading zero: bad JSON
    yield raw.replace(b"[1, ", b"[-1, ", 1)                                      # negative
    yield raw.replace(b'"enum_', b'"enum-', 1)                                   # valid, unusual name
    yield raw.replace(b'"]], "error_location"', b'"]] , "error_location"', 1)    # valid, other spacing
    yield raw.replace(b'"]], "error_location"', b'"], "error_location"', 1)      # broken JSON
    yield raw.replace(b', "edges": [[', b', "edges": [[1, 2, 3], [', 1)          # valid 3-item edge
    yield raw.replace(b', "edges": [[', b', "edges": [["1", 2, 3, "x"], [', 1)   # string index
    yield raw.replace(b'"error_location": ', b'"error_location": 1e', 1)          # float / bad
    yield raw[: len(raw) // 2]                                                    # truncated line
    yield raw.replace(b'"has_bug": ', b'"has_bug": 0 or ', 1)
    ex = json.loads(raw)
    yield json.dumps(dict(list(ex.items())[::-1])).encode()                       # other key order
    yield json.dumps(ex, separators=(",", ":")).encode()                           # compact


def test_fast_path_agrees_with_decode_line_on_corruptions(raw_lines):
    empty_edges = json.dumps(dict(json.loads(raw_lines[0]), edges=[])).encode()
    assert parse_line(empty_edges, where="f:1").edges_raw == b"[]"
    for raw in raw_lines[:12] + [empty_edges]:
        n = len(json.loads(raw)["source_tokens"])
        for bad in _variants(raw, n):
            try:
                expected = decode_line(bad, where="f:3")
            except InvalidExample as exc:
                with pytest.raises(InvalidExample) as got:
                    parse_line(bad, where="f:3")
                assert str(got.value) == str(exc)
                continue
            parsed = parse_line(bad, where="f:3")
            got_ex = parsed.example if parsed.edges_raw is None else dict(
                parsed.example, edges=json.loads(parsed.edges_raw))
            assert got_ex == expected


def test_encode_keeps_non_ascii_style():
    ex = {"source_tokens": ["é"], "edges": [], "has_bug": False}
    assert encode_example(ex, edges_raw=b"[]", ensure_ascii=False) == json.dumps(ex, ensure_ascii=False).encode()
    assert encode_example(ex, edges_raw=b"[]") == json.dumps(ex).encode()


def test_encode_falls_back_when_a_value_contains_the_sentinel():
    from trainstats.varmisuse.lines import _SENTINEL

    ex = {"source_tokens": [_SENTINEL, "x"], "edges": [], "has_bug": False}
    want = json.dumps(dict(ex, edges=[[0, 1, 1, "enum_CFG_NEXT"]])).encode()
    assert encode_example(ex, edges_raw=b'[[0, 1, 1, "enum_CFG_NEXT"]]') == want


def _decoder_cases(raw: bytes) -> list[bytes]:
    """Lines on which JSON decoders may disagree; each is valid or invalid for the stdlib."""
    body = raw.rstrip(b"\n")
    return [
        body[:-1] + b', "has_bug": ' + (b"false" if b'"has_bug": true' in body else b"true") + b"}\n",  # duplicate key
        body.replace(b'"bug_kind": ', b'"bug_kind": -0, "x": ', 1) + b"\n",        # -0
        body.replace(b'"bug_kind": ', b'"bug_kind": 1180591620717411303424, "x": ', 1) + b"\n",  # > 64 bits
        body.replace(b'"bug_kind": ', b'"bug_kind": 1.0, "x": ', 1) + b"\n",       # float: invalid
        body[:-1] + b', "provenances": [NaN, 1e999, -0.0, 0.1]}\n',                 # stdlib-only literals
        body.replace(b'"source_tokens": ["', b'"source_tokens": ["\\ud800', 1) + b"\n",   # lone surrogate
        body.replace(b'"source_tokens": ["', b'"source_tokens": ["\\u00e9\\ud83d\\ude00\xc3\xa9', 1) + b"\n",
        b"\xef\xbb\xbf" + body + b"\n",                                               # UTF-8 BOM
        body.replace(b'"source_tokens": ["', b'"source_tokens": ["\xff', 1) + b"\n",   # bad UTF-8
        body.replace(b'"has_bug"', b'"has_\\u0062ug"', 1) + b"\n",                  # escaped key
        body + b" \r\n",
    ]


def _outcome(result):
    if isinstance(result, InvalidExample):
        return ("error", str(result))
    full = result.example if result.edges_raw is None else dict(result.example, edges=json.loads(result.edges_raw))
    return ("ok", list(full.items()), result.edges_raw is not None)


@pytest.mark.skipif(lines._orjson is None, reason="orjson not installed: only the stdlib decoder to test")
def test_orjson_and_stdlib_decoders_give_identical_results(raw_lines, monkeypatch):
    cases = raw_lines[:40] + [c for raw in raw_lines[:3] for c in _decoder_cases(raw)]
    where = lambda i: f"f:{i + 1}"  # noqa: E731
    with_orjson = [_outcome(r) for r in parse_lines(cases, where)]
    monkeypatch.setattr(lines, "loads", lines._json_loads)
    with_json = [_outcome(r) for r in parse_lines(cases, where)]
    assert [r[:2] for r in with_orjson] == [r[:2] for r in with_json]   # (orjson may take the plain path)
    for i, (raw, got) in enumerate(zip(cases, with_json)):  # and both agree with the plain decoder
        try:
            want = ("ok", list(decode_line(raw, where=where(i)).items()))
        except InvalidExample as exc:
            want = ("error", str(exc))
        assert got[:2] == want, raw[:80]
    assert sum(1 for r in with_json if r[0] == "error") >= 4 and sum(r[0] == "ok" and r[2] for r in with_json) >= 40


def test_a_block_of_mixed_lines_gets_each_line_its_own_verdict(raw_lines):
    """Good and corrupted lines checked together (one numpy block): no verdict leaks to a neighbour."""
    block = []
    for raw in raw_lines[:12]:
        n = len(json.loads(raw)["source_tokens"])
        for bad in _variants(raw, n):
            block += [raw, bad.rstrip(b"\n") + b"\n"]
    block += [raw.replace(b'"enum_', b'"en1um_', 3) for raw in raw_lines[12:20]]  # digits in names: valid
    got = parse_lines(block, lambda i: f"f:{i + 1}")
    for i, (raw, res) in enumerate(zip(block, got)):
        try:
            want = decode_line(raw, where=f"f:{i + 1}")
        except InvalidExample as exc:
            assert isinstance(res, InvalidExample) and str(res) == str(exc), (i, raw[:60])
            continue
        assert not isinstance(res, InvalidExample), (i, res)
        full = res.example if res.edges_raw is None else dict(res.example, edges=json.loads(res.edges_raw))
        assert full == want
    assert all(res.edges_raw is not None for res in got[0::2][:12 * 13])   # the good neighbours stay fast


def test_random_byte_edits_of_edges_get_the_plain_verdict(raw_lines):
    """Seeded fuzzing of the numpy edges check: 3,200 edits (replace, swap neighbours, insert,
    delete a byte; one or two of them) inside real edges arrays, checked in one block; each line
    must get exactly decode_line's verdict and example."""
    import random

    rng = random.Random(20261125)
    alphabet = b'0123456789,[] "_aZ-\\.e'
    block = []
    for raw in rng.sample(raw_lines, 40):
        start = raw.index(b', "edges": ') + 11
        for _ in range(80):
            edited = bytearray(raw)
            for _ in range(rng.choice((1, 1, 2))):
                end = edited.index(b', "error_location"', start)
                i = rng.randrange(start, end - 1)
                op = rng.randrange(4)
                if op == 0:
                    edited[i] = rng.choice(alphabet)
                elif op == 1:
                    edited[i], edited[i + 1] = edited[i + 1], edited[i]
                elif op == 2:
                    edited.insert(i, rng.choice(alphabet))
                else:
                    del edited[i]
            block.append(bytes(edited))
    got = parse_lines(block, lambda i: f"f:{i + 1}")
    n_ok = 0
    for i, (raw, res) in enumerate(zip(block, got)):
        try:
            want = decode_line(raw, where=f"f:{i + 1}")
        except InvalidExample as exc:
            assert isinstance(res, InvalidExample) and str(res) == str(exc), (i, raw)
            continue
        n_ok += 1
        assert not isinstance(res, InvalidExample), (i, res)
        full = res.example if res.edges_raw is None else dict(res.example, edges=json.loads(res.edges_raw))
        assert full == want
    assert 300 < n_ok < len(block) - 300     # both verdicts well represented
