"""induce_noise on GREAT-format dev shards (built, and real where present): exact counts, determinism, byte-identical
copies, manifest."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainstats.noise import (
    MANIFEST_NAME,
    SUMMARY_NAME,
    count_for_level,
    induce_noise,
    load_manifest,
    read_summary,
    selection_order,
)
from trainstats.varmisuse import iter_examples, list_shards, validate_example

KINDS = ["label", "inject-repair", "rename"]


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != SUMMARY_NAME}


@pytest.fixture(scope="module")
def noised(great_dev_dir, tmp_path_factory):
    """One real run per kind at 30 % (workers=1), keyed by kind."""
    runs = {}
    for kind in KINDS:
        out = tmp_path_factory.mktemp(f"noised-{kind}")
        summary = induce_noise(great_dev_dir, out, kind=kind, level=0.3, seed=7, workers=1)
        runs[kind] = (out, summary)
    return runs


@pytest.fixture(scope="module")
def source(great_dev_dir):
    return {sid: ex for sid, ex in iter_examples(great_dev_dir)}


def _lines(folder: Path) -> dict[str, bytes]:
    out = {}
    for shard in list_shards(folder):
        for i, raw in enumerate(shard.read_bytes().splitlines(keepends=True), start=1):
            out[f"{shard.name}:{i}"] = raw
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_exact_counts_per_class(noised, source, kind):
    out, summary = noised[kind]
    manifest = load_manifest(out)
    n_buggy = sum(ex["has_bug"] for ex in source.values())
    n_free = len(source) - n_buggy
    by_class = manifest.groupby("orig_has_bug").size().to_dict()
    assert by_class == {True: count_for_level(0.3, n_buggy), False: count_for_level(0.3, n_free)}
    assert summary["counts"][kind] == {"buggy": by_class[True], "bug_free": by_class[False]}
    assert summary["splits"]["dev"]["buggy"]["n"] == n_buggy
    assert manifest["sample_id"].is_unique
    assert set(manifest["noise_kind"]) == {kind} and set(manifest["split"]) == {"dev"}
    assert (manifest["level"] == 0.3).all() and (manifest["seed"] == 7).all()
    # selection spreads over the whole split, not the first file
    shards = manifest["sample_id"].str.rsplit(":", n=1).str[0]
    assert shards.nunique() == 2


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_matches_line_diff_and_rest_is_byte_identical(noised, great_dev_dir, source, kind):
    out, summary = noised[kind]
    before, after = _lines(great_dev_dir), _lines(out)
    assert before.keys() == after.keys()
    changed = {sid for sid in before if before[sid] != after[sid]}
    manifest = load_manifest(out).set_index("sample_id")
    assert changed == set(manifest.index)
    for sid in changed:
        new = json.loads(after[sid])
        validate_example(new)
        old = source[sid]
        row = manifest.loc[sid]
        assert (row.orig_has_bug, row.new_has_bug) == (old["has_bug"], new["has_bug"])
        assert (row.orig_error_location, row.new_error_location) == (old["error_location"], new["error_location"])
        assert list(row.orig_repair_targets) == old["repair_targets"]
        assert list(row.new_repair_targets) == new["repair_targets"]
        assert row.changed_tokens == sum(a != b for a, b in zip(old["source_tokens"], new["source_tokens"]))
        assert new["edges"] == old["edges"]
        # faithful re-serialisation: exactly what json.dumps writes, in the source's style
        assert after[sid] == json.dumps(new).encode() + b"\n"
        assert list(new) == list(old)
    for info in summary["shards"]:
        assert info["input_sha256"] == hashlib.sha256((great_dev_dir / info["path"]).read_bytes()).hexdigest()
        assert info["output_sha256"] == hashlib.sha256((out / info["path"]).read_bytes()).hexdigest()
    assert read_summary(out) == json.loads(json.dumps(summary))
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_deterministic_across_runs_processes_and_workers(noised, great_dev_dir, tmp_path, monkeypatch):
    ref_out, _ = noised["label"]
    two = tmp_path / "two-workers"
    induce_noise(great_dev_dir, two, kind="label", level=0.3, seed=7, workers=2)
    assert _outputs(two) == _outputs(ref_out)
    monkeypatch.setenv("TRAINSTATS_NOISE_START_METHOD", "spawn")      # fresh interpreters as workers
    spawned = tmp_path / "spawned-workers"
    induce_noise(great_dev_dir, spawned, kind="label", level=0.3, seed=7, workers=2)
    assert _outputs(spawned) == _outputs(ref_out)
    cli = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "trainstats", "noise", str(great_dev_dir), str(cli),
                           "--kind", "label", "--level", "30", "--seed", "7", "--quiet", "--workers", "1"],
                          capture_output=True, text=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "noised" in proc.stdout
    assert _outputs(cli) == _outputs(ref_out)


def test_different_seeds_give_different_trials(noised, great_dev_dir, tmp_path):
    ref = set(load_manifest(noised["label"][0])["sample_id"])
    induce_noise(great_dev_dir, tmp_path, kind="label", level=0.3, seed=8, workers=1)
    other = set(load_manifest(tmp_path)["sample_id"])
    assert len(other) == len(ref) and other != ref
    # two independent 30 % draws overlap by about 30 % (hypergeometric), not 100 % or 0 %
    assert 0.15 < len(ref & other) / len(ref) < 0.45


def test_selection_follows_documented_derivation(noised, source):
    """Recompute the label selection from the formula in trainstats/noise/rng.py, independently."""
    manifest = load_manifest(noised["label"][0])
    u32 = int.from_bytes(hashlib.blake2b(b"dev", digest_size=8).digest(), "little") & 0xFFFFFFFF
    ids = list(source)  # shard then line order
    for cls in (True, False):
        members = [sid for sid in ids if source[sid]["has_bug"] == cls]
        ss = np.random.SeedSequence(7, spawn_key=(0, u32, int(cls)))
        prio = np.random.PCG64(ss).random_raw(len(members))
        order = sorted(range(len(members)), key=lambda i: (int(prio[i]), i))
        assert np.array_equal(order, selection_order(7, "dev", cls, len(members)))
        k = count_for_level(0.3, len(members))
        if cls:  # every buggy example is label-eligible: the first k of the order
            expected = {members[i] for i in order[:k]}
            assert expected == set(manifest.loc[manifest.orig_has_bug, "sample_id"])


def test_several_kinds_in_one_pass_are_disjoint(great_dev_dir, tmp_path, source):
    summary = induce_noise(great_dev_dir, tmp_path, kind=["label", "inject-repair"], level=[0.25, 0.25],
                           seed=3, workers=1)
    manifest = load_manifest(tmp_path)
    assert manifest["sample_id"].is_unique
    n_buggy = sum(ex["has_bug"] for ex in source.values())
    sizes = manifest.groupby(["noise_kind", "orig_has_bug"]).size().to_dict()
    assert sizes[("label", True)] == sizes[("inject-repair", True)] == count_for_level(0.25, n_buggy)
    assert summary["n_noised"] == len(manifest)


def test_level_zero_and_too_few_eligible(great_dev_dir, tmp_path, source):
    induce_noise(great_dev_dir, tmp_path / "zero", kind="rename", level=0.0, seed=0, workers=1)
    assert _lines(tmp_path / "zero") == _lines(great_dev_dir)
    assert len(load_manifest(tmp_path / "zero")) == 0
    # inject-repair cannot reach 100 % of the buggy class: some real buggy examples have no targets
    n_buggy = sum(ex["has_bug"] for ex in source.values())
    n_with_targets = sum(bool(ex["repair_targets"]) for ex in source.values() if ex["has_bug"])
    assert n_with_targets < n_buggy
    with pytest.raises(ValueError, match=rf"needs {n_buggy} of the {n_buggy} buggy examples, "
                                         rf"but only {n_with_targets} are eligible"):
        induce_noise(great_dev_dir, tmp_path / "full", kind="inject-repair", level=1.0, seed=0, workers=1)
    assert not list_shards_or_empty(tmp_path / "full")


def list_shards_or_empty(folder: Path) -> list:
    return [p for p in folder.iterdir()] if folder.exists() else []


def test_load_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=MANIFEST_NAME):
        load_manifest(tmp_path)
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['noise_kind', 'sample_id'\]"):
        load_manifest(tmp_path / "other.parquet")


def test_quick_class_agrees_with_full_parse(great_dev_dir):
    from trainstats.noise.shardwork import quick_class

    for shard in list_shards(great_dev_dir):
        for raw in shard.read_bytes().splitlines(keepends=True):
            assert quick_class(raw) == int(json.loads(raw)["has_bug"])
    assert quick_class(b'{"has_bug": true, "x": [1,\n') is None   # not closed: parse it instead
    assert quick_class(b'{"bug_kind": 0, "has_bug": false}\n') is None


def test_validate_selected_gives_identical_output(noised, great_dev_dir, tmp_path):
    ref_out, ref_summary = noised["inject-repair"]
    summary = induce_noise(great_dev_dir, tmp_path, kind="inject-repair", level=0.3, seed=7, workers=1,
                           validate="selected")
    assert _outputs(tmp_path) == _outputs(ref_out)
    for cls in ("buggy", "bug_free"):
        assert summary["splits"]["dev"][cls]["noised"] == ref_summary["splits"]["dev"][cls]["noised"]
        assert (summary["splits"]["dev"][cls]["ineligible_seen"]
                == ref_summary["splits"]["dev"][cls]["ineligible_seen"])


def test_split_subfolders_are_mirrored_and_selected_per_split(great_dev_dir, tmp_path):
    from trainstats.varmisuse import shard_name

    src = list_shards(great_dev_dir)[0].read_bytes().splitlines(keepends=True)
    folder = tmp_path / "in"
    for split, part in (("train", src[:80]), ("dev", src[80:120])):
        (folder / split).mkdir(parents=True)
        (folder / split / shard_name(split, 0, 1)).write_bytes(b"".join(part))
    out = tmp_path / "out"
    summary = induce_noise(folder, out, kind="label", level=0.5, seed=11, workers=1)
    for split, part in (("train", src[:80]), ("dev", src[80:120])):
        got = out / split / shard_name(split, 0, 1)
        assert got.is_file() and got.read_bytes().count(b"\n") == len(part)
        n_buggy = sum(json.loads(line)["has_bug"] for line in part)
        assert summary["splits"][split]["buggy"]["noised"]["label"] == count_for_level(0.5, n_buggy)
    manifest = load_manifest(out)
    assert set(manifest["split"]) == {"train", "dev"}
    assert all(sid.startswith(f"{sp}__") for sid, sp in zip(manifest["sample_id"], manifest["split"]))


def test_store_fills_noise_columns_from_the_manifest(noised, tmp_path, source):
    """The recorders' contract: RunWriter(noise_manifest=<our parquet>) flags exactly our samples."""
    store = pytest.importorskip("trainstats.store")
    out, _ = noised["rename"]
    manifest = load_manifest(out)
    ids = list(source)[:200]
    col = store.ValueColumn("loss", "float32", head="output", stat="loss", unit="nats", description="test")
    with store.RunWriter(tmp_path / "run", [col], recorder="test", config={},
                         noise_manifest=str(out / MANIFEST_NAME)) as w:
        keys = w.register_samples(ids)
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=keys,
                values={"loss": np.zeros(len(ids), np.float32)})
    df = store.read(tmp_path / "run", split="train").set_index("sample_id")
    noisy = set(ids) & set(manifest["sample_id"])
    assert noisy and set(df.index[df["noise"].astype(bool)]) == noisy
    assert set(df.loc[sorted(noisy), "noise_kind"]) == {"rename"}


def test_workers_start_method(monkeypatch):
    """fork only where it is the default and no other Python thread runs; env override checked."""
    import threading

    from trainstats.noise import pipeline

    monkeypatch.delenv("TRAINSTATS_NOISE_START_METHOD", raising=False)
    expected = "fork" if sys.platform.startswith("linux") and sys.version_info < (3, 12) else "spawn"
    with monkeypatch.context() as m:      # as if pytest and earlier tests had left no thread behind
        m.setattr(pipeline.threading, "active_count", lambda: 1)
        for name in pipeline._NO_FORK_WITH:   # and had imported no framework
            m.delitem(sys.modules, name, raising=False)
        assert pipeline._start_method() == expected
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert pipeline._start_method() == "spawn"
    finally:
        stop.set()
        other.join()
    with monkeypatch.context() as m:      # a framework with native thread pools is loaded
        m.setattr(pipeline.threading, "active_count", lambda: 1)
        m.setitem(sys.modules, "torch", object())
        assert pipeline._start_method() == "spawn"
    monkeypatch.setenv("TRAINSTATS_NOISE_START_METHOD", "spawn")
    assert pipeline._start_method() == "spawn"
    monkeypatch.setenv("TRAINSTATS_NOISE_START_METHOD", "teleport")
    with pytest.raises(ValueError, match="TRAINSTATS_NOISE_START_METHOD='teleport' is not a start method"):
        pipeline._start_method()


def test_cli_progress_bar_with_two_workers(noised, great_dev_dir, tmp_path):
    """Without --quiet the command draws a bar on stderr; the output is the same as without it."""
    ref_out, _ = noised["label"]
    out = tmp_path / "with-bar"
    proc = subprocess.run([sys.executable, "-m", "trainstats", "noise", str(great_dev_dir), str(out),
                           "--kind", "label", "--level", "30", "--seed", "7", "--workers", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "noise:" in proc.stderr and "B/s" in proc.stderr
    assert _outputs(out) == _outputs(ref_out)
