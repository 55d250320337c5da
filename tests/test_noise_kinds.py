"""Each kind's invariants, checked on every dev example (built, and real where present), and the registry contract."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from trainstats.noise import available_kinds, example_random, get_kind, register_kind
from trainstats.noise.kinds import _REGISTRY, BUGGY_TOKEN, NONBUGGY_TOKEN, TARGET_TOKEN
from trainstats.varmisuse import iter_examples, validate_example


@pytest.fixture(scope="module")
def examples(great_dev_dir):
    return list(iter_examples(great_dev_dir))


def _run(kind_name, examples):
    """Apply a kind to every example; check purity, eligibility agreement and output validity."""
    kind = get_kind(kind_name)
    results = []
    for sid, ex in examples:
        before = json.dumps(ex)
        new = kind.apply(ex, example_random(5, kind_name, sid))
        assert json.dumps(ex) == before, "a kind must not mutate its input"
        assert (new is not None) == kind.is_eligible(ex)
        if new is not None:
            validate_example(new)
            assert new["edges"] == ex["edges"]
            assert set(new) == set(ex)
            again = kind.apply(ex, example_random(5, kind_name, sid))
            assert again == new, "same seed and id must give the same result"
        results.append((ex, new))
    return results


def _ints(cands):
    return [c for c in cands if isinstance(c, int)]


def test_label_flips_labels_consistently(examples):
    results = _run("label", examples)
    n_new_buggy = 0
    for ex, new in results:
        if new is None:
            assert not ex["has_bug"]
            assert len({ex["source_tokens"][c] for c in _ints(ex["repair_candidates"])}) < 2
            continue
        assert new["source_tokens"] == ex["source_tokens"]
        assert new["has_bug"] != ex["has_bug"]
        assert _ints(new["repair_candidates"]) == _ints(ex["repair_candidates"])
        if ex["has_bug"]:
            assert (new["error_location"], new["repair_targets"]) == (0, [])
            assert (new["bug_kind"], new["bug_kind_name"]) == (0, "NONE")
            # candidate names added in the real bug-free layout: positions of a variable, then its name
            cands, toks = new["repair_candidates"], new["source_tokens"]
            for i, c in enumerate(cands):
                if isinstance(c, str):
                    assert i > 0 and isinstance(cands[i - 1], int) and toks[cands[i - 1]] == c
            assert {c for c in cands if isinstance(c, str)} == {toks[c] for c in _ints(cands)}
        else:
            n_new_buggy += 1
            toks, loc, targets = new["source_tokens"], new["error_location"], new["repair_targets"]
            cands = _ints(new["repair_candidates"])
            assert loc in cands and loc != 0
            assert targets and set(targets) <= set(cands)
            assert len({toks[t] for t in targets}) == 1, "targets name one variable"
            assert toks[targets[0]] != toks[loc], "targets name another variable"
            assert loc not in targets
            # all occurrences of that variable among the candidates, no more, no less
            assert targets == sorted(c for c in set(cands) if toks[c] == toks[targets[0]])
            assert (new["bug_kind"], new["bug_kind_name"]) == (1, "VARIABLE_MISUSE")
            assert all(isinstance(c, int) for c in new["repair_candidates"]), "buggy examples carry no names"
    assert n_new_buggy > 400


def test_label_candidate_layout_matches_real_bug_free_examples(examples):
    """Flipping a real bug-free example to buggy and back restores its candidates (when recoverable)."""
    kind = get_kind("label")
    restored = total = 0
    for sid, ex in examples:
        if ex["has_bug"] or not kind.is_eligible(ex):
            continue
        back = kind.apply(kind.apply(ex, example_random(0, "label", sid)), example_random(0, "label", sid))
        total += 1
        restored += back["repair_candidates"] == ex["repair_candidates"]
    assert restored > 0.95 * total   # the rest name variables that have no positions (not recoverable)


def test_label_spreads_error_locations(examples):
    """Different ids get different draws (not always the first candidate)."""
    kind = get_kind("label")
    clean = [(sid, ex) for sid, ex in examples if not ex["has_bug"] and kind.is_eligible(ex)][:200]
    firsts = sum(kind.apply(ex, example_random(1, "label", sid))["error_location"] == min(
        c for c in _ints(ex["repair_candidates"]) if c) for sid, ex in clean)
    assert firsts < len(clean) * 0.6


def test_inject_repair_replaces_target_variable(examples):
    for ex, new in _run("inject-repair", examples):
        toks, new_toks = ex["source_tokens"], new["source_tokens"] if new else None
        if new is None:
            assert ex["has_bug"] and not ex["repair_targets"]
            continue
        for field in ("has_bug", "error_location", "repair_targets", "repair_candidates"):
            assert new[field] == ex[field]
        if ex["has_bug"]:
            names = {toks[t] for t in ex["repair_targets"]}
            assert not names & set(new_toks), "no occurrence of the target variable remains"
            assert new_toks[ex["error_location"]] == BUGGY_TOKEN
            for t in ex["repair_targets"]:
                assert new_toks[t] == TARGET_TOKEN
            assert [i for i, (a, b) in enumerate(zip(toks, new_toks)) if a != b] == sorted(
                {i for i, a in enumerate(toks) if a in names} | {ex["error_location"]})
        else:
            counts = Counter(toks)
            top = max(counts.values())
            replaced = {toks[i] for i, (a, b) in enumerate(zip(toks, new_toks)) if a != b}
            assert len(replaced) == 1 and counts[replaced.pop()] == top
            assert new_toks.count(NONBUGGY_TOKEN) == top


def test_rename_is_a_consistent_bijection(examples):
    n_changed = 0
    for ex, new in _run("rename", examples):
        if new is None:
            assert not _ints(ex["repair_candidates"])
            continue
        toks, new_toks = ex["source_tokens"], new["source_tokens"]
        assert len(toks) == len(new_toks)
        names = {toks[c] for c in _ints(ex["repair_candidates"])}
        mapping = {}
        for a, b in zip(toks, new_toks):
            if a in names:
                assert b.startswith("VAR_") and b not in toks
                assert mapping.setdefault(a, b) == b
            else:
                assert a == b
        assert len(set(mapping.values())) == len(mapping), "renaming must be injective"
        for field in ("has_bug", "error_location", "repair_targets", "repair_candidates"):
            assert new[field] == ex[field]
        n_changed += 1
    assert n_changed == len(examples)


def test_registry_contract():
    assert {"label", "inject-repair", "rename"} <= set(available_kinds())
    with pytest.raises(ValueError, match=r"unknown noise kind 'nope'; expected one of \["):
        get_kind("nope")
    with pytest.raises(ValueError, match="lower-case"):
        register_kind("Bad Name", description="x")
    with pytest.raises(ValueError, match="already registered"):
        register_kind("label", description="x")(lambda ex, rng: ex)
    assert all(get_kind(k).description for k in available_kinds())


def test_kind_without_predicate_probes_apply(examples):
    @register_kind("test-drop-strings", description="drop string candidates (test only)")
    def _drop(example, rng):
        if not any(isinstance(c, str) for c in example["repair_candidates"]):
            return None
        return dict(example, repair_candidates=[c for c in example["repair_candidates"] if isinstance(c, int)])

    try:
        kind = get_kind("test-drop-strings")
        flags = [kind.is_eligible(ex) for _, ex in examples]
        assert any(flags) and not all(flags)
    finally:
        _REGISTRY.pop("test-drop-strings")


def test_noise_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, trainstats.noise as n; n.induce_noise; n.load_manifest; "
            "sys.exit(1 if any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_custom_kinds_through_the_pipeline(great_dev_dir, tmp_path):
    """needs_edges kinds see real edges; a kind whose output breaks the kept edges is refused."""
    from trainstats.noise import induce_noise, load_manifest

    @register_kind("test-reverse-edges", description="reverse edge order (test only)", needs_edges=True,
                   eligible=lambda ex: len(ex["edges"]) > 1)
    def _reverse(example, rng):
        return dict(example, edges=example["edges"][::-1]) if len(example["edges"]) > 1 else None

    @register_kind("test-truncate", description="drop the last token, fixing everything but edges (test)")
    def _truncate(example, rng):
        n = len(example["source_tokens"]) - 1
        if example["error_location"] >= n:
            return None
        return dict(example, source_tokens=example["source_tokens"][:n],
                    repair_targets=[t for t in example["repair_targets"] if t < n],
                    repair_candidates=[c for c in example["repair_candidates"] if not isinstance(c, int) or c < n])

    try:
        induce_noise(great_dev_dir, tmp_path / "rev", kind="test-reverse-edges", level=0.1, seed=0, workers=1)
        manifest = load_manifest(tmp_path / "rev")
        assert len(manifest) > 50
        for sid in manifest["sample_id"][:20]:
            name, line = sid.rsplit(":", 1)
            before = json.loads((great_dev_dir / name).read_bytes().splitlines()[int(line) - 1])
            after = json.loads((tmp_path / "rev" / name).read_bytes().splitlines()[int(line) - 1])
            assert after["edges"] == before["edges"][::-1]
        with pytest.raises(RuntimeError, match=r"'test-truncate' produced an invalid example: field 'edges'"):
            induce_noise(great_dev_dir, tmp_path / "cut", kind="test-truncate", level=0.2, seed=0, workers=1)
        assert not (tmp_path / "cut").exists()   # the failed run removes the folder it created
    finally:
        _REGISTRY.pop("test-reverse-edges")
        _REGISTRY.pop("test-truncate")
