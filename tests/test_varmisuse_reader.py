"""GREAT-format reading layer on dev shards (built, and real where present): ids, schema check, precise errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainstats.varmisuse import (
    SHARD_PATTERN,
    InvalidExample,
    iter_examples,
    list_shards,
    parse_shard_name,
    shard_name,
    validate_example,
)


@pytest.fixture(scope="module")
def real_examples(great_dev_dir):
    return list(iter_examples(great_dev_dir))


@pytest.fixture(scope="module")
def one_example(great_dev_dir):
    shard = list_shards(great_dev_dir)[0]
    with open(shard, "rb") as fh:
        return json.loads(fh.readline())


def test_every_real_example_validates_with_shard_line_ids(great_dev_dir, real_examples):
    shards = list_shards(great_dev_dir)
    assert [p.name for p in shards] == sorted(p.name for p in great_dev_dir.iterdir())
    n_lines = sum(p.read_bytes().count(b"\n") for p in shards)
    assert len(real_examples) == n_lines
    ids = [sid for sid, _ in real_examples]
    assert len(set(ids)) == len(ids)
    assert ids[0] == f"{shards[0].name}:1"
    # the id's line number points at the very line the example came from
    sid, ex = real_examples[len(real_examples) // 2]
    name, line = sid.rsplit(":", 1)
    raw = (great_dev_dir / name).read_bytes().split(b"\n")[int(line) - 1]
    assert json.loads(raw) == ex
    for _, ex in real_examples:
        validate_example(ex)
    classes = {ex["has_bug"] for _, ex in real_examples}
    assert classes == {True, False}


def test_real_quirks_are_valid(great_dev_dir, real_examples):
    """The real data's valid quirks (docs/varmisuse-format.md) are in both layers and pass the check:
    buggy examples without targets or with targets that are not candidates, bug-free candidates naming
    a variable with no position, non-ASCII tokens (escaped as \\uXXXX on disk)."""
    def ints(cands):
        return {c for c in cands if isinstance(c, int)}

    no_targets = [ex for _, ex in real_examples if ex["has_bug"] and not ex["repair_targets"]]
    off_cand = [ex for _, ex in real_examples if ex["has_bug"]
                and any(t not in ex["repair_candidates"] for t in ex["repair_targets"])]
    names_only = [ex for _, ex in real_examples if not ex["has_bug"]
                  and {c for c in ex["repair_candidates"] if isinstance(c, str)}
                  - {ex["source_tokens"][c] for c in ints(ex["repair_candidates"])}]
    non_ascii = [ex for _, ex in real_examples if any(not t.isascii() for t in ex["source_tokens"])]
    assert no_targets and off_cand and names_only and non_ascii
    assert all(p.read_bytes().isascii() for p in list_shards(great_dev_dir))


def test_shard_names_round_trip(great_dev_dir):
    name = shard_name("dev", 24, 300)
    assert name == "dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300"
    assert SHARD_PATTERN.match(name)["split"] == "dev"
    assert parse_shard_name(great_dev_dir / name) == ("dev", 24, 300)
    assert parse_shard_name("README.md") is None
    with pytest.raises(ValueError, match="index=300, total=300"):
        shard_name("dev", 300, 300)
    with pytest.raises(ValueError, match="invalid split"):
        shard_name("a/b", 0, 1)
    with pytest.raises(ValueError, match="no GREAT shards of split 'train'"):
        list_shards(great_dev_dir, split="train")
    with pytest.raises(FileNotFoundError):
        list_shards(great_dev_dir / "nope")


def test_list_shards_finds_split_subdirectories(tmp_path, great_dev_dir):
    src = list_shards(great_dev_dir)[0]
    (tmp_path / "dev").mkdir()
    (tmp_path / "train").mkdir()
    lines = src.read_bytes().splitlines(keepends=True)[:3]
    (tmp_path / "dev" / shard_name("dev", 0, 1)).write_bytes(b"".join(lines))
    (tmp_path / "train" / shard_name("train", 1, 2)).write_bytes(b"".join(lines))
    (tmp_path / "train" / shard_name("train", 0, 2)).write_bytes(b"".join(lines))
    (tmp_path / "train" / "README.md").write_text("not a shard")
    assert [p.name for p in list_shards(tmp_path, split="train")] == [
        shard_name("train", 0, 2), shard_name("train", 1, 2)]
    assert len(list_shards(tmp_path)) == 3
    ids = [sid for sid, _ in iter_examples(tmp_path, split="dev")]
    assert ids == [f"{shard_name('dev', 0, 1)}:{i}" for i in (1, 2, 3)]


@pytest.mark.parametrize("mutate, message", [
    (lambda ex: ex.pop("source_tokens"), r"missing required field\(s\) 'source_tokens'"),
    (lambda ex: ex.pop("edges"), r"missing required field\(s\) 'edges'"),
    (lambda ex: ex.update(has_bug="yes"), r"field 'has_bug': expected a boolean, received str"),
    (lambda ex: ex.update(error_location=True), r"field 'error_location': expected an integer, received bool"),
    (lambda ex: ex.update(error_location=1.0), r"field 'error_location': expected an integer, received float"),
    (lambda ex: ex.update(source_tokens=[]), r"field 'source_tokens': expected a non-empty list"),
    (lambda ex: ex["source_tokens"].__setitem__(3, 7), r"field 'source_tokens'\[3\]: expected a string"),
    (lambda ex: ex.update(repair_candidates=[1, None]), r"field 'repair_candidates'\[1\]: expected an integer or a string"),
    (lambda ex: ex.update(repair_targets="1"), r"field 'repair_targets': expected a list of integers"),
    (lambda ex: ex["edges"].__setitem__(2, [1, "x", 3]), r"field 'edges'\[2\]: expected \[src, dst"),
    (lambda ex: ex.update(bug_kind_name=3), r"field 'bug_kind_name': expected a string, received int"),
])
def test_schema_rejects_wrong_fields(one_example, mutate, message):
    ex = json.loads(json.dumps(one_example))
    validate_example(ex)
    mutate(ex)
    with pytest.raises(InvalidExample, match=message):
        validate_example(ex)


def test_schema_rejects_out_of_range_indices(real_examples):
    buggy = next(ex for _, ex in real_examples if ex["has_bug"] and ex["repair_targets"])
    clean = next(ex for _, ex in real_examples if not ex["has_bug"])
    n = len(buggy["source_tokens"])
    for field, value, msg in [
        ("error_location", n, rf"'error_location': {n} is outside the tokens \(expected 0 <= error_location < {n}\)"),
        ("error_location", -1, r"'error_location': -1 is outside"),
        ("repair_targets", [1, n + 5], rf"'repair_targets'\[1\]: {n + 5} is outside the tokens"),
        ("repair_candidates", ["x", n], rf"'repair_candidates'\[1\]: {n} is outside"),
        ("edges", [[0, n, 1, "enum_CFG_NEXT"]], r"'edges'\[0\]: \[0, \d+\] points outside"),
    ]:
        ex = dict(buggy, **{field: value})
        with pytest.raises(InvalidExample, match=msg):
            validate_example(ex)
    validate_example(buggy)
    with pytest.raises(InvalidExample, match="bug-free example .* must have error_location 0, received 1"):
        validate_example(dict(clean, error_location=1))
    with pytest.raises(InvalidExample, match="bug-free example .* must have no repair targets"):
        validate_example(dict(clean, repair_targets=[1]))
    with pytest.raises(InvalidExample, match="expected a JSON object, received list"):
        validate_example([1, 2])


def _write_shard(folder: Path, lines: list[bytes]) -> Path:
    path = folder / shard_name("train", 0, 1)
    path.write_bytes(b"".join(lines))
    return path


def test_reader_errors_name_file_line_and_column(tmp_path, great_dev_dir):
    good = list_shards(great_dev_dir)[0].read_bytes().splitlines(keepends=True)[:4]
    path = _write_shard(tmp_path, [good[0], good[1], b'{"has_bug": tru, "x": 1}\n', good[3]])
    # col 13 is the "t" of "tru" (1-based, as editors count)
    it = iter_examples(tmp_path)
    assert next(it)[0].endswith(":1")
    assert next(it)[0].endswith(":2")
    near = re.escape('{"has_bug": >>t<<ru, "x": 1}')
    with pytest.raises(InvalidExample, match=rf"^{re.escape(str(path))}:3:13: invalid JSON: Expecting value, "
                                             rf"near: {near}$"):
        next(it)
    ex = json.loads(good[2])
    del ex["repair_targets"]
    _write_shard(tmp_path, [good[0], (json.dumps(ex) + "\n").encode()])
    with pytest.raises(InvalidExample, match=rf"^{re.escape(str(path))}:2: missing required field\(s\) 'repair_targets'"):
        list(iter_examples(path))
    ex = json.loads(good[2])
    ex["error_location"] = len(ex["source_tokens"])
    _write_shard(tmp_path, [(json.dumps(ex) + "\n").encode()])
    with pytest.raises(InvalidExample, match=rf"^{re.escape(str(path))}:1: field 'error_location': \d+ is outside"):
        list(iter_examples(path))
    # validate=False decodes without the schema check, but JSON errors still surface
    assert len(list(iter_examples(path, validate=False))) == 1
    _write_shard(tmp_path, [good[0], b"\n"])
    with pytest.raises(InvalidExample, match=rf"^{re.escape(str(path))}:2: empty line"):
        list(iter_examples(path))
    _write_shard(tmp_path, [good[0], b'{"a": "\xff"}\n'])
    near = re.escape('{"a": ">>\\xff<<"}')
    with pytest.raises(InvalidExample, match=rf"^{re.escape(str(path))}:2:8: invalid UTF-8: invalid start byte, "
                                             rf"near: {near}$"):
        list(iter_examples(path))


def test_json_errors_give_the_whole_reason_and_the_text_around_the_column(tmp_path, great_dev_dir):
    """A control character deep in a long real line: the decoder's reason ends in "at" (its position
    follows only in str(exc)); the message completes it and shows the text around the column."""
    good = list_shards(great_dev_dir)[0].read_bytes().splitlines(keepends=True)[:5]
    line = good[4]
    cut = line.index(b', "', len(line) // 2) + 2     # an opening quote in the edges, far from the start
    bad = line[:cut + 1] + b"\t" + line[cut + 1:]    # a raw tab inside that JSON string
    path = _write_shard(tmp_path, good[:4] + [bad])
    col = cut + 2
    with pytest.raises(InvalidExample) as exc:
        list(iter_examples(path))
    text = line.decode()
    want = (f"{path}:5:{col}: invalid JSON: Invalid control character at column {col}, near: "
            f"...{text[cut + 1 - 30:cut + 1]}>>\\t<<{text[cut + 1:cut + 31]}...")
    assert str(exc.value) == want
    # an unterminated string runs to the line end: the newline is the character shown
    path = _write_shard(tmp_path, [b'{"source_tokens": ["abc\n'])
    with pytest.raises(InvalidExample, match=re.escape(
            f"{path}:1:24: invalid JSON: Invalid control character at column 24, near: "
            '{"source_tokens": ["abc>>\\n<<') + "$"):
        list(iter_examples(path))


def test_importing_varmisuse_does_not_import_tensorflow():
    code = ("import sys, trainstats.varmisuse, trainstats.varmisuse.reader; "
            "sys.exit(1 if any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
