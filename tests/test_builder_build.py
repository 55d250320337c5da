"""build_varmisuse end to end on a small real source tree: schema, bugs, splits, determinism, skips."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from trainstats.varmisuse import iter_examples, list_shards, validate_example
from trainstats.varmisuse.builder import build_varmisuse

from great_data import copy_stdlib_modules

# a few real stdlib modules (copied into a temp dir, never into the repo)
MODULES = ["argparse.py", "textwrap.py", "shlex.py", "json/decoder.py", "json/encoder.py", "json/__init__.py",
           "fnmatch.py", "glob.py", "colorsys.py", "bisect.py", "heapq.py", "csv.py", "getopt.py",
           "string.py", "calendar.py", "difflib.py", "ipaddress.py", "base64.py"]


@pytest.fixture(scope="module")
def src_tree(tmp_path_factory) -> Path:
    root = copy_stdlib_modules(MODULES, tmp_path_factory.mktemp("src"))
    bad = root / "bad"
    bad.mkdir()
    (bad / "py2.py").write_text('def f(x):\n    print "x", x\n', encoding="utf-8")
    (bad / "latin1.py").write_bytes(b"def f(x):\n    return '\xe9' + x\n")  # no coding cookie
    (bad / "unclosed.py").write_text("def f(x:\n    return x\n", encoding="utf-8")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "ignored.py").write_text("def g(a, b):\n    return a + b\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def built(src_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "vm"
    summary = build_varmisuse(src_tree, out, seed=3, workers=2, examples_per_shard=200)
    return out, summary


def _all(out: Path) -> list[tuple[str, dict]]:
    return list(iter_examples(out, validate=False))


def test_every_built_example_passes_the_schema_check(built):
    out, summary = built
    examples = _all(out)
    assert len(examples) == sum(summary.examples.values()) > 400
    for sample_id, ex in examples:
        validate_example(ex)
    assert {p.parent.name for p in list_shards(out)} <= {"train", "dev", "eval"}
    assert summary.examples["train"] > 0


def test_buggy_examples_are_consistent(built):
    out, _ = built
    clean_by_function = {}
    buggy = []
    for _, ex in _all(out):
        prov = ex["provenances"][0]["datasetProvenance"]
        key = (prov["filepath"], prov["function"], prov["line"])
        if ex["has_bug"]:
            buggy.append((key, ex))
        else:
            clean_by_function[key] = ex
    assert len(buggy) == len(clean_by_function)
    for key, ex in buggy:
        assert ex["bug_kind"] == 1 and ex["bug_kind_name"] == "VARIABLE_MISUSE"
        t, loc, targets = ex["source_tokens"], ex["error_location"], ex["repair_targets"]
        assert targets, key
        assert len({t[i] for i in targets}) == 1, key          # all targets name the same variable
        assert t[loc] != t[targets[0]], key                     # the bug is a different variable
        assert loc in ex["repair_candidates"] and set(targets) <= set(ex["repair_candidates"])
        assert all(isinstance(c, int) for c in ex["repair_candidates"])
        clean = clean_by_function[key]
        ct = clean["source_tokens"]
        # the twin differs only at the error location, where it names the right variable (a use)
        assert [i for i, (a, b) in enumerate(zip(ct, t)) if a != b] == [loc]
        assert ct[loc] == t[targets[0]]
        names = {c for c in clean["repair_candidates"] if isinstance(c, str)}
        assert ct[loc] in names and t[loc] in names
        assert loc in clean["repair_candidates"]
    for ex in clean_by_function.values():
        assert ex["error_location"] == 0 and ex["repair_targets"] == [] and ex["bug_kind"] == 0


def test_unparseable_files_are_skipped_and_counted(built):
    out, summary = built
    reasons = {d["file"]: d["reason"] for d in summary.skipped_files}
    assert set(reasons) == {"bad/py2.py", "bad/latin1.py", "bad/unclosed.py"}
    assert "SyntaxError" in reasons["bad/py2.py"] and reasons["bad/py2.py"].startswith("bad/py2.py:2:")
    assert "decode" in reasons["bad/latin1.py"]
    assert summary.n_files == len(MODULES) + 3  # __pycache__ is not searched
    assert summary.n_files_used == len(MODULES)
    on_disk = json.loads((out / "build_summary.json").read_text(encoding="utf-8"))
    assert on_disk["skipped_files"] == summary.skipped_files


def test_no_function_or_file_leaks_across_splits(built):
    out, summary = built
    split_of_file = defaultdict(set)
    for sample_id, ex in _all(out):
        split = sample_id.split("__", 1)[0]
        split_of_file[ex["provenances"][0]["datasetProvenance"]["filepath"]].add(split)
    assert all(len(s) == 1 for s in split_of_file.values()), split_of_file
    assert len({next(iter(s)) for s in split_of_file.values()}) >= 2  # the files did spread over splits


def test_same_seed_gives_byte_identical_shards_whatever_the_workers(src_tree, built, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    build_varmisuse(src_tree, again, seed=3, workers=1, examples_per_shard=200)
    first = {p.relative_to(out): p.read_bytes() for p in list_shards(out)}
    second = {p.relative_to(again): p.read_bytes() for p in list_shards(again)}
    assert first == second
    small = [build_varmisuse(src_tree, tmp_path / f"s{seed}", seed=seed, max_functions=30, workers=1)
             for seed in (3, 4)]
    assert all(s.n_functions_used == 30 for s in small)
    a, b = ({p.name: p.read_bytes() for p in list_shards(tmp_path / f"s{seed}")} for seed in (3, 4))
    assert a != b  # another seed: other split, bugs and order

def test_max_functions_and_existing_output(src_tree, tmp_path):
    out = tmp_path / "small"
    summary = build_varmisuse(src_tree, out, seed=0, max_functions=15, workers=1)
    assert summary.n_functions_used == 15
    assert sum(summary.examples.values()) == 30
    with pytest.raises(FileExistsError, match="overwrite"):
        build_varmisuse(src_tree, out, seed=0, max_functions=15, workers=1)
    build_varmisuse(src_tree, out, seed=0, max_functions=5, workers=1, overwrite=True)
    assert sum(1 for _ in iter_examples(out)) == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"split_by": "line"}, "split_by"),
    ({"max_functions": 0}, "max_functions"),
    ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions"),
])
def test_bad_arguments_are_rejected(src_tree, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_varmisuse(src_tree, tmp_path / "x", **kwargs)


def test_cli_builds_shards(src_tree, tmp_path, capsys):
    from trainstats.cli import main

    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(src_tree / "colorsys.py", tree / "colorsys.py")
    shutil.copy(src_tree / "bad" / "py2.py", tree / "py2.py")
    out = tmp_path / "cli"
    rc = main(["build-varmisuse", str(tree), str(out), "--seed", "1", "--workers", "1", "--no-progress"])
    assert rc == 0
    used = json.loads((out / "build_summary.json").read_text(encoding="utf-8"))["n_functions_used"]
    assert used > 2 and sum(1 for _ in iter_examples(out)) == 2 * used
    text = capsys.readouterr().out
    assert "1 skipped" in text and "py2.py:2: SyntaxError" in text
    assert main(["build-varmisuse", str(tree), str(out), "--no-progress"]) == 2  # exists, no --overwrite
    assert "overwrite" in capsys.readouterr().err


def test_several_trees_build_one_dataset_split_by_prefixed_file(tmp_path):
    """Two source trees become one dataset whose files are keyed by tree, disjoint across splits."""
    from trainstats.varmisuse import iter_examples
    from trainstats.varmisuse.builder import build_varmisuse

    for tree in ("alpha", "beta"):
        folder = tmp_path / "src" / tree
        folder.mkdir(parents=True)
        for i in range(12):
            (folder / f"m{i}.py").write_text(
                f"def f{i}(a, b):\n    c = a + b\n    d = c * a\n    return d - b + {i}\n")
    s = build_varmisuse([tmp_path / "src" / "alpha", tmp_path / "src" / "beta"], tmp_path / "out", seed=0,
                        split_fractions=(0.5, 0.25, 0.25), workers=1)
    assert s.n_files == 24 and s.n_functions_used == 24 and sum(s.examples.values()) == 48
    files = {}
    for split in ("train", "dev", "eval"):
        for _, ex in iter_examples(tmp_path / "out", split=split):
            path = ex["provenances"][0]["datasetProvenance"]["filepath"]
            files.setdefault(path, set()).add(split)
    assert {p.split("/")[0] for p in files} == {"alpha", "beta"}
    assert all(len(splits) == 1 for splits in files.values())  # no file in two splits
    with pytest.raises(ValueError, match="empty list"):
        build_varmisuse([], tmp_path / "none")
