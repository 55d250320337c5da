"""Bad input and bad arguments: precise errors, no half-written output, --skip-invalid, --force."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainstats.cli import main
from trainstats.noise import SUMMARY_NAME, count_for_level, induce_noise, load_manifest, read_summary
from trainstats.varmisuse import InvalidExample, list_shards, shard_name


@pytest.fixture()
def small_in(great_dev_dir, tmp_path):
    """Two shards of 60 GREAT-format lines each (copied to a temp dir); returns (dir, [lines of shard 0])."""
    src = list_shards(great_dev_dir)
    folder = tmp_path / "in"
    folder.mkdir()
    lines = []
    for i, s in enumerate(src):
        part = s.read_bytes().splitlines(keepends=True)[:60]
        (folder / shard_name("train", i, 2)).write_bytes(b"".join(part))
        lines.append(part)
    return folder, lines


def _corrupt(folder: Path, lines: list[bytes], lineno: int, new: bytes) -> Path:
    path = folder / shard_name("train", 1, 2)
    lines = list(lines)
    lines[lineno - 1] = new
    path.write_bytes(b"".join(lines))
    return path


def _bad_variants(raw: bytes) -> list[tuple[bytes, str]]:
    ex = json.loads(raw)
    missing = {k: v for k, v in ex.items() if k != "repair_candidates"}
    out_of_range = dict(ex, error_location=len(ex["source_tokens"]) + 3)
    bad_target = dict(ex, repair_targets=[len(ex["source_tokens"])])
    return [
        (raw[:-200] + b"\n", r":\d+: invalid JSON: "),
        (json.dumps(missing).encode() + b"\n", r": missing required field\(s\) 'repair_candidates'"),
        (json.dumps(out_of_range).encode() + b"\n", r": field 'error_location': \d+ is outside the tokens"),
        (json.dumps(bad_target).encode() + b"\n", r": field 'repair_targets'\[0\]: \d+ is outside the tokens"),
    ]


@pytest.mark.parametrize("which", range(4))
def test_bad_line_stops_with_file_and_line_and_writes_nothing(small_in, tmp_path, which):
    folder, lines = small_in
    bad, message = _bad_variants(lines[1][16])[which]
    path = _corrupt(folder, lines[1], 17, bad)
    out = tmp_path / "new" / "out"
    # level 0: the bad line is not selected, and is still caught (every line is validated)
    with pytest.raises(InvalidExample, match=re.escape(f"{path}:17") + message):
        induce_noise(folder, out, kind="label", level=0.0, seed=1, workers=2 if which == 0 else 1)
    assert not (tmp_path / "new").exists(), "folders the failed run created must be removed"
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(InvalidExample, match=re.escape(f"{path}:17") + message):
        induce_noise(folder, existing, kind="label", level=0.0, seed=1, workers=1)
    assert list(existing.iterdir()) == [], "no shard, temporary, manifest or summary may be left"


def test_skip_invalid_copies_and_lists_bad_lines(small_in, tmp_path):
    folder, lines = small_in
    bad, _ = _bad_variants(lines[1][4])[0]
    path = _corrupt(folder, lines[1], 5, bad)
    out = tmp_path / "out"
    summary = induce_noise(folder, out, kind="label", level=1.0, seed=1, workers=1, skip_invalid=True)
    bad_id = f"{path.name}:5"
    assert [x["sample_id"] for x in summary["invalid"]] == [bad_id]
    assert "invalid JSON" in summary["invalid"][0]["error"]
    assert (out / path.name).read_bytes().splitlines(keepends=True)[4] == bad  # copied unchanged
    manifest = load_manifest(out)
    assert bad_id not in set(manifest["sample_id"])
    assert len(manifest) == 119 and summary["n_examples"] == 120  # every valid line noised, none dropped
    assert summary["splits"]["train"]["n_invalid"] == 1
    assert sum(1 for _ in (out / path.name).open("rb")) == 60


def test_non_empty_out_dir_needs_force(small_in, tmp_path):
    folder, _ = small_in
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    stale = out / shard_name("train", 7, 9)
    stale.write_text("old shard")
    with pytest.raises(FileExistsError, match="is not empty; pass force=True"):
        induce_noise(folder, out, kind="rename", level=0.5, seed=2, workers=1)
    assert stale.exists()
    induce_noise(folder, out, kind="rename", level=0.5, seed=2, workers=1, force=True)
    assert (out / "notes.txt").read_text() == "keep me"
    assert not stale.exists(), "shards of an earlier run are removed with --force"
    assert sorted(p.name for p in list_shards(out)) == sorted(p.name for p in list_shards(folder))
    with pytest.raises(ValueError, match="must not be the input directory"):
        induce_noise(folder, folder / "sub", kind="rename", level=0.5, seed=2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="nope", level=0.1, seed=0), r"unknown noise kind 'nope'"),
    (dict(kind="label", level=1.5, seed=0), r"level must be a fraction in \[0, 1\].*received 1.5"),
    (dict(kind="label", level=0.1, seed=-1), r"seed must be an int in \[0, 2\*\*63\), received -1"),
    (dict(kind=["label", "rename"], level=[0.6, 0.6], seed=0), r"must sum to at most 1"),
    (dict(kind=["label", "rename"], level=[0.6], seed=0), r"expected one level per kind"),
])
def test_bad_arguments(small_in, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        induce_noise(small_in[0], tmp_path / "out", **kwargs)


def test_cli_reports_errors_and_success(small_in, tmp_path, capsys):
    folder, lines = small_in
    out = tmp_path / "out"
    assert main(["noise", str(folder), str(out), "--kind", "label,rename", "--level", "10,20",
                 "--seed", "4", "--quiet", "--workers", "1"]) == 0
    n_buggy = sum(b'"has_bug": true' in raw[:20] for part in lines for raw in part)
    expected = sum(count_for_level(lv, n) for lv in (0.1, 0.2) for n in (n_buggy, 120 - n_buggy))
    assert f"noised {expected} of 120 examples" in capsys.readouterr().out
    assert read_summary(out)["kinds"] == [{"kind": "label", "level": 0.1}, {"kind": "rename", "level": 0.2}]
    assert main(["noise", str(folder), str(out), "--kind", "label", "--level", "10", "--seed", "4"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["noise", str(folder), str(out), "--kind", "label", "--level", "250", "--seed", "4",
                 "--force"]) == 1
    assert "percent in [0, 100], received 250" in capsys.readouterr().err
    path = _corrupt(folder, lines[1], 3, b"{not json\n")
    assert main(["noise", str(folder), str(tmp_path / "o2"), "--kind", "label", "--level", "10",
                 "--seed", "4", "--quiet", "--workers", "1"]) == 1
    assert f"{path}:3:2: invalid JSON" in capsys.readouterr().err
    assert not (tmp_path / "o2" / SUMMARY_NAME).exists()


def test_validate_selected_checks_drawn_and_non_canonical_lines(small_in, tmp_path):
    folder, lines = small_in
    ex = json.loads(lines[1][9])
    ex["error_location"] = len(ex["source_tokens"])
    path = _corrupt(folder, lines[1], 10, json.dumps(ex).encode() + b"\n")
    # drawn (level 1.0 draws every line): decoded and rejected, nothing written
    with pytest.raises(InvalidExample, match=re.escape(f"{path}:10") + ": field 'error_location'"):
        induce_noise(folder, tmp_path / "a", kind="rename", level=1.0, seed=1, workers=1, validate="selected")
    assert not (tmp_path / "a").exists()
    # not drawn (level 0): a canonical-looking line is copied unchecked, by design of this mode
    induce_noise(folder, tmp_path / "b", kind="rename", level=0.0, seed=1, workers=1, validate="selected")
    assert (tmp_path / "b" / path.name).read_bytes() == path.read_bytes()
    # a truncated line does not look canonical: caught even when not drawn
    path = _corrupt(folder, lines[1], 10, lines[1][9][:100] + b"\n")
    with pytest.raises(InvalidExample, match=re.escape(f"{path}:10:") + r"\d+: invalid JSON"):
        induce_noise(folder, tmp_path / "c", kind="rename", level=0.0, seed=1, workers=1, validate="selected")
    # --skip-invalid: drawn invalid lines are skipped, listed, and the quota is filled from others
    ex_line = json.dumps(ex).encode() + b"\n"
    path = _corrupt(folder, lines[1], 10, ex_line)
    summary = induce_noise(folder, tmp_path / "d", kind="rename", level=0.9, seed=1, workers=1,
                           validate="selected", skip_invalid=True)
    assert [x["sample_id"] for x in summary["invalid"]] == [f"{path.name}:10"]  # drawn with this seed
    assert sum(summary["counts"]["rename"].values()) == len(load_manifest(tmp_path / "d"))
    assert (tmp_path / "d" / path.name).read_bytes().splitlines(keepends=True)[9] == ex_line
    assert f"{path.name}:10" not in set(load_manifest(tmp_path / "d")["sample_id"])


def test_output_is_the_same_with_and_without_orjson(small_in, tmp_path, monkeypatch):
    from trainstats.varmisuse import lines as varmisuse_lines

    folder, _ = small_in
    induce_noise(folder, tmp_path / "fast", kind=["label", "inject-repair"], level=[0.3, 0.3], seed=5, workers=1)
    monkeypatch.setattr(varmisuse_lines, "loads", varmisuse_lines._json_loads)  # the stdlib fallback
    induce_noise(folder, tmp_path / "std", kind=["label", "inject-repair"], level=[0.3, 0.3], seed=5, workers=1)
    names = sorted(p.name for p in (tmp_path / "fast").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "std").iterdir())
    for name in names:
        if name != SUMMARY_NAME:   # the summary names its own out_dir
            assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "std" / name).read_bytes(), name
    fast, std = read_summary(tmp_path / "fast"), read_summary(tmp_path / "std")
    assert fast["shards"] == std["shards"] and fast["splits"] == std["splits"]


def test_crlf_endings_and_missing_final_newline_are_kept(small_in, tmp_path):
    """Lines keep their own terminators (CRLF, none at the end) whether noised or copied."""
    folder, lines = small_in
    crlf = [raw.rstrip(b"\n") + b"\r\n" for raw in lines[1]]
    crlf[-1] = crlf[-1].rstrip(b"\r\n")                      # the last line has no terminator
    path = folder / shard_name("train", 1, 2)
    path.write_bytes(b"".join(crlf))
    out = tmp_path / "out"
    induce_noise(folder, out, kind="inject-repair", level=0.5, seed=4, workers=1)
    got = (out / path.name).read_bytes().split(b"\r\n")
    assert len(got) == len(crlf) and not got[-1].endswith(b"\n")
    noised = set(load_manifest(out)["sample_id"])
    for i, (before, after) in enumerate(zip(crlf, got), start=1):
        if f"{path.name}:{i}" in noised:
            assert after != before.rstrip(b"\r\n") and json.loads(after)["has_bug"] == json.loads(before)["has_bug"]
        else:
            assert after == before.rstrip(b"\r\n")


def test_a_shard_changed_between_scan_and_write_is_an_error(small_in, tmp_path, monkeypatch):
    """If a shard changes after it was scanned, the write pass stops instead of mixing versions."""
    import trainstats.noise.pipeline as pipeline

    folder, lines = small_in
    path = folder / shard_name("train", 0, 2)
    real_scan = pipeline.scan_shard

    def scan_then_append(task):
        result = real_scan(task)
        if task.path == str(path):
            with open(path, "ab") as fh:
                fh.write(lines[0][0])
        return result

    monkeypatch.setattr(pipeline, "scan_shard", scan_then_append)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=re.escape(str(path)) + r".*did the file change"):
        induce_noise(folder, out, kind="label", level=0.3, seed=0, workers=1)
    assert not out.exists()
